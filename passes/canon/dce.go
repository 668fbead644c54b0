package canon

import (
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

const dceDoc = `dce: delete values no output depends on
Removes every value, constants included, from which no graph output can be
reached (ir.Graph.RemoveDead). Graph inputs stay even when unused: they are
the model's signature.

Requires: nothing. Establishes: every value other than a graph input has a
path to a graph output.`

func init() {
	passes.Register(&passes.Pass{
		Name: "dce",
		Doc:  dceDoc,
		Run:  func(ctx *passes.Context, g *ir.Graph) (any, error) { return DCE(g), nil },
	})
}

// DCE runs dce over g. Stats: removed.
func DCE(g *ir.Graph) map[string]int {
	return map[string]int{"removed": g.RemoveDead()}
}
