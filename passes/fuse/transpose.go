package fuse

import (
	"slices"

	"github.com/pqvc/pqvc/ir"
	rw "github.com/pqvc/pqvc/passes/rewrite"
)

// Transpose folding: two Transposes in a row are one (or none), and a
// Transpose of a Gemm operand is Gemm's transA/transB flag. A 2-D MatMul by
// a transposed matrix becomes Gemm with transB, which reads the matrix in
// place instead of materialising the transpose.

func transposeRules(Options) []*rw.Rule {
	return []*rw.Rule{transposePair, gemmTransB, gemmTransA, matmulTransB}
}

// Transpose(Transpose(x)@t1)@t2 => Transpose(x) {perm=p1∘p2}, or x itself
var transposePair = &rw.Rule{
	Name:    "transpose_pair",
	Pattern: rw.Op("Transpose", rw.Op("Transpose", rw.Var("x")).Bind("t1")),
	Check: func(m *rw.Match) string {
		if !uses(m.V("t1"), 1) {
			return "the inner Transpose is used elsewhere"
		}
		return ""
	},
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		x := m.V("x")
		p1, p2 := perm(m.V("t1")), perm(m.Root)
		q := make([]int64, len(p2))
		identity := true
		for i, j := range p2 {
			q[i] = p1[j] // out[i] = t1[p2[i]] = x[p1[p2[i]]]
			identity = identity && q[i] == int64(i)
		}
		if identity {
			return x, nil
		}
		return add(g, "Transpose", m.Root, ir.Attrs{"perm": q}, x)
	},
}

// perm returns a Transpose's permutation, filling in the default reversal.
func perm(t *ir.Value) []int64 {
	if p := t.Ints("perm"); len(p) > 0 {
		return p
	}
	r := t.Arg(0).Type.Rank()
	p := make([]int64, r)
	for i := range p {
		p[i] = int64(r - 1 - i)
	}
	return p
}

// is2DSwap holds for a Transpose that swaps the two dims of a matrix.
var is2DSwap = rw.Pred{Name: "a 2-D transpose", Fn: func(t *ir.Value) bool {
	return t.Type.Rank() == 2 && slices.Equal(perm(t), []int64{1, 0})
}}

// Gemm(a, Transpose(b)@t, ...) => Gemm(a, b, ...) {transB=!transB}
var gemmTransB = &rw.Rule{
	Name:    "gemm_transb",
	Pattern: rw.Op("Gemm", rw.Var("a"), rw.Op("Transpose", rw.Var("b")).Bind("t").Where(is2DSwap)).AnyRest(),
	Check:   oneUse("t"),
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		return flipGemm(g, m.Root, 1, m.V("b"), "transB")
	},
}

// Gemm(Transpose(a)@t, b, ...) => Gemm(a, b, ...) {transA=!transA}
var gemmTransA = &rw.Rule{
	Name:    "gemm_transa",
	Pattern: rw.Op("Gemm", rw.Op("Transpose", rw.Var("a")).Bind("t").Where(is2DSwap), rw.Var("b")).AnyRest(),
	Check:   oneUse("t"),
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		return flipGemm(g, m.Root, 0, m.V("a"), "transA")
	},
}

// MatMul(x, Transpose(w)@t) => Gemm(x, w) {transB=1}, x and w 2-D
var matmulTransB = &rw.Rule{
	Name:    "matmul_transb",
	Pattern: rw.Op("MatMul", rw.Var("x", rw.Rank(2)), rw.Op("Transpose", rw.Var("w")).Bind("t").Where(is2DSwap)),
	Check:   oneUse("t"),
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		return add(g, "Gemm", m.Root, ir.Attrs{"transB": int64(1)}, m.V("x"), m.V("w"))
	},
}

func oneUse(name string) func(m *rw.Match) string {
	return func(m *rw.Match) string {
		if !uses(m.V(name), 1) {
			return name + " is used elsewhere"
		}
		return ""
	}
}

// flipGemm rebuilds gemm with argument i replaced by x and flag toggled.
func flipGemm(g *ir.Graph, gemm *ir.Value, i int, x *ir.Value, flag string) (*ir.Value, error) {
	attrs := gemm.Attrs.Clone()
	if attrs == nil {
		attrs = ir.Attrs{}
	}
	attrs[flag] = 1 - gemm.Int(flag)
	args := slices.Clone(gemm.Args())
	args[i] = x
	return add(g, "Gemm", gemm, attrs, args...)
}
