package prune_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/data"
	imp "github.com/pqvc/pqvc/importance"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	passimp "github.com/pqvc/pqvc/passes/importance"
	"github.com/pqvc/pqvc/passes/prune"
)

func opts(unit string, ratio float64) prune.Options {
	o := prune.Defaults
	o.Unit, o.Ratio = unit, ratio
	return o
}

func TestOptionsP7(t *testing.T) {
	g0, _ := loadCanonNoSidecar(t, p7Model)
	total := func(st *prune.Stats) int {
		n := 0
		for _, k := range st.Removed {
			n += k
		}
		return n
	}
	t.Run("ignore", func(t *testing.T) {
		o := opts("mlp", 0.25)
		o.Ignore = []string{"block0.*", "blocks.1.mlp.fc1.bias"}
		st, err := prune.Prune(g0.Clone(), o, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Removed["block0.mlp"]; ok || len(st.Ignored) != 2 || st.Removed["block2.mlp"] != 64 {
			t.Errorf("ignored %v, removed %v", st.Ignored, st.Removed)
		}
	})
	t.Run("round_to", func(t *testing.T) {
		o := opts("mlp", 0.09375) // 256 → drop 24 → keep 232 → 240
		o.RoundTo = 16
		st, err := prune.Prune(g0.Clone(), o, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Widths["mlp"][1] != 240 {
			t.Errorf("widths %v, want 256 → 240", st.Widths)
		}
	})
	t.Run("global_heads", func(t *testing.T) {
		o := opts("heads", 0.25) // 24 heads → 6 anywhere, never a block's last
		o.Scope = "global"
		g := g0.Clone()
		st, err := prune.Prune(g, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		if total(st) != 6 {
			t.Errorf("removed %v, want 6 in all", st.Removed)
		}
		if err := ir.Verify(g); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("global_too_many", func(t *testing.T) {
		o := opts("heads", 0.9) // 21 of 24 would leave fewer than one per block
		o.Scope = "global"
		if _, err := prune.Prune(g0.Clone(), o, nil); err == nil || !strings.Contains(err.Error(), "every head") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("last_head", func(t *testing.T) {
		_, err := prune.Prune(g0.Clone(), opts("heads", 1), nil)
		if err == nil || !strings.Contains(err.Error(), "block0.heads") || !strings.Contains(err.Error(), "every head") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("scorer", func(t *testing.T) {
		// A custom scorer (the importance package's hook): prefer high indices.
		score := func(gs []prune.Group) ([][]float64, error) {
			out := make([][]float64, len(gs))
			for i, g := range gs {
				for j := range g.Units {
					out[i] = append(out[i], float64(-j))
				}
			}
			return out, nil
		}
		st, err := prune.Prune(g0.Clone(), opts("heads", 0.25), score)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Pruned["block3.heads"]; len(got) != 1 || got[0] != 3 {
			t.Errorf("pruned %v, want head 3", got)
		}
	})
}

func TestRecipeOptions(t *testing.T) {
	p := passes.Lookup("prune")
	o := passes.NewOptions(p)
	for k, lit := range map[string]passes.Literal{
		"ratio": {Kind: passes.LitPercent, Text: "9.375"},
		"unit":  {Kind: passes.LitIdent, Text: "heads"},
		"scope": {Kind: passes.LitIdent, Text: "global"},
	} {
		if err := passes.SetOption(p, o, k, lit); err != nil {
			t.Fatal(err)
		}
	}
	if got := o.(*prune.Options); got.Ratio != 0.09375 || got.Unit != "heads" || got.Scope != "global" {
		t.Errorf("options %+v", got)
	}
	if err := passes.SetOption(p, o, "unit", passes.Literal{Kind: passes.LitIdent, Text: "neurons"}); err == nil {
		t.Error("unit neurons accepted")
	}
}

func TestNoEmbedding(t *testing.T) {
	g, err := ir.Parse(`graph "g" opset=17
input %0 : f32[2,4] "x"
%1 = Const dense<f32[4,3] splat(1.0)> : f32[4,3] "w"
%2 = MatMul %0, %1 : f32[2,3]
output "y" = %2
`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = prune.Prune(g, opts("embed", 0.5), nil)
	if err == nil || !strings.Contains(err.Error(), "patch-embedding Conv") {
		t.Errorf("err = %v", err)
	}
	_, err = prune.Prune(g, opts("heads", 0.5), nil)
	if err == nil || !strings.Contains(err.Error(), "no heads") {
		t.Errorf("err = %v", err)
	}
}

// TestPassReconstruct runs prune through the pass runner with
// reconstruct=true, which reads the recipe's calibration data.
func TestPassReconstruct(t *testing.T) {
	g, _ := loadCanonNoSidecar(t, p7Model)
	calib, err := data.Load("../../assets/fmnist_calib.npz")
	if err != nil {
		t.Fatal(err)
	}
	p := passes.Lookup("prune")
	o := passes.NewOptions(p).(*prune.Options)
	o.Unit, o.Ratio, o.Reconstruct, o.CalibImages = "heads", 0.25, true, 16
	rep, err := passes.Run(g, &passes.Pipeline{Steps: []passes.Step{{Pass: p, Options: o}}}, passes.Config{Verify: true, Calib: calib})
	if err != nil {
		t.Fatal(err)
	}
	st := rep.Steps[0].Result.(*prune.Stats)
	if len(st.Reconstruct) != 6 {
		t.Fatalf("reconstructed %v, want the 6 attention projections", st.Reconstruct)
	}
	for name, e := range st.Reconstruct {
		if e[1] > e[0] {
			t.Errorf("%s: error %g → %g after the fit", name, e[0], e[1])
		}
	}
	o.Unit = "embed"
	if _, err := passes.Run(g, &passes.Pipeline{Steps: []passes.Step{{Pass: p, Options: o}}}, passes.Config{Calib: calib}); err == nil {
		t.Error("reconstruct after embed pruning accepted")
	}
}

// TestImportanceScorer ranks heads with the importance package's magnitude
// criterion through the adapter; it must agree with prune's own.
func TestImportanceScorer(t *testing.T) {
	g0, _ := loadCanonNoSidecar(t, p7Model)
	res := &passimp.Result{Criterion: imp.Criterion{Method: "magnitude", Norm: 2, Reduce: "sum", Normalize: "none"}}
	a, err := prune.Prune(g0.Clone(), opts("heads", 0.25), prune.ImportanceScorer(res))
	if err != nil {
		t.Fatal(err)
	}
	b, err := prune.Prune(g0.Clone(), opts("heads", 0.25), nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.Pruned) != fmt.Sprint(b.Pruned) {
		t.Errorf("importance pruned %v; built-in %v", a.Pruned, b.Pruned)
	}
}
