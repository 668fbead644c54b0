package canon

import (
	"fmt"
	"slices"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/runtime"
)

const constFoldDoc = `const_fold: evaluate pure ops whose arguments are all constants
Every pure op whose present arguments are all constants with data is run
once, through the reference runtime (so folding and execution share one
implementation), and replaced by a constant holding its result.

Folding never grows the model: a result larger than max_bytes is kept, and so
is a result larger than the constants it frees (those used only by the folded
op) by more than 1 KiB, as when Expand, ConstantOfShape or Tile broadcast a
small tensor into a big one. DequantizeLinear of a constant is kept: it is how
a quantized weight is stored.

Requires: nothing (ops without a runtime kernel are skipped). Establishes: no
foldable op, as defined above, has only constant arguments.`

// ConstFoldOptions configure const_fold.
type ConstFoldOptions struct {
	MaxBytes int64 `pqv:"max_bytes" doc:"largest result to fold, in bytes" min:"0"`
}

// growthAllowance is how much larger than the constants it frees a folded
// result may be: a few scalars' worth, so [1] → [3] shape fills still fold.
const growthAllowance = 1024

func init() {
	passes.Register(&passes.Pass{
		Name:    "const_fold",
		Doc:     constFoldDoc,
		Options: &ConstFoldOptions{MaxBytes: 64 << 20},
		Run: func(ctx *passes.Context, g *ir.Graph) (any, error) {
			return ConstFold(g, *ctx.Options.(*ConstFoldOptions))
		},
	})
}

// ConstFold runs const_fold over g. Stats: folded (values replaced by
// constants), removed (values deleted, the folded ones included); the
// skipped_too_big and skipped_growth counts say what the size limits kept
// and are not changes.
func ConstFold(g *ir.Graph, opts ConstFoldOptions) (map[string]int, error) {
	st := map[string]int{}
	// Whether a fold frees its arguments depends on their other users, which
	// earlier folds in the same sweep may remove; sweep until nothing folds so
	// a second run has nothing left to do.
	for {
		order, err := g.Topo()
		if err != nil {
			return nil, fmt.Errorf("const_fold: %w", err)
		}
		skipped := map[string]int{}
		n := 0
		for _, v := range order {
			if v.Graph() != g || !foldable(v) {
				continue
			}
			if why := sizeVeto(v, opts.MaxBytes); why != "" {
				skipped[why]++
				continue
			}
			t, err := Eval(v)
			if err != nil {
				return nil, fmt.Errorf("const_fold: %w", err)
			}
			n++
			st["removed"] += replace(g, v, g.AddConst(v.Name, t))
		}
		st["folded"] += n
		if n == 0 {
			for k, c := range skipped {
				st[k] = c
			}
			return st, nil
		}
	}
}

// foldable reports whether v is a pure op with a kernel whose present
// arguments are all constants with data.
func foldable(v *ir.Value) bool {
	if v.Op == ir.OpInput || v.Op == ir.OpConst || v.Op == "DequantizeLinear" || !runtime.Supported(v.Op) {
		return false
	}
	if def := ir.LookupOp(v.Op); def == nil || !def.Pure {
		return false
	}
	present := 0
	for _, a := range v.Args() {
		if a == nil {
			continue
		}
		if !a.IsConst() || a.Const.Opaque() {
			return false
		}
		present++
	}
	return present > 0
}

// sizeVeto says why v's result must not become a constant, or "".
func sizeVeto(v *ir.Value, maxBytes int64) string {
	dims, ok := v.Type.Shape.Ints()
	if !ok {
		return "skipped_symbolic"
	}
	n, err := ir.CheckedNumElements(dims)
	if err != nil {
		return "skipped_too_big"
	}
	out := n * int64(v.Type.DType.Size())
	if out > maxBytes {
		return "skipped_too_big"
	}
	// Constants used by v alone die with it; the model grows by the result
	// minus what they held.
	var freed int64
	var seen []*ir.Value
	for _, a := range v.Args() {
		if a == nil || slices.Contains(seen, a) {
			continue
		}
		seen = append(seen, a)
		if onlyUser(a, v) {
			freed += a.Const.Bytes()
		}
	}
	if out > freed+growthAllowance {
		return "skipped_growth"
	}
	return ""
}

// onlyUser reports whether every use of a is by v and a is no graph output.
func onlyUser(a, v *ir.Value) bool {
	for _, u := range a.Uses() {
		if u != v {
			return false
		}
	}
	for _, o := range a.Graph().Outputs {
		if o.Value == a {
			return false
		}
	}
	return true
}

// Eval computes v from its constant arguments with the reference runtime, on
// a one-op graph, and checks that the result has v's type.
func Eval(v *ir.Value) (*ir.Tensor, error) {
	h := ir.NewGraph("const_fold")
	args := make([]*ir.Value, v.NumArgs())
	for i, a := range v.Args() {
		if a != nil {
			if !a.IsConst() {
				return nil, fmt.Errorf("eval %s: argument %d is not a constant", v, i)
			}
			args[i] = h.AddConst(a.Name, a.Const)
		}
	}
	w, err := h.Add(v.Op, v.Name, v.Attrs.Clone(), args...)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", v, err)
	}
	h.SetOutput("y", w)
	p, err := runtime.Compile(h)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", v, err)
	}
	out, err := p.Run(nil)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", v, err)
	}
	t := out["y"]
	if t == nil {
		return nil, fmt.Errorf("eval %s: runtime produced no result", v)
	}
	if !t.Type().Equal(v.Type) {
		return nil, fmt.Errorf("eval %s: runtime produced %v, the graph says %v", v, t.Type(), v.Type)
	}
	return t, nil
}
