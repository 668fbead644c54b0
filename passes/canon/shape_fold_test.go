package canon_test

import (
	"strings"
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
)

func shapeFold(symbolic bool) func(*ir.Graph) (map[string]int, error) {
	return func(g *ir.Graph) (map[string]int, error) {
		return canon.ShapeFold(g, canon.ShapeFoldOptions{Symbolic: symbolic})
	}
}

// batchReshape is x.reshape(x.shape[0], -1) as exporters write it.
const batchReshape = `graph "g" opset=17
input %0 : f32[B,3,4] "x"
%1 = Shape %0 : i64[3]
%2 = Const dense<i64[] [0]> : i64[]
%3 = Gather %1, %2 {axis=0} : i64[]
%4 = Const dense<i64[1] [0]> : i64[1]
%5 = Unsqueeze %3, %4 : i64[1]
%6 = Const dense<i64[1] [-1]> : i64[1]
%7 = Concat %5, %6 {axis=0} : i64[2] "target"
%8 = Reshape %0, %7 : f32[B,12] "y"
output "y" = %8
`

func TestShapeFoldStatic(t *testing.T) {
	g := parse(t, strings.ReplaceAll(batchReshape, "B", "2"))
	h, st := transform(t, g, shapeFold(true))
	if st["folded"] != 1 || st["removed"] != 7 {
		t.Errorf("stats %v, want 1 folded (the Concat) and 7 removed", st)
	}
	tgt := h.Outputs[0].Value.Arg(1)
	if xs, ok := ir.ConstInts(tgt); !ok || len(xs) != 2 || xs[0] != 2 || xs[1] != -1 || tgt.Name != "target" {
		t.Errorf("target is %v %v, want the constant [2, -1] named target", tgt, xs)
	}
}

// With a symbolic batch, [batch, -1] becomes [0, -1]: 0 copies the dim.
func TestShapeFoldReshapeCopy(t *testing.T) {
	g := parse(t, strings.ReplaceAll(batchReshape, "B", "batch"))
	h, st := transform(t, g, shapeFold(true))
	if st["reshape_const"] != 1 || ops(h) != "Reshape" {
		t.Fatalf("stats %v, ops %q", st, ops(h))
	}
	if xs, _ := ir.ConstInts(h.Outputs[0].Value.Arg(1)); len(xs) != 2 || xs[0] != 0 || xs[1] != -1 {
		t.Errorf("target %v, want [0, -1]", xs)
	}
	// symbolic=false leaves the chain.
	h, st = transform(t, g, shapeFold(false))
	if len(st) != 0 || countOp(h, "Shape") != 1 {
		t.Errorf("symbolic=false: stats %v\n%v", st, h)
	}
}

// [3*batch, 4] from a [batch, 12] tensor: the one symbolic entry becomes -1.
func TestShapeFoldReshapeMinusOne(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[batch,12] "x"
%1 = Shape %0 : i64[2]
%2 = Const dense<i64[] [0]> : i64[]
%3 = Gather %1, %2 {axis=0} : i64[]
%4 = Const dense<i64[] [3]> : i64[]
%5 = Mul %3, %4 : i64[]
%6 = Const dense<i64[1] [0]> : i64[1]
%7 = Unsqueeze %5, %6 : i64[1]
%8 = Const dense<i64[1] [4]> : i64[1]
%9 = Concat %7, %8 {axis=0} : i64[2]
%10 = Reshape %0, %9 : f32[3*batch,4] "y"
output "y" = %10
`)
	h, _ := transform(t, g, shapeFold(true))
	if xs, _ := ir.ConstInts(h.Outputs[0].Value.Arg(1)); len(xs) != 2 || xs[0] != -1 || xs[1] != 4 {
		t.Errorf("target %v, want [-1, 4]\n%v", xs, h)
	}
}

// An Expand to [2*batch, 4] cannot use -1 or 0: the shape is rebuilt from
// the graph input's dim, and a second run leaves it alone.
func TestShapeFoldRebuild(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[batch,3] "x"
%1 = Const dense<f32[1,4] [1.0, 2.0, 3.0, 4.0]> : f32[1,4] "c"
%2 = Exp %0 : f32[batch,3]
%3 = Shape %2 : i64[2]
%4 = Const dense<i64[] [0]> : i64[]
%5 = Gather %3, %4 {axis=0} : i64[]
%6 = Const dense<i64[] [2]> : i64[]
%7 = Mul %5, %6 : i64[]
%8 = Const dense<i64[1] [0]> : i64[1]
%9 = Unsqueeze %7, %8 : i64[1]
%10 = Const dense<i64[1] [4]> : i64[1]
%11 = Concat %9, %10 {axis=0} : i64[2] "shape"
%12 = Expand %1, %11 : f32[2*batch,4] "y"
output "y" = %12
output "z" = %2
`)
	h, st := transform(t, g, shapeFold(true))
	if st["rebuilt"] != 1 {
		t.Errorf("stats %v", st)
	}
	s := h.Outputs[0].Value.Arg(1)
	if s.Op != "Concat" || s.Arg(0).Op != "Mul" || s.Arg(0).Arg(0).Op != "Gather" || s.Arg(0).Arg(0).Arg(0).Arg(0) != h.Inputs[0] {
		t.Errorf("shape not rebuilt from the input:\n%v", h)
	}
}

// Equal and Where over shapes fold to bool and integer constants; values of
// another dtype than i64 keep their dtype.
func TestShapeFoldDTypes(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2,3] "x"
%1 = Shape %0 : i64[2]
%2 = Const dense<i64[2] [2, 5]> : i64[2]
%3 = Equal %1, %2 : bool[2] "eq"
%4 = Cast %1 {to="i32"} : i32[2] "i32"
output "eq" = %3
output "i32" = %4
`)
	h, st := transform(t, g, shapeFold(true))
	if st["folded"] != 2 || ops(h) != "" {
		t.Fatalf("stats %v\n%v", st, h)
	}
	if c := h.Outputs[0].Value.Const; c.DType != ir.Bool || c.Data.([]bool)[0] != true || c.Data.([]bool)[1] != false {
		t.Errorf("eq folded to %v", h.Outputs[0].Value)
	}
	if c := h.Outputs[1].Value.Const; c.DType != ir.I32 || c.Data.([]int32)[1] != 3 {
		t.Errorf("i32 folded to %v", h.Outputs[1].Value)
	}
}

// ir.ShapeValue follows a Slice whose bounds are themselves foldable, so the
// whole chain folds in one step and a second run finds nothing to do.
func TestShapeFoldSliceOfFoldedBounds(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2,3,4] "x"
%1 = Shape %0 : i64[3]
%2 = Const dense<i64[] [1]> : i64[]
%3 = Const dense<i64[1] [0]> : i64[1]
%4 = Unsqueeze %2, %3 : i64[1] "start"
%5 = Const dense<i64[1] [3]> : i64[1]
%6 = Slice %1, %4, %5 : i64[2] "dims"
output "dims" = %6
`)
	h, st := transform(t, g, shapeFold(true))
	if st["folded"] != 1 || ops(h) != "" || h.Outputs[0].Value.Const.I64()[1] != 4 {
		t.Errorf("stats %v\n%v", st, h)
	}
}
