package canon

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

const canonicalizeDoc = `canonicalize: run shape_fold, identity_elim, const_fold, cse and dce to a fixpoint
One round runs the five canonical passes in that order: shape_fold first so
the others see constant shapes; identity_elim before const_fold so a no-op on
a weight (Expand of the class token to its own shape) is dropped and the
weight keeps its name, rather than folded into a copy named after the op;
dce last to sweep what the others orphaned. Rounds repeat until one changes
nothing. Each pass can expose work for
another: folding a shape makes a Reshape a no-op, removing it makes two
values identical, merging them makes a chain constant.

Requires: nothing. Establishes: what each of the five establishes, at once;
running canonicalize again changes nothing. Fails if max_iters rounds are not
enough, which would mean two passes undo each other.`

// CanonicalizeOptions configure canonicalize.
type CanonicalizeOptions struct {
	MaxBytes int64 `pqv:"max_bytes" doc:"const_fold's limit on a folded result, in bytes" min:"0"`
	Symbolic bool  `pqv:"symbolic" doc:"shape_fold's rewriting of partly symbolic shapes"`
	Params   bool  `pqv:"params" doc:"let cse merge and identity_elim drop redundant weight tensors"`
	MaxIters int   `pqv:"max_iters" doc:"most rounds before giving up" min:"1"`
}

// DefaultCanonicalize are canonicalize's defaults.
var DefaultCanonicalize = CanonicalizeOptions{MaxBytes: 64 << 20, Symbolic: true, MaxIters: 10}

func init() {
	opts := DefaultCanonicalize
	passes.Register(&passes.Pass{
		Name:    "canonicalize",
		Doc:     canonicalizeDoc,
		Options: &opts,
		Run: func(ctx *passes.Context, g *ir.Graph) (any, error) {
			return Canonicalize(g, *ctx.Options.(*CanonicalizeOptions))
		},
	})
}

// Canonicalize runs canonicalize over g. Stats: each pass's counts summed over
// rounds as "pass.key" (shape_fold.folded, cse.merged, …), rounds (including
// the last, unchanged one), values_before and values_after.
func Canonicalize(g *ir.Graph, opts CanonicalizeOptions) (map[string]int, error) {
	st := map[string]int{"values_before": g.Len()}
	steps := []struct {
		name string
		run  func() (map[string]int, error)
	}{
		{"shape_fold", func() (map[string]int, error) { return ShapeFold(g, ShapeFoldOptions{Symbolic: opts.Symbolic}) }},
		{"identity_elim", func() (map[string]int, error) { return IdentityElim(g, IdentityElimOptions{Params: opts.Params}) }},
		{"const_fold", func() (map[string]int, error) { return ConstFold(g, ConstFoldOptions{MaxBytes: opts.MaxBytes}) }},
		{"cse", func() (map[string]int, error) { return CSE(g, CSEOptions{Params: opts.Params}) }},
		{"dce", func() (map[string]int, error) { return DCE(g), nil }},
	}
	for round := 1; round <= opts.MaxIters; round++ {
		st["rounds"] = round
		changed := 0
		for _, s := range steps {
			m, err := s.run()
			if err != nil {
				return nil, err
			}
			for k, n := range m {
				if n == 0 {
					continue
				}
				if s.name == "const_fold" && isSkipKey(k) {
					st[s.name+"."+k] = n // a state, not a change: keep the last round's
					continue
				}
				st[s.name+"."+k] += n
				changed += n
			}
		}
		if changed == 0 {
			st["values_after"] = g.Len()
			return st, nil
		}
	}
	return nil, fmt.Errorf("canonicalize: no fixpoint after %d rounds", opts.MaxIters)
}

func isSkipKey(k string) bool { return len(k) > 8 && k[:8] == "skipped_" }
