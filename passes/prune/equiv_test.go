package prune_test

import (
	"path/filepath"
	"testing"

	backend "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/prune"
)

// zeroUnits returns a copy of g in which every slice of the given units is
// zero: the unpruned model that pruning those units must reproduce.
func zeroUnits(t *testing.T, g *ir.Graph, groups []prune.Group, pruned map[string][]int) *ir.Graph {
	t.Helper()
	zero := map[*ir.Value][]prune.Slice{}
	for _, grp := range groups {
		for _, u := range pruned[grp.Name] {
			for _, s := range grp.Units[u].Slices {
				zero[s.W] = append(zero[s.W], s)
			}
		}
	}
	for w, ss := range zero {
		data := append([]float32(nil), w.Const.F32()...)
		shape := w.Const.Shape
		for _, s := range ss {
			inner := 1
			for _, d := range shape[s.Axis+1:] {
				inner *= int(d)
			}
			n := int(shape[s.Axis])
			for o := range len(data) / (n * inner) {
				for _, k := range s.Index {
					clear(data[(o*n+k)*inner : (o*n+k+1)*inner])
				}
			}
		}
		nw := g.AddConst(w.Name, ir.F32Tensor(shape, data))
		w.ReplaceUses(nw)
	}
	return g
}

// TestPruneEquivalent checks the rewrite's numerics: removing heads, head
// dims or MLP channels must give exactly what the unpruned model gives with
// those units' weights zeroed (a zero head, dim or hidden channel adds
// nothing), in our runtime and in ONNX Runtime. Embedding channels have no
// such oracle (LayerNorm statistics change); they are checked against ORT.
func TestPruneEquivalent(t *testing.T) {
	g0, _ := loadCanonNoSidecar(t, p7Model)
	ds, err := data.Load("../../assets/fmnist_calib.npz")
	if err != nil {
		t.Fatal(err)
	}
	x := ds.Batch(0, 4)
	r := ort.NewTestRunner(t)
	dir := t.TempDir()
	for _, kind := range []string{"heads", "head_dim", "mlp", "embed", "channels", "all"} {
		g := g0.Clone()
		stats, err := prune.Prune(g, prune.Options{Unit: kind, Ratio: 0.25, Scope: "local", RoundTo: 1, Criterion: "magnitude"}, nil)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if err := ir.Verify(g); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		got := runGraph(t, g, x)
		if kind == "heads" || kind == "head_dim" || kind == "mlp" {
			ref := g0.Clone()
			st, err := prune.Analyze(ref)
			if err != nil {
				t.Fatal(err)
			}
			groups, err := st.Groups(kind)
			if err != nil {
				t.Fatal(err)
			}
			want := runGraph(t, zeroUnits(t, ref, groups, stats.Pruned), x)
			if d := maxDiff(got, want); d > 1e-4 {
				t.Errorf("%s: pruned model differs from the zeroed one by %g", kind, d)
			}
		}
		file := filepath.Join(dir, kind+".onnx")
		if err := backend.Write(file, g, backend.Options{}); err != nil {
			t.Fatal(err)
		}
		in, _ := data.FromTensor(x)
		res, err := r.Run(file, map[string]*tensorio.Array{g.Inputs[0].Name: in}, 1)
		if err != nil {
			t.Fatalf("%s: ONNX Runtime: %v", kind, err)
		}
		want, _ := data.ToTensor(res[g.Outputs[0].Name])
		if d := maxDiff(got, want); d > 1e-4 {
			t.Errorf("%s: runtime and ONNX Runtime differ by %g", kind, d)
		}
		t.Logf("%-8s %d → %d params, widths %v", kind, stats.ParamsBefore, stats.ParamsAfter, stats.Widths)
	}
}
