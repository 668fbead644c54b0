package quant

// The fold_qdq transform cleans up a QDQ graph, in three steps:
//
//  1. QuantizeLinear of a constant (a weight, with constant scale and zero
//     point) becomes an int8 constant, computed with the runtime's kernel so
//     the bits are exactly ONNX's; the weight is then stored in 8 bits.
//  2. QuantizeLinear(DequantizeLinear(q, s, z), s, z) with the same
//     constant parameters (a redundant DQ→Q pair) becomes q.
//  3. With lower=true, MatMul(DQ(a), DQ(w)) with per-tensor activation
//     parameters becomes integer ops, as ORT's QDQ transformer would:
//     QLinearMatMul when the result only feeds a QuantizeLinear, else
//     MatMulInteger → Cast → Mul by a_scale·w_scale.
//
// It requires nothing; constants stay constants and every rewrite keeps the
// value's type, so users are untouched.

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/runtime"
)

// FoldOptions are fold_qdq's options.
type FoldOptions struct {
	Lower bool `pqv:"lower" doc:"lower QDQ MatMul to MatMulInteger or QLinearMatMul"`
}

// FoldQDQ is the fold_qdq transform.
var FoldQDQ = &passes.Pass{
	Name: "fold_qdq",
	Doc: `fold weight quantization and redundant Q/DQ pairs
Constant QuantizeLinear becomes an int8 constant; Q(DQ(x)) with equal
parameters becomes x; lower=true turns QDQ MatMul into integer ops.`,
	Options: &FoldOptions{},
	Run: func(ctx *passes.Context, g *ir.Graph) (any, error) {
		o := ctx.Options.(*FoldOptions)
		st := &Stats{}
		order, err := g.Topo()
		if err != nil {
			return nil, err
		}
		for _, v := range order {
			if v.Graph() == nil || v.Op != "QuantizeLinear" {
				continue
			}
			if err := foldQ(g, v, st); err != nil {
				return nil, fmt.Errorf("fold_qdq: %s: %w", v, err)
			}
		}
		if o.Lower {
			for _, v := range order {
				if v.Graph() != nil && v.Op == "MatMul" {
					if err := lowerMatMul(g, v, st); err != nil {
						return nil, fmt.Errorf("fold_qdq: %s: %w", v, err)
					}
				}
			}
		}
		g.RemoveDead()
		return st, nil
	},
}

func allConst(vs ...*ir.Value) bool {
	for _, v := range vs {
		if v != nil && !v.IsConst() {
			return false
		}
	}
	return true
}

// sameConst reports whether two optional constants hold the same data.
func sameConst(a, b *ir.Value) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a == b || a.IsConst() && b.IsConst() && a.Const.Digest() == b.Const.Digest()
}

func foldQ(g *ir.Graph, v *ir.Value, st *Stats) error {
	x, s, z := v.Arg(0), v.Arg(1), v.Arg(2)
	switch {
	case x.IsConst() && allConst(s, z):
		p, err := runtime.Compile(single(v))
		if err != nil {
			return err
		}
		out, err := p.Run(nil)
		if err != nil {
			return err
		}
		c := g.AddConst(v.Name, out["y"])
		v.ReplaceUses(c)
		replaceOutput(g, v, c)
		st.Folded++
	case x.Op == "DequantizeLinear" && sameConst(x.Arg(1), s) && sameConst(x.Arg(2), z) &&
		x.Int("axis") == v.Int("axis") && x.Arg(0).Type.Equal(v.Type):
		v.ReplaceUses(x.Arg(0))
		replaceOutput(g, v, x.Arg(0))
		st.Removed++
	}
	return nil
}

// single copies a constant-argument value into a graph of its own with
// output y, to evaluate it with the runtime.
func single(v *ir.Value) *ir.Graph {
	g := ir.NewGraph("fold")
	args := make([]*ir.Value, v.NumArgs())
	for i, a := range v.Args() {
		if a != nil {
			args[i] = g.AddConst(a.Name, a.Const)
		}
	}
	y := g.AddTyped(v.Op, v.Name, v.Type, v.Attrs.Clone(), args...)
	g.SetOutput("y", y)
	return g
}

