package prune

import (
	"fmt"
	"slices"

	"github.com/pqvc/pqvc/ir"
)

// plan says which coordinates of each role survive. Roles not in keep are
// untouched.
type plan struct {
	keep map[string][]int // sorted kept coordinates per role
	set  map[string]map[int]bool
}

func newPlan() *plan { return &plan{keep: map[string][]int{}, set: map[string]map[int]bool{}} }

func (p *plan) add(role string, kept []int) {
	kept = slices.Clone(kept)
	slices.Sort(kept)
	p.keep[role] = kept
	m := map[int]bool{}
	for _, k := range kept {
		m[k] = true
	}
	p.set[role] = m
}

func (p *plan) keeps(role string, c int) bool {
	m, ok := p.set[role]
	return !ok || m[c]
}

// size is the new size of an axis labelled lb.
func (p *plan) size(lb label) ir.Dim {
	d := ir.Static(1)
	for _, f := range lb {
		if k, ok := p.keep[f.role]; ok && f.role != "" {
			d = d.Mul(ir.Static(int64(len(k))))
		} else {
			d = d.Mul(f.size)
		}
	}
	return d
}

// touches reports whether the plan shrinks any factor of lb.
func (p *plan) touches(lb label) bool {
	for _, f := range lb {
		if k, ok := p.keep[f.role]; ok && int64(len(k)) != f.size.C {
			return true
		}
	}
	return false
}

// merge combines the labelings of several groups; two groups labelling the
// same axis is a bug in the analysis or a model this pass cannot prune.
func merge(labs []*labeling) (map[*ir.Value][]label, []*ir.Value, error) {
	out := map[*ir.Value][]label{}
	var order []*ir.Value
	for _, lab := range labs {
		for _, v := range lab.order {
			ls, ok := out[v]
			if !ok {
				ls = make([]label, v.Type.Rank())
				out[v] = ls
				order = append(order, v)
			}
			for i, lb := range lab.ax[v] {
				if lb == nil {
					continue
				}
				if ls[i] != nil && !slices.Equal(ls[i], lb) {
					return nil, nil, fmt.Errorf("%s: axis %d belongs to two groups (%v and %v)", v, i, ls[i], lb)
				}
				ls[i] = lb
			}
		}
	}
	return out, order, nil
}

// apply rewrites g: every constant with a labelled axis loses the pruned
// positions, every Reshape, Slice and Expand constant naming a pruned size
// is replaced, and every type is re-inferred.
func apply(g *ir.Graph, labs []*labeling, p *plan) error {
	ax, order, err := merge(labs)
	if err != nil {
		return err
	}
	var dead []*ir.Value
	// Shape constants are made per use (one old constant may be shared by
	// Reshapes that prune differently) but shared when equal.
	made := map[string]*ir.Value{}
	newConst := func(user *ir.Value, arg int, xs []int64) {
		old := user.Arg(arg)
		key := fmt.Sprint(xs)
		c := made[key]
		if c == nil {
			c = g.AddConst("", ir.I64Tensor([]int64{int64(len(xs))}, xs))
			made[key] = c
		}
		user.SetArg(arg, c)
		dead = append(dead, old)
	}
	for _, v := range order {
		ls := ax[v]
		switch {
		case v.IsConst():
			t := v.Const
			changed := false
			for i, lb := range ls {
				if lb == nil || !p.touches(lb) {
					continue
				}
				idx, err := positions(lb, p.keeps)
				if err != nil {
					return fmt.Errorf("%s: %w", v, err)
				}
				if t, err = take(t, i, idx); err != nil {
					return fmt.Errorf("%s: %w", v, err)
				}
				changed = true
			}
			if changed {
				nv := g.AddConst(v.Name, t)
				v.ReplaceUses(nv)
				// Drop the unpruned weights now rather than after the
				// loop, so that old and new copies of a large model's
				// weights are never all alive at once.
				if g.Remove(v) == nil {
					v.Const = nil
				} else {
					dead = append(dead, v)
				}
			}
		case v.Op == "Reshape":
			target, ok := ir.ConstInts(v.Arg(1))
			if !ok {
				return fmt.Errorf("%s: reshape target is not constant (canonicalize first)", v)
			}
			target = slices.Clone(target)
			changed := false
			for i, lb := range ls {
				if lb == nil || !p.touches(lb) || target[i] == 0 || target[i] == -1 {
					continue
				}
				d := p.size(lb)
				if !d.IsStatic() {
					return fmt.Errorf("%s: dim %d is %v after pruning but the target says %d", v, i, d, target[i])
				}
				target[i], changed = d.C, true
			}
			if changed {
				newConst(v, 1, target)
			}
		case v.Op == "Expand":
			shape, ok := ir.ConstInts(v.Arg(1))
			if !ok {
				continue
			}
			shape = slices.Clone(shape)
			off := len(ls) - len(shape)
			changed := false
			for i, lb := range ls {
				j := i - off
				if lb == nil || j < 0 || !p.touches(lb) || shape[j] != lb.product().C {
					continue
				}
				shape[j], changed = p.size(lb).C, true
			}
			if changed {
				newConst(v, 1, shape)
			}
		case v.Op == "Slice":
			if err := rewriteSlice(v, ax[v.Arg(0)], p, newConst); err != nil {
				return err
			}
		}
	}
	vals, err := g.Topo()
	if err != nil {
		return err
	}
	for _, v := range vals {
		if v.Op == ir.OpInput || v.Op == ir.OpConst {
			continue
		}
		if err := g.Reinfer(v); err != nil {
			return fmt.Errorf("after pruning: %w", err)
		}
	}
	for _, v := range dead {
		if v.Graph() == g && len(v.Uses()) == 0 {
			if err := g.Remove(v); err != nil {
				return err
			}
		}
	}
	return nil
}

