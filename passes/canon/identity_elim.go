package canon

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/passes/rewrite"
)

const identityElimDoc = `identity_elim: remove ops that return their input unchanged
Removes Identity (what the frontend leaves of Dropout, too), a Reshape,
Expand or whole-tensor Slice whose result has its input's shape, a Transpose
with the identity permutation, a Cast to the input's dtype, a one-input Concat,
Add or Sub of a zero constant and Mul or Div by a one constant (when
broadcasting the constant does not change the shape), and a Transpose of a
Transpose whose permutations cancel. Users of each removed value read its
input instead. A zero or one weight tensor (a bias or norm scale left at its
initial value; a float or 8-bit constant of more than one element) counts
only with params=true: fusions look for those Adds and Muls, and bias
correction writes to them.

Requires: nothing. Establishes: none of the above patterns remains. Shapes
with unknown ("?") dims are never taken as equal, since two unknowns need not
be the same size.`

// IdentityElimOptions configure identity_elim.
type IdentityElimOptions struct {
	Params bool `pqv:"params" doc:"also remove Add/Sub of an all-zero and Mul/Div by an all-one weight tensor"`
}

func init() {
	passes.Register(&passes.Pass{
		Name:    "identity_elim",
		Doc:     identityElimDoc,
		Options: &IdentityElimOptions{},
		Run: func(ctx *passes.Context, g *ir.Graph) (any, error) {
			return IdentityElim(g, *ctx.Options.(*IdentityElimOptions))
		},
	})
}

// IdentityElim runs identity_elim over g. Stats: one count per rule that
// fired (identity, reshape_noop, …) and removed (values deleted).
func IdentityElim(g *ir.Graph, opts IdentityElimOptions) (map[string]int, error) {
	rs, err := rewrite.Apply(g, IdentityRules(opts), 16)
	if err != nil {
		return nil, fmt.Errorf("identity_elim: %w", err)
	}
	st := map[string]int{}
	for name, r := range rs.Rules {
		if r.Rewritten > 0 {
			st[name] = r.Rewritten
		}
	}
	if rs.Removed > 0 {
		st["removed"] = rs.Removed
	}
	return st, nil
}

// forward is the Rewrite of every rule here: the root is replaced by x.
func forward(m *rewrite.Match, g *ir.Graph) (*ir.Value, error) { return m.V("x"), nil }

// sameShapeAsX accepts a match whose root has x's shape (no unknown dims).
func sameShapeAsX(m *rewrite.Match) string {
	if !knownShapeEqual(m.Root.Type.Shape, m.V("x").Type.Shape) {
		return "changes the shape"
	}
	return ""
}

var (
	isZero = rewrite.ConstAll("zero", func(x float64) bool { return x == 0 })
	isOne  = rewrite.ConstAll("one", func(x float64) bool { return x == 1 })
)

// neutral accepts x ⊕ c when c does not broadcast x to a bigger shape and,
// unless params is set, is no weight tensor.
func neutral(params bool) func(m *rewrite.Match) string {
	return func(m *rewrite.Match) string {
		x, c := m.V("x"), m.V("c")
		if !params && isParam(c) {
			return "c is a weight (params=false)"
		}
		if x.Type.DType != m.Root.Type.DType || !knownShapeEqual(m.Root.Type.Shape, x.Type.Shape) || c.Type.Rank() > x.Type.Rank() {
			return "broadcasting changes the shape"
		}
		return ""
	}
}

