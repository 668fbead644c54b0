package canon_test

import (
	"strings"
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
)

func constFold(maxBytes int64) func(*ir.Graph) (map[string]int, error) {
	return func(g *ir.Graph) (map[string]int, error) {
		return canon.ConstFold(g, canon.ConstFoldOptions{MaxBytes: maxBytes})
	}
}

// A chain of constant ops folds in one run, through the runtime.
func TestConstFoldChain(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2,2] "x"
%1 = Const dense<f32[2,2] [1.0, 4.0, 9.0, 16.0]> : f32[2,2] "w"
%2 = Sqrt %1 : f32[2,2]
%3 = Transpose %2 {perm=[1, 0]} : f32[2,2] "wt"
%4 = MatMul %0, %3 : f32[2,2] "y"
output "y" = %4
`)
	h, st := transform(t, g, constFold(1<<20))
	if st["folded"] != 2 || ops(h) != "MatMul" {
		t.Fatalf("stats %v\n%v", st, h)
	}
	w := h.Outputs[0].Value.Arg(1)
	if w.Name != "wt" || w.Const.F32()[1] != 3 || w.Const.F32()[2] != 2 {
		t.Errorf("folded weight %v = %v, want wt = [1 3 2 4]", w, w.Const.F32())
	}
}

// Results over max_bytes and broadcasts that would grow the model stay.
func TestConstFoldLimits(t *testing.T) {
	src := `graph "g" opset=17
input %0 : f32[64,64] "x"
%1 = Const dense<f32[] [0.5]> : f32[] "half"
%2 = Const dense<i64[2] [64, 64]> : i64[2]
%3 = Expand %1, %2 : f32[64,64] "big"
%4 = Add %0, %3 : f32[64,64] "y"
output "y" = %4
`
	g := parse(t, src)
	h, st := transform(t, g, constFold(64<<20))
	if st["folded"] != 0 || st["skipped_growth"] != 1 || countOp(h, "Expand") != 1 {
		t.Errorf("Expand to 16 KiB folded: stats %v", st)
	}
	// A small broadcast is fine...
	g = parse(t, strings.NewReplacer("64, 64", "4, 4", "64,64", "4,4").Replace(src))
	if _, st = transform(t, g, constFold(64<<20)); st["folded"] != 1 {
		t.Errorf("small Expand not folded: stats %v", st)
	}
	// ...unless max_bytes says no.
	if _, st = transform(t, g, constFold(32)); st["folded"] != 0 || st["skipped_too_big"] != 1 {
		t.Errorf("max_bytes=32: stats %v", st)
	}
}

// DequantizeLinear of a constant is how a quantized weight is stored.
func TestConstFoldKeepsDequantize(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2] "x"
%1 = Const dense<i8[2] [10, -20]> : i8[2] "wq"
%2 = Const dense<f32[] [0.5]> : f32[] "scale"
%3 = Const dense<i8[] [0]> : i8[] "zp"
%4 = DequantizeLinear %1, %2, %3 : f32[2] "w"
%5 = Mul %0, %4 : f32[2] "y"
output "y" = %5
`)
	// Not through transform: the runtime may not run DequantizeLinear yet.
	if st, err := constFold(1 << 20)(g); err != nil || st["folded"] != 0 {
		t.Errorf("DequantizeLinear folded: %v %v", st, err)
	}
}

// A runtime failure names the value it was folding.
func TestConstFoldError(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2] "x"
%1 = Const dense<f32[2] [1.0, 2.0]> : f32[2] "w"
%2 = Const dense<i64[1] [1]> : i64[1]
%3 = Gather %1, %2 {axis=0} : f32[1] "pick"
%4 = Add %0, %3 : f32[2] "y"
output "y" = %4
`)
	// Corrupt the index after parsing so inference let it through.
	g.Outputs[0].Value.Arg(1).Arg(1).Const = ir.I64Tensor([]int64{1}, []int64{7})
	_, err := canon.ConstFold(g, canon.ConstFoldOptions{MaxBytes: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), `Gather "pick"`) {
		t.Errorf("err = %v, want one naming Gather \"pick\"", err)
	}
}
