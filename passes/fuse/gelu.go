package fuse

import (
	"math"

	"github.com/pqvc/pqvc/ir"
	rw "github.com/pqvc/pqvc/passes/rewrite"
)

// Exporters write the exact GELU, x·½·(1+erf(x/√2)), with the three
// products in different orders (torch.onnx: (x·(1+erf))·½; hand-written
// HF code: x·(½·(1+erf)) or (x·½)·(1+erf)) and the inner scaling as x/√2 or
// x·(1/√2). One rule per product order; Check reads the erf argument, so
// both scalings share a rule. target=onnx emits ONNX Gelu (opset 20),
// target=ort com.microsoft.Gelu, which ORT has at any opset and which keeps
// an opset-17 model at 17.

func geluRules(o Options) []*rw.Rule {
	op := "Gelu"
	if o.Target == TargetORT {
		op = ir.MSDomain + ".Gelu"
	}
	mk := func(name string, p *rw.Pattern) *rw.Rule {
		return &rw.Rule{Name: name, Pattern: p, Check: checkGelu, Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
			return add(g, op, m.Root, nil, m.V("x"))
		}}
	}
	erf1 := func() *rw.Pattern {
		return rw.Op("Add", rw.Op("Erf", rw.Var("u")).Bind("erf"), rw.Var("one", rw.IsConst)).Bind("p1")
	}
	return []*rw.Rule{
		// Mul(Mul(x, Add(Erf(u), one)@p1)@xp, half) => Gelu(x)
		mk("gelu", rw.Op("Mul", rw.Op("Mul", rw.Var("x"), erf1()).Bind("xp"), rw.Var("half", rw.IsConst))),
		// Mul(x, Mul(Add(Erf(u), one)@p1, half)@xp) => Gelu(x)
		mk("gelu_inner_half", rw.Op("Mul", rw.Var("x"), rw.Op("Mul", erf1(), rw.Var("half", rw.IsConst)).Bind("xp"))),
		// Mul(Mul(x, half)@xp, Add(Erf(u), one)@p1) => Gelu(x)
		mk("gelu_half_first", rw.Op("Mul", rw.Op("Mul", rw.Var("x"), rw.Var("half", rw.IsConst)).Bind("xp"), erf1())),
	}
}

// checkGelu accepts a match whose constants are ½ and 1 and whose erf
// argument u is x/√2 or x·(1/√2), with nothing outside using the parts.
func checkGelu(m *rw.Match) string {
	x := m.V("x")
	if h, ok := scalar(m.V("half")); !ok || !near(h, 0.5) {
		return "half is not 0.5"
	}
	if o, ok := scalar(m.V("one")); !ok || !near(o, 1) {
		return "one is not 1"
	}
	u := m.V("u")
	if u.NumArgs() != 2 || u.Arg(0) != x {
		return "erf argument is not a scaling of x"
	}
	c, ok := scalar(u.Arg(1))
	switch {
	case !ok:
		return "erf scaling is not a constant"
	case u.Op == "Div" && near(c, math.Sqrt2):
	case u.Op == "Mul" && near(c, 1/math.Sqrt2):
	default:
		return "erf argument is not x/√2"
	}
	for _, n := range []string{"erf", "p1", "xp"} {
		if !uses(m.V(n), 1) {
			return n + " is used outside the GELU"
		}
	}
	if !uses(u, 1) {
		return "x/√2 is used outside the GELU"
	}
	if x.Type.DType != ir.F32 || !x.Type.Equal(m.Root.Type) {
		return "x is not f32 of the result's shape"
	}
	return ""
}
