// Package softmaxout is an example pqvc plugin: a custom pass, registered by
// name, that a recipe can use like a built-in one.
//
// The pass appends a Softmax to a classifier's logits so the deployed model
// returns probabilities, which is what many mobile apps want to display.
package softmaxout

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

// Options are the recipe options of add_softmax.
type Options struct {
	Output string `pqv:"output" doc:"name of the graph output to turn into probabilities (default: the first)"`
	Axis   int    `pqv:"axis" doc:"axis of the classes"`
}

// Pass is the add_softmax pass.
var Pass = &passes.Pass{
	Name: "add_softmax",
	Doc: `Append a Softmax to a classifier output.

Turns the logits output into probabilities over the classes axis; the
output keeps its name. Running it twice adds nothing the second time.`,
	Options: &Options{Axis: -1},
	Run:     run,
}

func init() { passes.Register(Pass) }

func run(ctx *passes.Context, g *ir.Graph) (any, error) {
	o := ctx.Options.(*Options)
	idx := 0
	if o.Output != "" {
		idx = -1
		for i, out := range g.Outputs {
			if out.Name == o.Output {
				idx = i
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("the model has no output %q", o.Output)
		}
	}
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("the model has no outputs")
	}
	out := g.Outputs[idx]
	if out.Value.Op == "Softmax" {
		return map[string]int{"added": 0}, nil // idempotent
	}
	sm, err := g.Add("Softmax", out.Name+"_probs", ir.Attrs{"axis": int64(o.Axis)}, out.Value)
	if err != nil {
		return nil, err
	}
	g.Outputs[idx].Value = sm
	return map[string]int{"added": 1}, nil
}
