package search_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/backend"
	_ "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/eval"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/builtin"
	"github.com/pqvc/pqvc/runtime"
	"github.com/pqvc/pqvc/search"
)

const (
	model = "../assets/deit_fmnist.onnx"
	calib = "../assets/fmnist_calib.npz"
	evalN = "../assets/fmnist_eval.npz"
)

// smallEval writes the first n evaluation images to dir/eval.npz.
func smallEval(t *testing.T, dir string, n int) string {
	t.Helper()
	ds, err := data.Load(evalN)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "eval.npz")
	if err := data.WriteTensors(p, map[string]*ir.Tensor{"x": ds.Batch(0, n), "y": ir.I64Tensor([]int64{int64(n)}, ds.Y[:n])}); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseRecipe(t *testing.T, path string) *dsl.Recipe {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dsl.Parse(path, src, backend.Names())
	if err != nil {
		t.Fatalf("%s does not parse: %v\n%s", path, err, src)
	}
	return rec
}

// rerun runs a recipe file the way `pqvc RECIPE` does (paths relative to
// the file) and returns the result's accuracy and MACs.
func rerun(t *testing.T, path string) (float64, int64) {
	t.Helper()
	rec := parseRecipe(t, path)
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(filepath.Dir(path), p)
	}
	g, err := onnx.Load(abs(rec.Model))
	if err != nil {
		t.Fatal(err)
	}
	cal, err := data.Load(abs(rec.Calib))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := data.Load(abs(rec.Eval))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Run(g, rec.Pipeline(), passes.Config{Verify: true, Calib: cal, Eval: ev}); err != nil {
		t.Fatal(err)
	}
	r, err := eval.Accuracy(g, ev, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Accuracy, ir.ComputeStats(g).MACs
}

