package fuse

import (
	"github.com/pqvc/pqvc/ir"
	rw "github.com/pqvc/pqvc/passes/rewrite"
)

// quantize leaves each int8 MatMul as MatMulInteger → Cast → Mul by the
// scales, with dynamic activations quantized by DynamicQuantizeLinear's
// function body (ReduceMin/ReduceMax, Div, Clip, Round, Cast,
// QuantizeLinear), since the IR's values have one result each. ONNX
// Runtime runs that as a dozen small kernels per activation; its contrib
// ops do it in one. Measured on DeiT-tiny (ORT 1.30, 1 thread) the fused
// form is about 7% faster for dynamic int8, and for static int8 it is what
// makes the integer path run at all on static-shape exports: there ORT's
// own MatMulIntegerToFloat fusion needs the scale as a Mul of two scales,
// which constant folding has already merged. target=ort only; run fuse
// again after quantize (the first fuse, before quantize, finds nothing).

func qmatmulRules(o Options) []*rw.Rule {
	if o.Target != TargetORT {
		return nil
	}
	return []*rw.Rule{dynQMatMul, staticQMatMul, qmatmulBias("qmatmul_dynamic_bias", dqmmOp, 4), qmatmulBias("qmatmul_static_bias", mitfOp, 6)}
}

const (
	dqmmOp = ir.MSDomain + ".DynamicQuantizeMatMul"
	mitfOp = ir.MSDomain + ".MatMulIntegerToFloat"
)

// Mul(Cast(MatMulInteger(QuantizeLinear(x, s, z)@q, w, za)@mmi)@cast, Mul(s2, ws)@sc)
//
//	=> DynamicQuantizeMatMul(x, w, ws, wz)
var dynQMatMul = &rw.Rule{
	Name: "qmatmul_dynamic",
	Pattern: rw.Op("Mul",
		rw.Op("Cast", rw.Op("MatMulInteger",
			rw.Op("QuantizeLinear", rw.Var("x"), rw.Var("s"), rw.Var("z")).Bind("q"),
			rw.Var("w", rw.IsConst, rw.Rank(2)), rw.Var("za")).AnyRest().Bind("mmi")).Bind("cast"),
		rw.Op("Mul", rw.Var("s2"), rw.Var("ws", rw.IsConst)).Bind("sc")),
	Check: func(m *rw.Match) string {
		if r := checkIntChain(m); r != "" {
			return r
		}
		x, s, z := m.V("x"), m.V("s"), m.V("z")
		switch {
		case m.V("s2") != s || m.V("za") != z:
			return "the rescale does not use the activation's own scale and zero point"
		case x.Type.DType != ir.F32 || m.V("q").Type.DType != ir.U8:
			return "activation is not f32 quantized to u8"
		case !uses(m.V("sc"), 1):
			return "the combined scale has other users"
		}
		if r := dynamicU8Params(x, s, z); r != "" {
			return "activation scale is not DynamicQuantizeLinear's: " + r
		}
		return perColumn(m.V("ws"), m.V("w"))
	},
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		args := []*ir.Value{m.V("x"), m.V("w"), m.V("ws")}
		if wz := m.V("mmi").Arg(3); wz != nil {
			args = append(args, wz)
		}
		return add(g, dqmmOp, m.Root, nil, args...)
	},
}

// Mul(Cast(MatMulInteger(a, w, za)@mmi)@cast, sc) with constant w, za, sc
//
//	=> MatMulIntegerToFloat(a, w, 1, sc, za, wz)
//
// fold_qdq lower=true folds a_scale·w_scale into one constant, so it goes
// in as b_scale with an a_scale of 1 (exact: 1·sc = sc).
var staticQMatMul = &rw.Rule{
	Name: "qmatmul_static",
	Pattern: rw.Op("Mul",
		rw.Op("Cast", rw.Op("MatMulInteger", rw.Var("a"), rw.Var("w", rw.IsConst, rw.Rank(2)),
			rw.Var("za", rw.IsConst)).AnyRest().Bind("mmi")).Bind("cast"),
		rw.Var("sc", rw.IsConst, rw.DType(ir.F32))),
	Check: func(m *rw.Match) string {
		if r := checkIntChain(m); r != "" {
			return r
		}
		if dt := m.V("a").Type.DType; dt != ir.U8 && dt != ir.I8 {
			return "activation is not 8-bit"
		}
		if elems(m.V("za")) != 1 {
			return "activation zero point is not a scalar"
		}
		return perColumn(m.V("sc"), m.V("w"))
	},
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		one := g.AddConst(m.Root.Name+"_a_scale", ir.ScalarF32(1))
		mmi := m.V("mmi")
		return add(g, mitfOp, m.Root, nil, m.V("a"), m.V("w"), one, m.V("sc"), m.V("za"), mmi.Arg(3))
	},
}

