package quant

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
)

// ExpandContrib rewrites ONNX Runtime's fused int8 matmuls, which fuse's
// qmatmul pattern emits, back into default-domain ONNX:
//
//	DynamicQuantizeMatMul(x, w, ws, wz, b) → DynamicQuantizeLinear body of x,
//	    MatMulInteger, Cast, Mul(·, Mul(sx, ws)), Add(·, b)
//	MatMulIntegerToFloat(a, w, sa, sw, za, wz, b) → MatMulInteger, Cast,
//	    Mul(·, Mul(sa, sw)), Add(·, b)
//
// This is the form quantize writes, so backends that do not target ONNX
// Runtime (ptl, go) read a recipe's graph whether or not it was fused for
// ORT. It computes the same values (the runtime's fused kernels are defined
// as these subgraphs). It returns how many ops it expanded.
func ExpandContrib(g *ir.Graph) (int, error) {
	q := &quantizer{g: g, act: ir.U8, acts: map[*ir.Value]*ir.Value{}}
	n := 0
	for _, v := range g.Values() {
		var a, za, sa *ir.Value
		var w, ws, wz, b *ir.Value
		switch v.Op {
		case ir.MSDomain + ".DynamicQuantizeMatMul":
			p, err := q.dynActivation(v.Arg(0))
			if err != nil {
				return n, fmt.Errorf("%s: %w", v, err)
			}
			a, za, sa = p.x, p.zp, p.scale
			w, ws, wz, b = v.Arg(1), v.Arg(2), v.Arg(3), v.Arg(4)
		case ir.MSDomain + ".MatMulIntegerToFloat":
			a, sa, za = v.Arg(0), v.Arg(2), v.Arg(4)
			w, ws, wz, b = v.Arg(1), v.Arg(3), v.Arg(5), v.Arg(6)
		default:
			continue
		}
		y, err := q.integerMatMul(v.Name, a, za, sa, w, ws, wz, b)
		if err != nil {
			return n, fmt.Errorf("%s: %w", v, err)
		}
		if !y.Type.Equal(v.Type) {
			return n, fmt.Errorf("%s: expanding gives %v, want %v", v, y.Type, v.Type)
		}
		v.ReplaceUses(y)
		replaceOutput(g, v, y)
		n++
	}
	g.RemoveDead()
	return n, nil
}

// integerMatMul builds MatMulInteger(a, w, za, wz) → Cast → Mul by sa·ws →
// Add b (when b is not nil).
func (q *quantizer) integerMatMul(name string, a, za, sa, w, ws, wz, b *ir.Value) (*ir.Value, error) {
	g := q.g
	args := []*ir.Value{a, w, za}
	if wz != nil {
		if za == nil {
			return nil, fmt.Errorf("a weight zero point without an activation zero point")
		}
		args = append(args, wz)
	}
	acc, err := g.Add("MatMulInteger", q.name(name, "MatMulInteger"), ir.Attrs{}, args...)
	if err != nil {
		return nil, err
	}
	f, err := g.Add("Cast", q.name(name, "cast"), ir.Attrs{"to": "f32"}, acc)
	if err != nil {
		return nil, err
	}
	sc, err := g.Add("Mul", q.name(name, "scale"), ir.Attrs{}, sa, ws)
	if err != nil {
		return nil, err
	}
	y, err := g.Add("Mul", q.name(name, "rescaled"), ir.Attrs{}, f, sc)
	if err != nil {
		return nil, err
	}
	if b != nil {
		if y, err = g.Add("Add", q.name(name, "bias"), ir.Attrs{}, y, b); err != nil {
			return nil, err
		}
	}
	return y, nil
}