// TestSearchReproduces runs a small search on the shipped model (MLP
// groups at 50%, 300 evaluation images) and checks the found recipe:
// it parses, re-running it gives exactly the reported accuracy, the drop
// is within budget and the model is cheaper than the unpruned one.
func TestSearchReproduces(t *testing.T) {
	if testing.Short() {
		t.Skip("runs about 20 candidate pipelines")
	}
	dir := t.TempDir()
	ev := smallEval(t, dir, 300)
	absModel, _ := filepath.Abs(model)
	absCalib, _ := filepath.Abs(calib)
	base := filepath.Join(dir, "base.pqv")
	src := "model \"" + absModel + "\"\ncalibrate_with \"" + absCalib + "\"\nevaluate_with \"eval.npz\"\n\n" +
		"canonicalize\nprune mlp ratio=10%\nfuse attention=mha\nquantize int8 mode=dynamic\n\nemit onnx \"m.onnx\"\n"
	if err := os.WriteFile(base, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := parseRecipe(t, base)
	g, err := onnx.Load(absModel)
	if err != nil {
		t.Fatal(err)
	}
	cal, err := data.Load(absCalib)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := data.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	const budget = 0.02
	res, err := search.Run(search.Inputs{Base: rec, Model: g, Calib: cal, Eval: evs, ModelPath: absModel, CalibPath: absCalib, EvalPath: ev, Dir: out},
		search.Options{MaxDrop: budget, Objective: "latency", Ratios: []float64{0.5}, Kinds: []string{"mlp"}, SensitivityImages: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Prune) != 4 {
		t.Errorf("%d sensitivity figures, want 4 (one per block's MLP)", len(res.Prune))
	}
	found, err := res.WriteRecipe(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.WriteReports(out); err != nil {
		t.Fatal(err)
	}
	acc, macs := rerun(t, found)
	if acc != res.After.Accuracy {
		t.Errorf("re-running found.pqv gives %.4f, the search reported %.4f", acc, res.After.Accuracy)
	}
	if res.Before.Accuracy-acc > budget+1e-9 {
		t.Errorf("accuracy %.4f → %.4f: over the %.2f budget", res.Before.Accuracy, acc, budget)
	}
	if macs != res.After.MACs || len(res.Chosen.Ratios) > 0 && macs >= res.Before.MACs {
		t.Errorf("MACs %d → %d (reported %d), chosen %v", res.Before.MACs, macs, res.After.MACs, res.Chosen.Ratios)
	}
	// Pruning one block's MLP in half costs this model little: a 2-point
	// budget must buy some pruning.
	if len(res.Chosen.Ratios) == 0 {
		t.Errorf("nothing pruned within a 2-point budget; sensitivity %+v", res.Prune)
	}
	t.Logf("chose %s: %.4f → %.4f, MACs %d → %d, %d runs", res.Chosen.Describe(), res.Before.Accuracy, res.After.Accuracy, res.Before.MACs, res.After.MACs, res.Runs)
	md, err := os.ReadFile(filepath.Join(out, search.MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Pruning sensitivity", "block0.mlp", "## Found recipe", "prune all ratios="} {
		if !strings.Contains(string(md), want) {
			t.Errorf("search.md lacks %q", want)
		}
	}
}

// TestTemplate checks how the base recipe becomes the found one: the
// search's prune replaces the base's, at its place (or after canonicalize
// and importance), and --quant replaces or drops the quantize step.
func TestTemplate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) *dsl.Recipe {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return parseRecipe(t, p)
	}
	base := write("a.pqv", "model \"m.onnx\"\ncanonicalize\nimportance magnitude\nfuse\nquantize int8 mode=static exclude=[x]\n")
	cfg := search.Config{Ratios: map[string]float64{"block1.mlp": 0.25, "block0.heads": 0.5}, Quant: true, Exclude: []string{"a/b"}}
	for _, c := range []struct{ quant, want string }{
		{"", "canonicalize\nimportance magnitude\nprune all ratios=[\"block0.heads=50%\", \"block1.mlp=25%\"]\nfuse\nquantize int8 mode=static exclude=[\"a/b\"]\n"},
		{"none", "canonicalize\nimportance magnitude\nprune all ratios=[\"block0.heads=50%\", \"block1.mlp=25%\"]\nfuse\n"},
		{"fp16", "fuse\nquantize fp16 mode=static exclude=[\"a/b\"]\n"},
	} {
		got, err := search.RenderForTest(base, c.quant, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("quant %q: recipe\n%s\nwant it to contain\n%s", c.quant, got, c.want)
		}
		write("b.pqv", got) // parses
	}
	if _, err := search.RenderForTest(base, "int4", cfg); err == nil {
		t.Error("quant int4 accepted")
	}
}

// predictions runs the recipe steps src on the model and returns its
// arg-max for the first n evaluation images.
func predictions(t *testing.T, dir, src string, ds *data.Dataset, n int) []int {
	t.Helper()
	p := filepath.Join(dir, "pred.pqv")
	if err := os.WriteFile(p, []byte("model \"m.onnx\"\n"+src), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := parseRecipe(t, p)
	g, err := onnx.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Run(g, rec.Pipeline(), passes.Config{}); err != nil {
		t.Fatal(err)
	}
	prog, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := prog.Run(map[string]*ir.Tensor{g.Inputs[0].Name: ds.Batch(0, n)})
	if err != nil {
		t.Fatal(err)
	}
	y := out[g.Outputs[0].Name]
	k := int(y.Shape[1])
	f := y.F32()
	pred := make([]int, n)
	for i := range n {
		for j := 1; j < k; j++ {
			if f[i*k+j] > f[i*k+pred[i]] {
				pred[i] = j
			}
		}
	}
	return pred
}

// TestSearchKeepsLayersFloat builds an evaluation set, labelled with the
// float model's predictions, on which int8 quantization loses images, so a zero budget forces the search to keep
// layers in float, and checks the found recipe reproduces within budget.
func TestSearchKeepsLayersFloat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs about 30 candidate pipelines")
	}
	dir := t.TempDir()
	ds, err := data.Load(evalN)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	fl := predictions(t, dir, "canonicalize\nfuse attention=mha\n", ds, n)
	q := predictions(t, dir, "canonicalize\nfuse attention=mha\nquantize int8 mode=dynamic\n", ds, n)
	var pick []int
	for i := range n {
		if q[i] != fl[i] {
			pick = append(pick, i)
		}
	}
	lost := len(pick)
	if lost == 0 {
		t.Skip("int8 changes no prediction on the first images: nothing to recover")
	}
	for i := 0; len(pick) < 40 && i < n; i++ {
		if q[i] == fl[i] {
			pick = append(pick, i)
		}
	}
	x := ir.MustTensor(ir.F32, append([]int64{int64(len(pick))}, ds.X.Shape[1:]...)...)
	per := len(ds.X.F32()) / ds.Len()
	y := make([]int64, len(pick))
	for j, i := range pick {
		copy(x.F32()[j*per:(j+1)*per], ds.X.F32()[i*per:(i+1)*per])
		y[j] = int64(fl[i]) // the float model's answers: it scores 100%
	}
	ev := filepath.Join(dir, "eval.npz")
	if err := data.WriteTensors(ev, map[string]*ir.Tensor{"x": x, "y": ir.I64Tensor([]int64{int64(len(y))}, y)}); err != nil {
		t.Fatal(err)
	}
	absModel, _ := filepath.Abs(model)
	absCalib, _ := filepath.Abs(calib)
	base := filepath.Join(dir, "base.pqv")
	src := "model \"" + absModel + "\"\ncalibrate_with \"" + absCalib + "\"\nevaluate_with \"eval.npz\"\n\ncanonicalize\nfuse attention=mha\nquantize int8 mode=dynamic\n"
	if err := os.WriteFile(base, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := onnx.Load(absModel)
	if err != nil {
		t.Fatal(err)
	}
	cal, err := data.Load(absCalib)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := data.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	// Ratio 10% of 4 heads removes nothing: no pruning candidates, so the
	// budget goes to quantization alone.
	res, err := search.Run(search.Inputs{Base: parseRecipe(t, base), Model: g, Calib: cal, Eval: evs, ModelPath: absModel, CalibPath: absCalib, EvalPath: ev, Dir: dir},
		search.Options{MaxDrop: 0, Ratios: []float64{0.1}, Kinds: []string{"heads"}, SensitivityImages: 64})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Layers) == 0 {
		t.Fatalf("no quantization sensitivity measured; log %q", res.Log)
	}
	if res.Chosen.Quant && len(res.Chosen.Exclude) == 0 {
		t.Errorf("every layer quantized though int8 changes %d answers at budget 0", lost)
	}
	found, err := res.WriteRecipe(dir)
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := rerun(t, found)
	if acc != res.After.Accuracy || acc < res.Before.Accuracy {
		t.Errorf("found recipe gives %.4f; search reported %.4f, model %.4f", acc, res.After.Accuracy, res.Before.Accuracy)
	}
	t.Logf("int8 changes %d of %d images; chose %s: %.4f → %.4f", lost, len(pick), res.Chosen.Describe(), res.Before.Accuracy, acc)
}
