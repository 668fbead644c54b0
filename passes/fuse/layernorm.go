package fuse

import (
	"github.com/pqvc/pqvc/ir"
	rw "github.com/pqvc/pqvc/passes/rewrite"
)

// Opset-13 exporters spell LayerNorm as nine ops. Two rules rebuild it:
// the first fuses the normalisation and scale (ending in Mul), the second
// folds the bias Add that follows into the fused op. Splitting at the Mul
// also covers a LayerNorm without bias, and lets the engine, which visits
// the Mul before the Add, fuse in topological order.

// layerNormRules returns the layernorm rules; both targets run
// LayerNormalization natively (opset 17).
func layerNormRules(Options) []*rw.Rule { return []*rw.Rule{layerNorm, layerNormBias} }

// Mul(Div(Sub(x, ReduceMean(x)@mean)@d, Sqrt(Add(ReduceMean(Pow(d, two))@var, eps)@ve)@sd)@n, scale)
//
//	=> LayerNormalization(x, scale) {axis=-1, epsilon=eps}
var layerNorm = &rw.Rule{
	Name: "layernorm",
	Pattern: rw.Op("Mul",
		rw.Op("Div",
			rw.Op("Sub", rw.Var("x"), rw.Op("ReduceMean", rw.Var("x")).Bind("mean")).Bind("d"),
			rw.Op("Sqrt", rw.Op("Add", rw.Op("ReduceMean", rw.Op("Pow", rw.Var("d"), rw.Var("two", rw.IsConst)).Bind("sq")).Bind("var"),
				rw.Var("eps", rw.IsConst)).Bind("ve")).Bind("sd")).Bind("n"),
		rw.Var("scale", rw.IsConst)),
	Check: func(m *rw.Match) string {
		x := m.V("x")
		if !isLastAxis(m.V("mean")) || !isLastAxis(m.V("var")) {
			return "mean is not over the last axis alone"
		}
		if p, ok := scalar(m.V("two")); !ok || p != 2 {
			return "power is not 2"
		}
		if _, ok := scalar(m.V("eps")); !ok {
			return "epsilon is not a scalar"
		}
		if !uses(m.V("d"), 2) {
			return "centred x is used outside the LayerNorm"
		}
		for _, n := range []string{"mean", "sq", "var", "ve", "sd", "n"} {
			if !uses(m.V(n), 1) {
				return n + " is used outside the LayerNorm"
			}
		}
		if x.Type.DType != ir.F32 || x.Type.Rank() == 0 {
			return "x is not an f32 tensor"
		}
		if !x.Type.Equal(m.Root.Type) {
			return "scale broadcasts x to a larger shape"
		}
		if !isChannelVector(m.V("scale"), x) {
			return "scale is not a vector over the last axis"
		}
		return ""
	},
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		eps, _ := scalar(m.V("eps"))
		scale, err := channelVector(g, m.V("scale"), m.V("x"))
		if err != nil {
			return nil, err
		}
		return add(g, "LayerNormalization", m.Root, ir.Attrs{"axis": int64(-1), "epsilon": float32(eps)}, m.V("x"), scale)
	},
}

// Add(LayerNormalization(x, scale, ∅)@ln, bias) => LayerNormalization(x, scale, bias)
var layerNormBias = &rw.Rule{
	Name:    "layernorm_bias",
	Pattern: rw.Op("Add", rw.Op("LayerNormalization", rw.Var("x"), rw.Var("scale"), rw.Absent()).Bind("ln"), rw.Var("bias", rw.IsConst)),
	Check: func(m *rw.Match) string {
		ln := m.V("ln")
		if !uses(ln, 1) {
			return "the unbiased LayerNorm is used elsewhere"
		}
		if ln.Int("axis") != -1 && ln.Int("axis") != int64(ln.Type.Rank()-1) {
			return "LayerNorm is not over the last axis"
		}
		if !ln.Type.Equal(m.Root.Type) || !isChannelVector(m.V("bias"), m.V("x")) {
			return "bias is not a vector over the last axis"
		}
		return ""
	},
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		ln := m.V("ln")
		bias, err := channelVector(g, m.V("bias"), m.V("x"))
		if err != nil {
			return nil, err
		}
		return add(g, "LayerNormalization", m.Root, ln.Attrs.Clone(), m.V("x"), m.V("scale"), bias)
	},
}

// isChannelVector reports whether constant c holds one value per element
// of x's last dim, in any shape that broadcasts as a vector ([C], [1,1,C]).
func isChannelVector(c, x *ir.Value) bool {
	last := x.Type.Shape[x.Type.Rank()-1]
	if !last.IsStatic() || c.Type.DType != ir.F32 || c.Type.Rank() > x.Type.Rank() {
		return false
	}
	dims, ok := c.Type.Shape.Ints()
	if !ok || len(dims) == 0 || dims[len(dims)-1] != last.C {
		return false
	}
	for _, d := range dims[:len(dims)-1] {
		if d != 1 {
			return false
		}
	}
	return true
}

// channelVector returns c as a 1-D constant (LayerNormalization's scale and
// bias must be, for ONNX Runtime), reusing c when it already is.
func channelVector(g *ir.Graph, c, x *ir.Value) (*ir.Value, error) {
	if c.Type.Rank() == 1 {
		return c, nil
	}
	n := x.Type.Shape[x.Type.Rank()-1].C
	return g.AddConst(c.Name, c.Const.Reshaped([]int64{n})), nil
}
