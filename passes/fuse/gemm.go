package fuse

import (
	"github.com/pqvc/pqvc/ir"
	rw "github.com/pqvc/pqvc/passes/rewrite"
)

// A 2-D MatMul followed by a bias Add is one Gemm, which both ONNX and
// ONNX Runtime run with the bias folded into the product's epilogue. In a
// ViT only the classifier head is 2-D; the token-wise linears are 3-D.
// Option gemm=all also turns those (static shapes only) into
// Reshape→Gemm→Reshape; measured on DeiT-tiny in ONNX Runtime it gains
// nothing (ORT fuses MatMul+Add itself), so the default is gemm=matrix.
// com.microsoft.FusedMatMul takes no bias and would only add a domain.

func gemmRules(o Options) []*rw.Rule {
	if o.Gemm == GemmAll {
		return []*rw.Rule{gemm, gemmND}
	}
	return []*rw.Rule{gemm}
}

// Add(MatMul(x, w)@mm, b) => Gemm(x, w, b)
var gemm = &rw.Rule{
	Name:    "gemm",
	Pattern: rw.Op("Add", rw.Op("MatMul", rw.Var("x", rw.Rank(2)), rw.Var("w", rw.Rank(2))).Bind("mm"), rw.Var("b")),
	Check: func(m *rw.Match) string {
		if !uses(m.V("mm"), 1) {
			return "the product is used without the bias too"
		}
		b := m.V("b")
		if b.Type.Rank() > 2 || b.Type.DType != m.Root.Type.DType {
			return "bias is not a vector or matrix of the same dtype"
		}
		if !m.V("mm").Type.Equal(m.Root.Type) {
			return "bias broadcasts the product to a larger shape"
		}
		if m.Root.Type.DType != ir.F32 {
			return "not f32"
		}
		return ""
	},
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		return add(g, "Gemm", m.Root, nil, m.V("x"), m.V("w"), m.V("b"))
	},
}

// Add(MatMul(x, w)@mm, b) => Reshape(Gemm(Reshape(x, [-1, K]), w, b), shape), x of rank ≥ 3
var gemmND = &rw.Rule{
	Name: "gemm_nd",
	Pattern: rw.Op("Add", rw.Op("MatMul", rw.Var("x"), rw.Var("w", rw.IsConst, rw.Rank(2))).Bind("mm"),
		rw.Var("b", rw.IsConst, rw.Rank(1))),
	Check: func(m *rw.Match) string {
		x := m.V("x")
		switch {
		case x.Type.Rank() < 3:
			return "x is not rank 3 or more"
		case !uses(m.V("mm"), 1):
			return "the product is used without the bias too"
		case !m.Root.Type.Shape.IsStatic() || !m.V("mm").Type.Equal(m.Root.Type):
			return "shape is not static or bias broadcasts the product"
		case m.Root.Type.DType != ir.F32:
			return "not f32"
		}
		return ""
	},
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		x, w := m.V("x"), m.V("w")
		n := m.Root.Name
		flat, err := g.Add("Reshape", n+"_2d_in", nil, x, i64(g, n+"_2d_shape", -1, w.Type.Shape[0].C))
		if err != nil {
			return nil, err
		}
		gm, err := g.Add("Gemm", n+"_gemm", nil, flat, w, m.V("b"))
		if err != nil {
			return nil, err
		}
		dims, _ := m.Root.Type.Shape.Ints()
		return g.Add("Reshape", n, nil, gm, i64(g, n+"_shape", dims...))
	},
}