func replaceOutput(g *ir.Graph, old, nu *ir.Value) {
	for i, o := range g.Outputs {
		if o.Value == old {
			g.Outputs[i].Value = nu
		}
	}
}

// lowerMatMul rewrites MatMul(DQ(a, sa, za), DQ(w, sw, zw)) with constant
// parameters, a per-tensor activation and a constant 2-D int8 weight.
func lowerMatMul(g *ir.Graph, v *ir.Value, st *Stats) error {
	da, dw := v.Arg(0), v.Arg(1)
	if da.Op != "DequantizeLinear" || dw.Op != "DequantizeLinear" || v.Type.DType != ir.F32 {
		return nil
	}
	a, sa, za := da.Arg(0), da.Arg(1), da.Arg(2)
	w, sw, zw := dw.Arg(0), dw.Arg(1), dw.Arg(2)
	if !allConst(sa, za, w, sw, zw) || sa.Type.Rank() != 0 || w.Type.Rank() != 2 || w.Type.DType != ir.I8 {
		return nil
	}
	if sw.Type.Rank() == 1 && dw.Int("axis") != 1 && dw.Int("axis") != -1 {
		return nil // per-row weight scales do not factor out of the product
	}
	// QLinearMatMul when the only user requantizes with per-tensor params.
	if us := v.Uses(); len(us) == 1 && us[0].Op == "QuantizeLinear" && us[0].Arg(0) == v && allConst(us[0].Arg(1), us[0].Arg(2)) &&
		us[0].Arg(1).Type.Rank() == 0 && us[0].Arg(2) != nil && za != nil && zw != nil {
		q := us[0]
		y, err := g.Add("QLinearMatMul", v.Name+"_qlinear", ir.Attrs{}, a, sa, za, w, sw, zw, q.Arg(1), q.Arg(2))
		if err != nil {
			return err
		}
		q.ReplaceUses(y)
		replaceOutput(g, q, y)
		st.Lowered++
		return nil
	}
	args := []*ir.Value{a, w, za}
	if z := zeroPointOrNil(zw); z != nil {
		args = append(args, z)
	}
	acc, err := g.Add("MatMulInteger", v.Name+"_integer", ir.Attrs{}, args...)
	if err != nil {
		return err
	}
	f, err := g.Add("Cast", v.Name+"_cast", ir.Attrs{"to": "f32"}, acc)
	if err != nil {
		return err
	}
	scale, err := mulConst(g, v.Name+"_scale", sa.Const, sw.Const)
	if err != nil {
		return err
	}
	y, err := g.Add("Mul", v.Name+"_rescaled", ir.Attrs{}, f, scale)
	if err != nil {
		return err
	}
	if !y.Type.Equal(v.Type) {
		return fmt.Errorf("lowering gives %v, want %v", y.Type, v.Type)
	}
	v.ReplaceUses(y)
	replaceOutput(g, v, y)
	st.Lowered++
	return nil
}

// zeroPointOrNil drops an all-zero weight zero point: MatMulInteger then
// skips the correction, and ORT's kernel needs no per-column support.
func zeroPointOrNil(z *ir.Value) *ir.Value {
	if z == nil {
		return nil
	}
	xs, _ := z.Const.AsInt64s()
	for _, x := range xs {
		if x != 0 {
			return z
		}
	}
	return nil
}

// mulConst makes the constant sa·sw (scalar times scalar or vector) in
// float32, the product ORT's MatMulIntegerToFloat forms.
func mulConst(g *ir.Graph, name string, sa, sw *ir.Tensor) (*ir.Value, error) {
	a := sa.F32()[0]
	ws := sw.F32()
	out := make([]float32, len(ws))
	for i, w := range ws {
		out[i] = a * w
	}
	return g.AddConst(name, ir.F32Tensor(append([]int64{}, sw.Shape...), out)), nil
}