func rewriteSlice(v *ir.Value, in []label, p *plan, newConst func(*ir.Value, int, []int64)) error {
	starts, ends, axes, _, ok := ir.SliceParams(v)
	if !ok || in == nil {
		return nil
	}
	starts, ends = slices.Clone(starts), slices.Clone(ends)
	changed := false
	for k, a := range axes {
		lb := in[a]
		if lb == nil || !p.touches(lb) {
			continue
		}
		inner := lb
		if inner[0].role == "" {
			inner = inner[1:]
		}
		old, nw := inner.product(), p.size(inner)
		dim := v.Arg(0).Type.Shape[a]
		s, e := clampBound(starts[k], dim.C), clampBound(ends[k], dim.C)
		starts[k], ends[k] = s/old.C*nw.C, e/old.C*nw.C
		changed = true
	}
	if changed {
		newConst(v, 1, starts)
		newConst(v, 2, ends)
	}
	return nil
}

// take returns t restricted to positions idx along axis.
func take(t *ir.Tensor, axis int, idx []int) (*ir.Tensor, error) {
	shape := slices.Clone(t.Shape)
	inner := 1
	for _, d := range shape[axis+1:] {
		inner *= int(d)
	}
	n := int(shape[axis])
	outer := t.Len() / max(1, n*inner)
	shape[axis] = int64(len(idx))
	var data any
	switch d := t.Data.(type) {
	case []float32:
		data = takeRows(d, outer, n, inner, idx)
	case []uint16:
		data = takeRows(d, outer, n, inner, idx)
	case []float64:
		data = takeRows(d, outer, n, inner, idx)
	case []int64:
		data = takeRows(d, outer, n, inner, idx)
	case []int32:
		data = takeRows(d, outer, n, inner, idx)
	case []int8:
		data = takeRows(d, outer, n, inner, idx)
	case []uint8:
		data = takeRows(d, outer, n, inner, idx)
	default:
		return nil, fmt.Errorf("cannot prune %v data", t.DType)
	}
	return &ir.Tensor{DType: t.DType, Shape: shape, Data: data}, nil
}

func takeRows[T any](d []T, outer, n, inner int, idx []int) []T {
	out := make([]T, 0, outer*len(idx)*inner)
	for o := range outer {
		for _, k := range idx {
			base := (o*n + k) * inner
			out = append(out, d[base:base+inner]...)
		}
	}
	return out
}
