package prune_test

import (
	"strings"
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/prune"
)

// TestRatiosOption checks per-group ratios: only the named groups lose
// units, each at its own ratio, and bad entries fail with the entry named.
func TestRatiosOption(t *testing.T) {
	g0, _ := loadCanonNoSidecar(t, p7Model)
	t.Run("only_named", func(t *testing.T) {
		o := opts("all", 0)
		o.Ratios = []string{"block1.mlp=25%", "block2.heads=0.5", "block0.head_dim=0.25"}
		g := g0.Clone()
		st, err := prune.Prune(g, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ir.Verify(g); err != nil {
			t.Fatal(err)
		}
		if len(st.Removed) != 3 || st.Removed["block1.mlp"] != 64 || st.Removed["block2.heads"] == 0 || st.Removed["block0.head_dim"] == 0 {
			t.Errorf("removed %v, want only block1.mlp (64), block2.heads, block0.head_dim", st.Removed)
		}
		if st.ParamsAfter >= st.ParamsBefore {
			t.Errorf("params %d → %d, want fewer", st.ParamsBefore, st.ParamsAfter)
		}
	})
	t.Run("default_ratio_and_first_match", func(t *testing.T) {
		o := opts("mlp", 0.125)
		o.Ratios = []string{"block0.mlp=0", "block0.*=50%", "block1.*=50%"}
		st, err := prune.Prune(g0.Clone(), o, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Removed["block0.mlp"]; ok {
			t.Errorf("block0.mlp pruned (%d) though its first matching entry says 0", st.Removed["block0.mlp"])
		}
		if st.Removed["block1.mlp"] != 128 || st.Removed["block2.mlp"] != 32 {
			t.Errorf("removed %v, want block1.mlp 128 (50%%), block2.mlp 32 (ratio 12.5%%)", st.Removed)
		}
	})
	for _, c := range []struct {
		ratios []string
		scope  string
		want   string
	}{
		{[]string{"block1.mlp"}, "local", "want GLOB=RATIO"},
		{[]string{"block1.mlp=lots"}, "local", "not a number"},
		{[]string{"block1.mlp=100%"}, "local", "must be in [0, 1)"},
		{[]string{"[=0.5"}, "local", "bad pattern"},
		{[]string{"block1.mlp=0.5"}, "global", "needs scope=local"},
	} {
		o := opts("mlp", 0)
		o.Ratios, o.Scope = c.ratios, c.scope
		_, err := prune.Prune(g0.Clone(), o, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ratios %q scope %s: error %v, want %q", c.ratios, c.scope, err, c.want)
		}
	}
}
