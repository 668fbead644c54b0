package passes

import "fmt"

// OrderRule says that when a pipeline has both passes, First must come
// before Then, and why.
type OrderRule struct {
	First, Then string
	Why         string
}

// Ordering holds every ordering fact the pipeline must respect, one line of
// reason each. Rules name passes as strings, so the table can live here
// without importing the pass packages; passes/builtin's test checks that
// every name is a registered pass. Rules are added with the passes they
// constrain.
var Ordering = []OrderRule{
	{First: "canonicalize", Then: "prune", Why: "the structure analysis reads static shapes, which canonicalize folds into constants"},
	{First: "importance", Then: "prune", Why: "prune ranks units by the scores importance computed on the unpruned graph"},
	{First: "prune", Then: "calibrate", Why: "activation ranges must be measured on the graph that will be quantized"},
	{First: "prune", Then: "quantize", Why: "pruning rewrites float weights; quantized weights cannot be pruned"},
	{First: "canonicalize", Then: "fuse", Why: "fuse reads shapes, scales and epsilons as the constants canonicalize folds them into"},
	{First: "calibrate", Then: "quantize", Why: "static quantization reads the activation ranges calibrate measures on the float graph"},
	{First: "quantize", Then: "fold_qdq", Why: "fold_qdq folds the Q/DQ pairs quantize inserts"},
}

// CheckOrder reports the first rule the pipeline breaks, at the position of
// the step that came too early.
func CheckOrder(pl *Pipeline) error {
	return checkOrder(pl, Ordering)
}

func checkOrder(pl *Pipeline, rules []OrderRule) error {
	for _, rule := range rules {
		lastFirst := -1
		for i, st := range pl.Steps {
			if st.Pass.Name == rule.First {
				lastFirst = i
			}
		}
		if lastFirst < 0 {
			continue
		}
		for _, st := range pl.Steps[:lastFirst] {
			if st.Pass.Name == rule.Then {
				return fmt.Errorf("%s: %s must come after %s: %s", st.Pos, rule.Then, rule.First, rule.Why)
			}
		}
	}
	return nil
}
