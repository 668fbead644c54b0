package prune_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/eval"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/prune"
)

const (
	p7Model = "../../assets/deit_fmnist_p7.onnx"
	p7Eval  = "../../assets/fmnist_eval.npz"
)

// TestP7Accuracy reports the trained Fashion-MNIST model's accuracy after
// magnitude pruning of heads, MLP channels and embedding channels at the
// paper's ratios. It only logs (a criterion's quality is not a unit test);
// it fails if a pruned model does not verify or run.
func TestP7Accuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("accuracy sweep: skipped in -short mode")
	}
	if os.Getenv("PQVC_PRUNE_SWEEP") == "" {
		t.Skip("accuracy sweep (about a minute): set PQVC_PRUNE_SWEEP=1")
	}
	g0, _ := loadCanonNoSidecar(t, p7Model)
	ds, err := data.Load(p7Eval)
	if err != nil {
		t.Fatal(err)
	}
	limit := 0
	calib, err := data.Load("../../assets/fmnist_calib.npz")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		unit, scope string
		rec         bool
	}{{"heads", "local", false}, {"heads", "global", false}, {"heads", "global", true}, {"mlp", "local", false}, {"mlp", "local", true}, {"embed", "local", false}} {
		unit := c.unit
		line := unit + " " + c.scope + ":"
		if c.rec {
			line = unit + " " + c.scope + " +reconstruct:"
		}
		for _, ratio := range []float64{0, 0.046875, 0.09375, 0.1875, 0.25} {
			g := g0.Clone()
			st, err := prune.Prune(g, prune.Options{Unit: unit, Ratio: ratio, Scope: c.scope, RoundTo: 1, Criterion: "magnitude"}, nil)
			if err != nil {
				t.Fatalf("%s %g: %v", unit, ratio, err)
			}
			if c.rec {
				if err := st.ReconstructAfter(g0, g, calib.Batch(0, 64), 1e-3); err != nil {
					t.Fatal(err)
				}
			}
			if err := ir.Verify(g); err != nil {
				t.Fatal(err)
			}
			res, err := eval.Accuracy(g, ds, eval.Options{Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			removed := 0
			for _, n := range st.Removed {
				removed += n
			}
			line += fmt.Sprintf("  %g%%→%.2f%% (-%d, %d params, n=%d)", ratio*100, res.Accuracy*100, removed, st.ParamsAfter, res.N)
		}
		t.Log(line)
	}
}
