package canon

import (
	"fmt"
	"strings"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/passes/rewrite"
)

const shapeFoldDoc = `shape_fold: fold shape computations known before run time
Exporters compute Reshape targets, Expand shapes and Slice bounds at run time
from Shape ops: Shape→Gather→Unsqueeze→Concat chains, with Cast, Equal/Where
and integer arithmetic in between. shape_fold evaluates these chains
symbolically (ir.ShapeValue) and:

  - replaces every integer or bool value of rank ≤ 1 whose elements are all
    static by a constant (with a static batch, every Shape op goes);
  - with symbolic=true (the default), writes a partly symbolic Reshape
    target as a constant when it can: 0 where it copies the data's dim at
    the same position, -1 for one entry the element count implies; and
    rebuilds any other partly symbolic shape vector in one canonical form:
    Concat of constants and Gather(Shape(input), [axis]) (times a constant),
    reading each symbol from the graph input that declares it.

Requires: nothing. Values it replaces and the chains that fed only them are
deleted. Establishes: no integer value of rank ≤ 1 other than a constant has a
fully static value; a Reshape target is a constant wherever 0 and -1 can say
it; remaining symbolic shape vectors depend on graph inputs only.`

// ShapeFoldOptions configure shape_fold.
type ShapeFoldOptions struct {
	Symbolic bool `pqv:"symbolic" doc:"also rewrite partly symbolic shapes: 0 and -1 in Reshape targets, the rest rebuilt from the graph inputs' dims"`
}

func init() {
	passes.Register(&passes.Pass{
		Name:    "shape_fold",
		Doc:     shapeFoldDoc,
		Options: &ShapeFoldOptions{Symbolic: true},
		Run: func(ctx *passes.Context, g *ir.Graph) (any, error) {
			return ShapeFold(g, *ctx.Options.(*ShapeFoldOptions))
		},
	})
}