// qmatmulBias folds a constant per-column bias Add into op, whose bias is
// argument bi.
//
//	Add(op(…)@mm, b) => op(…, b)
func qmatmulBias(name, op string, bi int) *rw.Rule {
	return &rw.Rule{
		Name:    name,
		Pattern: rw.Op("Add", rw.Op(op).AnyRest().Bind("mm"), rw.Var("b", rw.IsConst, rw.Rank(1), rw.DType(ir.F32))),
		Check: func(m *rw.Match) string {
			mm := m.V("mm")
			switch {
			case mm.Arg(bi) != nil:
				return "already has a bias"
			case !uses(mm, 1):
				return "the product is used without the bias too"
			case !m.Root.Type.Equal(mm.Type):
				return "bias broadcasts the product"
			}
			return ""
		},
		Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
			mm := m.V("mm")
			args := make([]*ir.Value, bi+1)
			copy(args, mm.Args())
			args[bi] = m.V("b")
			return add(g, op, m.Root, nil, args...)
		},
	}
}

// checkIntChain checks the MatMulInteger → Cast(f32) part both rules share.
func checkIntChain(m *rw.Match) string {
	mmi, cast := m.V("mmi"), m.V("cast")
	switch {
	case cast.Str("to") != "f32":
		return "Cast is not to f32"
	case !uses(mmi, 1) || !uses(cast, 1):
		return "the integer product has other users"
	case mmi.Arg(3) != nil && !mmi.Arg(3).IsConst():
		return "weight zero point is not constant"
	}
	if dt := m.V("w").Type.DType; dt != ir.I8 && dt != ir.U8 {
		return "weight is not 8-bit"
	}
	return ""
}

// perColumn accepts a scale (or zero point) that is one value or one per
// column of w.
func perColumn(s, w *ir.Value) string {
	n := elems(s)
	if s.Type.Rank() > 1 || (n != 1 && n != w.Type.Shape[1].C) {
		return "weight scale is neither per tensor nor per column"
	}
	return ""
}

// elems is the element count of a value of static shape, else -1.
func elems(v *ir.Value) int64 {
	dims, ok := v.Type.Shape.Ints()
	if !ok {
		return -1
	}
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

// dynamicU8Params reports why (s, z) are not the u8 DynamicQuantizeLinear
// parameters of x as quantize writes them:
//
//	lo = Min(ReduceMin(x), 0)      hi = Max(ReduceMax(x), 0)
//	s  = Max(Div(Sub(hi, lo), 255), tiny)
//	z  = Cast<u8>(Round(Clip(Neg(Div(lo, s)), 0, 255)))
func dynamicU8Params(x, s, z *ir.Value) string {
	bound := func(v *ir.Value, op, reduce string, c float64) bool {
		if v.Op != op || v.NumArgs() != 2 {
			return false
		}
		for i := range 2 {
			r, k := v.Arg(i), v.Arg(1-i)
			if r.Op == reduce && r.NumArgs() == 1 && r.Arg(0) == x && len(r.Ints("axes")) == 0 && r.Int("keepdims") == 0 {
				if kv, ok := scalar(k); ok && kv == c {
					return true
				}
			}
		}
		return false
	}
	// s = Max(Div(Sub(hi, lo), 255), tiny)
	if s.Op != "Max" || s.NumArgs() != 2 {
		return "scale is not a Max"
	}
	div, floor := s.Arg(0), s.Arg(1)
	if div.Op != "Div" {
		div, floor = floor, div
	}
	if f, ok := scalar(floor); !ok || f <= 0 || f > 1e-20 {
		return "scale floor is not a tiny constant"
	}
	if c, ok := scalar(div.Arg(1)); div.Op != "Div" || !ok || c != 255 || div.Arg(0).Op != "Sub" {
		return "scale is not (hi−lo)/255"
	}
	hi, lo := div.Arg(0).Arg(0), div.Arg(0).Arg(1)
	if !bound(hi, "Max", "ReduceMax", 0) || !bound(lo, "Min", "ReduceMin", 0) {
		return "range is not min/max of the activation widened to 0"
	}
	// z = Cast<u8>(Round(Clip(Neg(Div(lo, s)), 0, 255)))
	if z.Op != "Cast" || z.Str("to") != "u8" {
		return "zero point is not a Cast to u8"
	}
	r := z.Arg(0)
	if r.Op != "Round" {
		return "zero point is not rounded"
	}
	c := r.Arg(0)
	if c.Op != "Clip" || c.NumArgs() != 3 {
		return "zero point is not clipped"
	}
	if l, ok := scalar(c.Arg(1)); !ok || l != 0 {
		return "zero point clip is not [0, 255]"
	}
	if h, ok := scalar(c.Arg(2)); !ok || h != 255 {
		return "zero point clip is not [0, 255]"
	}
	n := c.Arg(0)
	if n.Op != "Neg" || n.Arg(0).Op != "Div" || n.Arg(0).Arg(0) != lo || n.Arg(0).Arg(1) != s {
		return "zero point is not −lo/scale"
	}
	return ""
}
