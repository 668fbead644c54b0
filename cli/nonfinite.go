package cli

import (
	"flag"
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
)

// refuseNonfiniteFlag adds --refuse-nonfinite to a command that loads a
// model. Without it a model whose weights hold NaN or Inf loads with a
// warning: such weights are usually a broken export or training run, but
// inspecting or converting the file is still useful.
func refuseNonfiniteFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("refuse-nonfinite", false, "refuse a model whose weights hold NaN or Inf (default: warn)")
}

// loadModelChecked loads a model and checks its float weights: a NaN or
// Inf is a one-line warning on env.Stderr, or an error when refuse is set.
func loadModelChecked(env *Env, path string, refuse bool) (*ir.Graph, error) {
	g, err := loadModel(path)
	if err != nil {
		return nil, err
	}
	msg := nonfiniteSummary(g)
	switch {
	case msg == "":
	case refuse:
		return nil, fmt.Errorf("%s: %s; refused (--refuse-nonfinite)", path, msg)
	default:
		fmt.Fprintf(env.Stderr, "pqvc: warning: %s: %s\n", path, msg)
	}
	return g, nil
}

// nonfiniteSummary names the first weight (in graph order) holding NaN or
// Inf with its count, and how many other weights hold some; "" when every
// weight is finite. One line, however many weights are affected.
func nonfiniteSummary(g *ir.Graph) string {
	first, firstN, others, othersN := "", 0, 0, 0
	for _, v := range g.Values() {
		if v.Op != ir.OpConst || v.Const == nil {
			continue
		}
		n := countNonfinite(v.Const)
		switch {
		case n == 0:
		case first == "":
			first, firstN = v.Name, n
		default:
			others++
			othersN += n
		}
	}
	if first == "" {
		return ""
	}
	s := fmt.Sprintf("initializer %q has %d NaN/Inf values", first, firstN)
	if others > 0 {
		noun := "initializer"
		if others > 1 {
			noun += "s"
		}
		s += fmt.Sprintf(" (and %d more %s with %d)", others, noun, othersN)
	}
	return s
}

// countNonfinite counts NaN and ±Inf elements of a float tensor; other
// dtypes and opaque tensors have none.
func countNonfinite(t *ir.Tensor) int {
	n := 0
	switch d := t.Data.(type) {
	case []float32:
		for _, x := range d {
			// x-x is NaN exactly when x is NaN or ±Inf.
			if x-x != 0 {
				n++
			}
		}
	case []float64:
		for _, x := range d {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				n++
			}
		}
	case []uint16:
		if t.DType == ir.F16 {
			for _, h := range d {
				if h&0x7c00 == 0x7c00 { // all-ones exponent: Inf or NaN
					n++
				}
			}
		}
	}
	return n
}