// ShapeFold runs shape_fold over g. Stats: folded (values replaced by
// constants), reshape_const (Reshape targets made constant with 0 or -1), rebuilt
// (symbolic shape vectors put in canonical form), removed (values deleted,
// including the replaced ones).
func ShapeFold(g *ir.Graph, opts ShapeFoldOptions) (map[string]int, error) {
	st := map[string]int{}
	// ir.ShapeValue reads some arguments (Slice bounds, Squeeze axes) only
	// when they are constants, so folding an argument can make its user
	// foldable: sweep until a sweep folds nothing, so a second run has
	// nothing left to do.
	for {
		n, err := foldStatic(g, st)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	if !opts.Symbolic {
		return st, nil
	}
	order, err := g.Topo()
	if err != nil {
		return nil, fmt.Errorf("shape_fold: %w", err)
	}
	for _, v := range order {
		if v.Graph() == g && v.Op == "Reshape" {
			st["removed"] += reshapeTarget(g, v, st)
		}
	}
	rb := &rebuilder{g: g, atoms: map[string]*ir.Value{}}
	for i := len(order) - 1; i >= 0; i-- {
		v := order[i]
		if v.Graph() != g {
			continue
		}
		repl, err := rb.rebuild(v)
		if err != nil {
			return nil, fmt.Errorf("shape_fold: %w", err)
		}
		if repl != nil {
			st["rebuilt"]++
			st["removed"] += replace(g, v, repl)
		}
	}
	return st, nil
}

// foldStatic replaces every small integer value whose elements are all
// static by a constant; it returns how many it replaced.
func foldStatic(g *ir.Graph, st map[string]int) (int, error) {
	order, err := g.Topo()
	if err != nil {
		return 0, fmt.Errorf("shape_fold: %w", err)
	}
	n := 0
	// Users before their arguments: folding a whole chain's end leaves the
	// middle dead, so it is deleted rather than folded link by link.
	for i := len(order) - 1; i >= 0; i-- {
		v := order[i]
		if v.Graph() != g || v.Op == ir.OpInput || v.Op == ir.OpConst || !smallInt(v.Type) {
			continue
		}
		xs, ok := ir.StaticInts(v)
		if !ok {
			continue
		}
		t, ok := tensorOf(v.Type, xs)
		if !ok {
			continue // element count disagrees with the type: Verify's business
		}
		n++
		st["folded"]++
		st["removed"] += replace(g, v, g.AddConst(v.Name, t))
	}
	return n, nil
}

// smallInt reports whether a value of type t can hold a shape computation:
// a statically sized integer or bool tensor of rank ≤ 1.
func smallInt(t ir.Type) bool {
	return t.Rank() <= 1 && t.Shape.IsStatic() && (t.DType.IsInt() || t.DType == ir.Bool)
}

// reshapeTarget rewrites v's target to a constant when its non-static
// entries can be said without run-time values: an entry equal to the data's
// dim at the same position becomes 0 ("copy", allowzero=0), and one other
// entry, implied by the element count, becomes -1. Besides dropping the
// chain, this keeps the Reshape right when a later pass changes the
// batch-independent dims (pruning heads changes [197, 3*batch, 64] but not
// [197, -1, 64]). It returns the number of values deleted.
func reshapeTarget(g *ir.Graph, v *ir.Value, st map[string]int) int {
	tgt, x := v.Arg(1), v.Arg(0)
	if tgt == nil || tgt.IsConst() || tgt.Type.DType != ir.I64 {
		return 0
	}
	ds, ok := ir.ShapeValue(tgt)
	if !ok {
		return 0
	}
	allowZero := v.Int("allowzero") != 0
	var open []int // non-static entries
	minusOne := false
	xs := make([]int64, len(ds))
	for i, d := range ds {
		switch {
		case !d.IsStatic():
			open = append(open, i)
		case d.C == -1:
			minusOne = true
		case d.C == 0 && allowZero:
			return 0 // ONNX forbids a literal 0 next to -1
		}
		xs[i] = d.C
	}
	if len(open) == 0 {
		return 0
	}
	var rest []int
	if len(open) == 1 && !minusOne {
		rest = open // one unknown: -1 says it plainly, copy or not
	} else {
		for _, i := range open {
			if !allowZero && i < x.Type.Rank() && ds[i] == x.Type.Shape[i] && !ds[i].IsUnknown() {
				xs[i] = 0
			} else {
				rest = append(rest, i)
			}
		}
	}
	switch {
	case len(rest) == 1 && !minusOne:
		xs[rest[0]] = -1
	case len(rest) > 0:
		return 0 // left to the rebuilder
	}
	t, ok := tensorOf(tgt.Type, xs)
	if !ok {
		return 0
	}
	c := g.AddConst(tgt.Name, t)
	old := v.Type
	v.SetArg(1, c)
	if err := g.Reinfer(v); err != nil || !v.Type.Equal(old) {
		// Inference cannot see that the new target gives the same type
		// (an unknown dim elsewhere): keep the original so the graph
		// still verifies.
		v.SetArg(1, tgt)
		v.Type = old
		_ = g.Remove(c)
		return 0
	}
	st["reshape_const"]++
	return rewrite.RemoveDeadFrom(g, tgt)
}

// rebuilder puts partly symbolic shape vectors in canonical form: a Concat
// of constants and atoms, an atom being Gather(Shape(input), [axis]) that
// reads one symbolic dim of a graph input (times a constant when the entry
// is, say, 3*batch). It reads dims from graph inputs so the shape no longer
// depends on intermediate tensors, and CSE then shares one atom per dim.
// Gather rather than Shape's start/end keeps it writable at opset 13.
type rebuilder struct {
	g     *ir.Graph
	atoms map[string]*ir.Value // symbol → atom built in this run
}

func (rb *rebuilder) rebuild(v *ir.Value) (*ir.Value, error) {
	if v.Op == ir.OpInput || v.Op == ir.OpConst || v.Op == "Shape" || v.Type.DType != ir.I64 ||
		v.Type.Rank() != 1 || !v.Type.Shape.IsStatic() || isCanonShape(v) {
		return nil, nil
	}
	ds, ok := ir.ShapeValue(v)
	if !ok || int64(len(ds)) != v.Type.Shape[0].C {
		return nil, nil
	}
	symbolic := false
	for _, d := range ds {
		if d.IsStatic() {
			continue
		}
		if d.IsUnknown() || strings.Contains(d.Syms, "*") || d.C < 1 || rb.source(d.Syms) == nil {
			return nil, nil // not expressible from one input dim
		}
		symbolic = true
	}
	if !symbolic {
		return nil, nil
	}
	g := rb.g
	var pieces []*ir.Value
	var run []int64
	flush := func() {
		if len(run) > 0 {
			pieces = append(pieces, g.AddConst("", ir.I64Tensor([]int64{int64(len(run))}, run)))
			run = nil
		}
	}
	for _, d := range ds {
		if d.IsStatic() {
			run = append(run, d.C)
			continue
		}
		flush()
		a, err := rb.atom(d.Syms)
		if err != nil {
			return nil, err
		}
		if d.C != 1 {
			k := g.AddConst("", ir.I64Tensor([]int64{1}, []int64{d.C}))
			if a, err = g.Add("Mul", "", nil, a, k); err != nil {
				return nil, err
			}
		}
		pieces = append(pieces, a)
	}
	flush()
	repl := pieces[0]
	if len(pieces) > 1 {
		var err error
		if repl, err = g.Add("Concat", v.Name, ir.Attrs{"axis": int64(0)}, pieces...); err != nil {
			return nil, err
		}
	}
	if got, ok := ir.ShapeValue(repl); !ok || !ir.Shape(got).Equal(ds) || !repl.Type.Equal(v.Type) {
		return nil, fmt.Errorf("%s: rebuilt shape %v (%v) differs from %v (%v) (a bug)", v, got, repl.Type, ds, v.Type)
	}
	return repl, nil
}

// source finds the graph input and axis that declare symbol s.
func (rb *rebuilder) source(s string) *ir.Value {
	in, _ := findSym(rb.g, s)
	return in
}

func findSym(g *ir.Graph, s string) (*ir.Value, int) {
	for _, in := range g.Inputs {
		for i, d := range in.Type.Shape {
			if d == ir.Sym(s) {
				return in, i
			}
		}
	}
	return nil, 0
}

func (rb *rebuilder) atom(s string) (*ir.Value, error) {
	if a := rb.atoms[s]; a != nil && a.Graph() == rb.g {
		return a, nil
	}
	in, axis := findSym(rb.g, s)
	shape, err := rb.g.Add("Shape", "", nil, in)
	if err != nil {
		return nil, err
	}
	idx := rb.g.AddConst("", ir.I64Tensor([]int64{1}, []int64{int64(axis)}))
	a, err := rb.g.Add("Gather", "", ir.Attrs{"axis": int64(0)}, shape, idx)
	if err != nil {
		return nil, err
	}
	rb.atoms[s] = a
	return a, nil
}

// isCanonShape reports whether v already has the rebuilder's form, so a
// second run leaves it alone.
func isCanonShape(v *ir.Value) bool {
	if isShapeAtom(v) || isScaledAtom(v) {
		return true
	}
	if v.Op != "Concat" || v.Int("axis") != 0 || v.NumArgs() < 2 {
		return false
	}
	prevConst := false
	for _, a := range v.Args() {
		switch {
		case a == nil:
			return false
		case a.IsConst() && a.Type.Rank() == 1:
			if prevConst {
				return false
			}
			prevConst = true
		case isShapeAtom(a) || isScaledAtom(a):
			prevConst = false
		default:
			return false
		}
	}
	return true
}

func isI64Vec1(v *ir.Value) bool {
	return v != nil && v.IsConst() && v.Type.DType == ir.I64 && v.Type.Shape.Equal(ir.StaticShape(1))
}

func isShapeAtom(v *ir.Value) bool {
	if v.Op != "Gather" || v.Int("axis") != 0 || !isI64Vec1(v.Arg(1)) {
		return false
	}
	s := v.Arg(0)
	return s.Op == "Shape" && len(s.Attrs) == 0 && s.Arg(0).Op == ir.OpInput
}

func isScaledAtom(v *ir.Value) bool {
	return v.Op == "Mul" && isShapeAtom(v.Arg(0)) && isI64Vec1(v.Arg(1))
}
