package prune

import (
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
)

// positions lists the indices along an axis labelled lb whose coordinate
// in every role satisfies keep (row-major over the factors).
func positions(lb label, keep func(role string, coord int) bool) ([]int, error) {
	sizes := make([]int, len(lb))
	n := 1
	for i, f := range lb {
		if !f.size.IsStatic() {
			return nil, fmt.Errorf("channels %v of a weight are not static", lb)
		}
		sizes[i] = int(f.size.C)
		n *= sizes[i]
	}
	var out []int
	coord := make([]int, len(lb))
	for p := range n {
		rem := p
		for i := len(lb) - 1; i >= 0; i-- {
			coord[i] = rem % sizes[i]
			rem /= sizes[i]
		}
		ok := true
		for i, f := range lb {
			if f.role != "" && !keep(f.role, coord[i]) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// roleSlices returns, for every constant in lab with an axis carrying role,
// that axis's positions bucketed by their coordinate in role: the slices
// of unit c are the c-th buckets. One pass per axis, not one per unit.
func roleSlices(lab *labeling, role string, n int) ([][]Slice, error) {
	out := make([][]Slice, n)
	for _, v := range lab.order {
		if !v.IsConst() {
			continue
		}
		for ax, lb := range lab.ax[v] {
			if !hasRole(lb, role) {
				continue
			}
			if !lb.product().IsStatic() {
				return nil, fmt.Errorf("%s: channels %v are not static", v, lb)
			}
			buckets := make([][]int, n)
			for p, c := range roleCoords(lb, role) {
				buckets[c] = append(buckets[c], p)
			}
			for c := range n {
				out[c] = append(out[c], Slice{W: v, Axis: ax, Index: buckets[c]})
			}
		}
	}
	return out, nil
}

// roleCoords returns the coordinate in role of every position along an
// axis labelled lb.
func roleCoords(lb label, role string) []int {
	inner, size := 1, 1
	found := false
	for i := len(lb) - 1; i >= 0; i-- {
		if lb[i].role == role && !found {
			size, found = int(lb[i].size.C), true
			continue
		}
		if !found {
			inner *= int(lb[i].size.C)
		}
	}
	total := int(lb.product().C)
	coords := make([]int, total)
	for p := range coords {
		coords[p] = (p / inner) % size
	}
	return coords
}

func hasRole(lb label, role string) bool {
	for _, f := range lb {
		if f.role == role {
			return true
		}
	}
	return false
}

// Groups returns the units of one kind, one group per block (one group for
// the embedding). Each unit lists every weight slice removed with it.
func (st *Structure) Groups(kind string) ([]Group, error) {
	var gs []Group
	mk := func(name string, lab *labeling, role, unit string, n int) error {
		sl, err := roleSlices(lab, role, n)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		grp := Group{Name: name}
		for c := range n {
			grp.Units = append(grp.Units, Unit{Name: fmt.Sprintf("%s.%s%d", name, unit, c), Slices: sl[c]})
		}
		gs = append(gs, grp)
		return nil
	}
	switch kind {
	case KindHeads, KindHeadDim:
		for _, a := range st.Attention {
			var err error
			if kind == KindHeads {
				err = mk(fmt.Sprintf("block%d.heads", a.Index), a.labels, a.HRole, "head", a.Heads)
			} else {
				err = mk(fmt.Sprintf("block%d.head_dim", a.Index), a.labels, a.DRole, "dim", a.HeadDim)
			}
			if err != nil {
				return nil, err
			}
		}
	case KindMLP:
		for _, m := range st.MLPs {
			if err := mk(fmt.Sprintf("block%d.mlp", m.Index), m.labels, m.Role, "ch", m.Hidden); err != nil {
				return nil, err
			}
		}
	case KindEmbed:
		if st.Embed == nil {
			return nil, fmt.Errorf("no embedding channels: %w", st.EmbedErr)
		}
		if err := mk("embed", st.Embed.labels, st.Embed.Role, "ch", st.Embed.Width); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown unit kind %q", kind)
	}
	return gs, nil
}

// Magnitude scores each unit by the squared L2 norm of its slices of
// weights (MatMul, Gemm and Conv weights and LayerNorm scales), summed, as
// Torch-Pruning's MagnitudeImportance (p=2) does; biases, tokens and the
// position embedding do not vote. l1 uses absolute values instead.
func Magnitude(groups []Group, l1 bool) ([][]float64, error) {
	// Each weight is read once: its mass per position along an axis is
	// cached, and a unit's score sums the positions it holds. (Reading the
	// weight per unit is quadratic: minutes on DeiT-base.)
	type key struct {
		w    *ir.Value
		axis int
	}
	cache := map[key][]float64{}
	out := make([][]float64, len(groups))
	for i, grp := range groups {
		out[i] = make([]float64, len(grp.Units))
		for j, u := range grp.Units {
			for _, s := range u.Slices {
				if !isWeight(s.W) {
					continue
				}
				k := key{s.W, s.Axis}
				mass, ok := cache[k]
				if !ok {
					var err error
					if mass, err = axisMass(s.W, s.Axis, l1); err != nil {
						return nil, fmt.Errorf("%s: %w", u.Name, err)
					}
					cache[k] = mass
				}
				for _, x := range s.Index {
					out[i][j] += mass[x]
				}
			}
		}
	}
	return out, nil
}

// isWeight reports whether w is a weight that votes in magnitude scoring.
func isWeight(w *ir.Value) bool {
	for _, u := range w.Uses() {
		switch u.Op {
		case "MatMul", "Gemm", "Conv":
			if u.Arg(1) == w {
				return true
			}
		case "LayerNormalization":
			if u.Arg(1) == w {
				return true
			}
		}
	}
	return false
}

// axisMass returns, for each position along axis of constant w, the sum of
// squares (or of absolute values) of the elements there.
func axisMass(w *ir.Value, axis int, l1 bool) ([]float64, error) {
	shape := w.Const.Shape
	if d, ok := w.Const.Data.([]float32); ok {
		return massOf(d, shape, axis, l1), nil
	}
	data, err := w.Const.AsFloat64s()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w, err)
	}
	return massOf(data, shape, axis, l1), nil
}

func massOf[T float32 | float64](data []T, shape []int64, axis int, l1 bool) []float64 {
	inner := 1
	for _, d := range shape[axis+1:] {
		inner *= int(d)
	}
	n := int(shape[axis])
	mass := make([]float64, n)
	for base := 0; base < len(data); base += inner {
		k := (base / inner) % n
		sum := 0.0
		for _, x := range data[base : base+inner] {
			if l1 {
				sum += math.Abs(float64(x))
			} else {
				sum += float64(x) * float64(x)
			}
		}
		mass[k] += sum
	}
	return mass
}
