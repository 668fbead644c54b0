package fuse

import (
	"fmt"
	"slices"

	"github.com/pqvc/pqvc/ir"
	rw "github.com/pqvc/pqvc/passes/rewrite"
)

// HF-style attention projects q, k and v with three MatMul+Add pairs on the
// same input. One MatMul with the weights side by side reads the input
// once and runs one larger, more efficient GEMM; Slices then give each
// consumer its columns. It also makes the projection the single
// [hidden, 3·hidden] one that com.microsoft.Attention takes, as timm's is.

func qkvRules(Options) []*rw.Rule { return []*rw.Rule{qkv} }

// Add(MatMul(x, w)@mm, b), with siblings Add(MatMul(x, wᵢ), bᵢ)
//
//	=> Slice(Add(MatMul(x, [w|w₁|…]), [b|b₁|…]), …) for each
var qkv = &rw.Rule{
	Name:    "qkv",
	Pattern: rw.Op("Add", rw.Op("MatMul", rw.Var("x"), rw.Var("w", rw.IsConst, rw.Rank(2))).Bind("mm"), rw.Var("b", rw.IsConst, rw.Rank(1))),
	Check: func(m *rw.Match) string {
		sibs := siblings(m.V("x"))
		if len(sibs) < 2 {
			return "x feeds no other MatMul+Add"
		}
		if !slices.Contains(sibs, m.Root) {
			return "the projection is used without its bias or has a different input width"
		}
		return ""
	},
	Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
		x := m.V("x")
		sibs := siblings(x)
		var ws, bs []*ir.Tensor
		for _, s := range sibs {
			mm, b := linearParts(s)
			ws, bs = append(ws, mm.Arg(1).Const), append(bs, b.Const)
		}
		w, b := concatCols(ws), concatCols(bs)
		mm0, _ := linearParts(sibs[0])
		name := mm0.Arg(1).Name + "_qkv"
		big, err := g.Add("MatMul", sibs[0].Name+"_qkv_matmul", nil, x, g.AddConst(name, w))
		if err != nil {
			return nil, err
		}
		biased, err := g.Add("Add", sibs[0].Name+"_qkv", nil, big, g.AddConst(name+"_bias", b))
		if err != nil {
			return nil, err
		}
		var repl *ir.Value
		off := int64(0)
		for _, s := range sibs {
			n := s.Type.Shape[s.Type.Rank()-1].C
			sl, err := sliceLast(g, s.Name, biased, off, off+n)
			if err != nil {
				return nil, err
			}
			off += n
			if s == m.Root {
				repl = sl
				continue // the engine redirects and cleans up the root
			}
			s.ReplaceUses(sl)
			rw.RemoveDeadFrom(g, s)
		}
		if repl == nil {
			return nil, fmt.Errorf("root is not among its siblings")
		}
		return repl, nil
	},
}

// linearParts returns the MatMul and the bias of Add(MatMul(x, w), b) in
// either argument order.
func linearParts(add *ir.Value) (mm, b *ir.Value) {
	a0, a1 := add.Arg(0), add.Arg(1)
	if a0.Op == "MatMul" {
		return a0, a1
	}
	return a1, a0
}

// siblings lists, in value-ID order (stable across runs), the bias Adds of
// every MatMul on x by a constant 2-D f32 weight whose only user is an Add
// of a constant 1-D bias of its width.
func siblings(x *ir.Value) []*ir.Value {
	var out []*ir.Value
	seen := map[*ir.Value]bool{}
	for _, mm := range x.Uses() {
		if seen[mm] || mm.Op != "MatMul" || mm.Arg(0) != x || !mm.Arg(1).IsConst() || mm.Arg(1).Type.Rank() != 2 ||
			mm.Arg(1).Type.DType != ir.F32 || !uses(mm, 1) {
			continue
		}
		seen[mm] = true
		a := mm.Uses()[0]
		if a.Op != "Add" {
			continue
		}
		m2, b := linearParts(a)
		if m2 != mm || !b.IsConst() || b.Type.Rank() != 1 || b.Type.DType != ir.F32 ||
			b.Type.Shape[0] != mm.Arg(1).Type.Shape[1] || !a.Type.Equal(mm.Type) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *ir.Value) int { return a.ID - b.ID })
	return out
}

// concatCols concatenates f32 tensors of equal leading dims along their
// last axis.
func concatCols(ts []*ir.Tensor) *ir.Tensor {
	rows := 1
	lead := ts[0].Shape[:len(ts[0].Shape)-1]
	for _, d := range lead {
		rows *= int(d)
	}
	total := int64(0)
	for _, t := range ts {
		total += t.Shape[len(t.Shape)-1]
	}
	out := make([]float32, 0, rows*int(total))
	for r := range rows {
		for _, t := range ts {
			n := int(t.Shape[len(t.Shape)-1])
			out = append(out, t.F32()[r*n:(r+1)*n]...)
		}
	}
	return ir.F32Tensor(append(slices.Clone(lead), total), out)
}
