package prune

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pqvc/pqvc/ir"
)

// A factor is one part of a tensor axis. An axis of size 576 that holds
// fused q/k/v for 3 heads of 64 is the row-major product of three factors:
// an unnamed 3 (which of q, k, v), the role "b0.H" (3 heads) and the role
// "b0.D" (64 dims per head). Roles are what pruning shrinks; unnamed factors
// ("other") keep their size. Tracking factors rather than whole axes is what
// lets one analysis follow a channel through every exporter's Reshape,
// Transpose, Gather and Slice spelling: a Reshape only regroups factors.
type factor struct {
	role string // "" for an unnamed factor
	size ir.Dim
}

// label is the factorisation of one axis. The canonical form merges
// adjacent unnamed factors and drops static size-1 ones; an axis with no
// role has a nil label.
type label []factor

func (l label) String() string {
	var parts []string
	for _, f := range l {
		if f.role == "" {
			parts = append(parts, f.size.String())
		} else {
			parts = append(parts, f.role+":"+f.size.String())
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// canon returns l in canonical form.
func canon(l label) label {
	var out label
	hasRole := false
	for _, f := range l {
		if f.role == "" && f.size == ir.Static(1) {
			continue
		}
		if f.role != "" {
			hasRole = true
		}
		if n := len(out); n > 0 && f.role == "" && out[n-1].role == "" {
			out[n-1].size = out[n-1].size.Mul(f.size)
			continue
		}
		out = append(out, f)
	}
	if !hasRole {
		return nil
	}
	return out
}

// product is the size of an axis with label l.
func (l label) product() ir.Dim {
	d := ir.Static(1)
	for _, f := range l {
		d = d.Mul(f.size)
	}
	return d
}

// labeling is the set of labelled axes reached from one seed: a dependency
// group in Torch-Pruning's sense, but over factors, built by flooding the
// graph in both directions through ops whose semantics tie an axis of one
// operand to an axis of another.
type labeling struct {
	ax      map[*ir.Value][]label
	queue   []*ir.Value
	outputs map[*ir.Value]string
	order   []*ir.Value // values in the order they were first labelled
}

func newLabeling(g *ir.Graph) *labeling {
	l := &labeling{ax: map[*ir.Value][]label{}, outputs: map[*ir.Value]string{}}
	for _, o := range g.Outputs {
		l.outputs[o.Value] = o.Name
	}
	return l
}

// get returns the label of axis i of v (nil if none or out of range).
func (l *labeling) get(v *ir.Value, i int) label {
	if v == nil {
		return nil
	}
	ls := l.ax[v]
	if i < 0 || i >= len(ls) {
		return nil
	}
	return ls[i]
}

// labelled reports whether any axis of v carries a role.
func (l *labeling) labelled(v *ir.Value) bool {
	for _, x := range l.ax[v] {
		if x != nil {
			return true
		}
	}
	return false
}

// set labels axis i of v, queueing v when that is new. A different label
// already there means two paths disagree on what the axis holds.
func (l *labeling) set(v *ir.Value, i int, lb label) error {
	lb = canon(lb)
	if lb == nil || v == nil {
		return nil
	}
	r := v.Type.Rank()
	if i < 0 || i >= r {
		return fmt.Errorf("%s: axis %d out of range for %v", v, i, v.Type)
	}
	if got := lb.product(); got != v.Type.Shape[i] {
		return fmt.Errorf("%s: axis %d has size %v but its channels %v need %v", v, i, v.Type.Shape[i], lb, got)
	}
	ls := l.ax[v]
	if ls == nil {
		ls = make([]label, r)
		l.ax[v] = ls
		l.order = append(l.order, v)
	}
	if old := ls[i]; old != nil {
		if !slices.Equal(old, lb) {
			return fmt.Errorf("%s: axis %d holds %v along one path and %v along another", v, i, old, lb)
		}
		return nil
	}
	if v.Op == ir.OpInput {
		return fmt.Errorf("pruning would change graph input %s (axis %d)", v, i)
	}
	if name, ok := l.outputs[v]; ok {
		return fmt.Errorf("pruning would change graph output %q (%s, axis %d)", name, v, i)
	}
	ls[i] = lb
	l.queue = append(l.queue, v)
	return nil
}

// link ties axis i of a to axis j of b: whichever is labelled labels the
// other.
func (l *labeling) link(a *ir.Value, i int, b *ir.Value, j int) error {
	if a == nil || b == nil {
		return nil
	}
	if x := l.get(a, i); x != nil {
		if err := l.set(b, j, x); err != nil {
			return err
		}
	}
	if x := l.get(b, j); x != nil {
		return l.set(a, i, x)
	}
	return nil
}

// propagate floods from the queued values until nothing changes.
func (l *labeling) propagate() error {
	for len(l.queue) > 0 {
		v := l.queue[0]
		l.queue = l.queue[1:]
		if v.Op != ir.OpConst && v.Op != ir.OpInput {
			if err := l.rule(v); err != nil {
				return err
			}
		}
		seen := map[*ir.Value]bool{}
		for _, u := range v.Uses() {
			if seen[u] {
				continue
			}
			seen[u] = true
			if err := l.rule(u); err != nil {
				return err
			}
		}
	}
	return nil
}

// flatten lists the factors of every axis of a value, an unlabelled axis as
// one unnamed factor.
func (l *labeling) flatten(v *ir.Value) []factor {
	var fs []factor
	for i, d := range v.Type.Shape {
		if lb := l.get(v, i); lb != nil {
			fs = append(fs, lb...)
		} else if d != ir.Static(1) {
			fs = append(fs, factor{size: d})
		}
	}
	return fs
}

// regroup distributes row-major factors over the dims of a reshaped shape.
// Unnamed factors may be split or merged freely; a role factor must land
// whole on one axis, or the reshape mixes pruned channels with others and
// no constant rewrite can express the result.
func regroup(fs []factor, dims ir.Shape) ([]label, error) {
	fs = slices.Clone(fs)
	out := make([]label, len(dims))
	for i, need := range dims {
		if need.IsUnknown() {
			return nil, fmt.Errorf("dim %d is unknown (canonicalize first)", i)
		}
		var lb label
		for need != ir.Static(1) {
			if len(fs) == 0 {
				return nil, fmt.Errorf("ran out of channels at dim %d", i)
			}
			f := fs[0]
			if f.size == need {
				lb, fs, need = append(lb, f), fs[1:], ir.Static(1)
				continue
			}
			if q, ok := need.Div(f.size); ok {
				lb, fs, need = append(lb, f), fs[1:], q
				continue
			}
			if f.role != "" {
				return nil, fmt.Errorf("channels %s:%v would be split at dim %d (size %v)", f.role, f.size, i, need)
			}
			r, ok := f.size.Div(need)
			if !ok {
				return nil, fmt.Errorf("cannot split %v into %v at dim %d", f.size, need, i)
			}
			lb = append(lb, factor{size: need})
			fs[0] = factor{size: r}
			need = ir.Static(1)
		}
		out[i] = canon(lb)
	}
	for _, f := range fs {
		if f.size != ir.Static(1) {
			return nil, fmt.Errorf("channels left over after the last dim: %v", f.size)
		}
	}
	return out, nil
}