// IdentityRules returns identity_elim's rules, in the order they are tried.
func IdentityRules(opts IdentityElimOptions) []*rewrite.Rule {
	return []*rewrite.Rule{
		// Identity(x) => x
		{Name: "identity", Pattern: rewrite.Op("Identity", rewrite.Var("x")), Rewrite: forward},
		// Reshape(x, _) => x  when the shape does not change
		{Name: "reshape_noop", Pattern: rewrite.Op("Reshape", rewrite.Var("x"), rewrite.Any()), Check: sameShapeAsX, Rewrite: forward},
		// Expand(x, s) => x  when s neither adds dims nor grows one
		{Name: "expand_noop", Pattern: rewrite.Op("Expand", rewrite.Var("x"), rewrite.Var("s")), Check: expandNoop, Rewrite: forward},
		// Transpose(x) => x  when perm is the identity
		{Name: "transpose_noop", Pattern: rewrite.Op("Transpose", rewrite.Var("x")), Check: func(m *rewrite.Match) string {
			if !isIdentityPerm(perm(m.Root)) {
				return "permutes dims"
			}
			return ""
		}, Rewrite: forward},
		// Transpose(Transpose(x)) => x  when the permutations cancel
		{Name: "transpose_cancel", Pattern: rewrite.Op("Transpose", rewrite.Op("Transpose", rewrite.Var("x")).Bind("inner")), Check: func(m *rewrite.Match) string {
			p1, p2 := perm(m.V("inner")), perm(m.Root)
			if len(p1) != len(p2) {
				return "ranks differ"
			}
			composed := make([]int64, len(p2))
			for i, p := range p2 {
				composed[i] = p1[p]
			}
			if !isIdentityPerm(composed) {
				return "permutations do not cancel"
			}
			return ""
		}, Rewrite: forward},
		// Cast(x) => x  when x already has the target dtype
		{Name: "cast_noop", Pattern: rewrite.Op("Cast", rewrite.Var("x")), Check: func(m *rewrite.Match) string {
			if m.V("x").Type.DType != m.Root.Type.DType {
				return "converts"
			}
			return ""
		}, Rewrite: forward},
		// Slice(x, …) => x  when it takes every element of x, in order
		{Name: "slice_noop", Pattern: rewrite.Op("Slice", rewrite.Var("x")).AnyRest(), Check: sliceNoop, Rewrite: forward},
		// Concat(x) => x
		{Name: "concat_single", Pattern: rewrite.Op("Concat", rewrite.Var("x")), Rewrite: forward},
		// Add(x, 0) => x
		{Name: "add_zero", Pattern: rewrite.Op("Add", rewrite.Var("x"), rewrite.Var("c", isZero)), Check: neutral(opts.Params), Rewrite: forward},
		// Sub(x, 0) => x
		{Name: "sub_zero", Pattern: rewrite.Op("Sub", rewrite.Var("x"), rewrite.Var("c", isZero)), Check: neutral(opts.Params), Rewrite: forward},
		// Mul(x, 1) => x
		{Name: "mul_one", Pattern: rewrite.Op("Mul", rewrite.Var("x"), rewrite.Var("c", isOne)), Check: neutral(opts.Params), Rewrite: forward},
		// Div(x, 1) => x
		{Name: "div_one", Pattern: rewrite.Op("Div", rewrite.Var("x"), rewrite.Var("c", isOne)), Check: neutral(opts.Params), Rewrite: forward},
	}
}

// perm returns a Transpose's permutation, the reversal when absent.
func perm(v *ir.Value) []int64 {
	if p := v.Ints("perm"); p != nil {
		return p
	}
	r := v.Type.Rank()
	p := make([]int64, r)
	for i := range p {
		p[i] = int64(r - 1 - i)
	}
	return p
}

func isIdentityPerm(p []int64) bool {
	for i, x := range p {
		if x != int64(i) {
			return false
		}
	}
	return true
}

// expandNoop accepts Expand(x, s) when every entry of s is 1 or x's dim at
// that position (aligned right) and s has no more entries than x has dims.
// Comparing the result's type alone is not enough: a symbolic dim of x
// broadcast against another symbol would look unchanged.
func expandNoop(m *rewrite.Match) string {
	x := m.V("x")
	ds, ok := ir.ShapeValue(m.V("s"))
	if !ok {
		return "shape not known"
	}
	if len(ds) > x.Type.Rank() {
		return "adds dims"
	}
	off := x.Type.Rank() - len(ds)
	for i, d := range ds {
		if d != ir.Static(1) && (d != x.Type.Shape[off+i] || d.IsUnknown()) {
			return "grows a dim"
		}
	}
	return sameShapeAsX(m)
}

// sliceNoop accepts a Slice with constant parameters that start at 0 and run
// to the end with step 1 on every axis it names.
func sliceNoop(m *rewrite.Match) string {
	x := m.V("x")
	starts, ends, axes, steps, ok := ir.SliceParams(m.Root)
	if !ok {
		return "parameters not known"
	}
	for i, ax := range axes {
		d := x.Type.Shape[ax]
		if steps[i] != 1 || starts[i] != 0 && !(d.IsStatic() && starts[i] <= -d.C) {
			return "does not start at 0 with step 1"
		}
		if d.IsStatic() && ends[i] < d.C || !d.IsStatic() && ends[i] < 1<<31-1 {
			return "stops before the end"
		}
	}
	return sameShapeAsX(m)
}
