package sweep

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/measure"
)

// shippedBase is the shipped Fashion-MNIST DeiT with the repository's
// calibration and evaluation data, under a small recipe.
func shippedBase(t *testing.T) Base {
	t.Helper()
	assets, err := filepath.Abs("../assets")
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(assets, "deit_fmnist.onnx")
	if _, err := os.Stat(model); err != nil {
		t.Skipf("shipped model missing: %v", err)
	}
	rec, err := dsl.Parse("base.pqv", []byte(`model "m.onnx"
canonicalize
importance magnitude
prune mlp ratio=50%
fuse attention=mha
quantize int8
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	calib, err := data.Load(filepath.Join(assets, "fmnist_calib.npz"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := data.Load(filepath.Join(assets, "fmnist_eval.npz"))
	if err != nil {
		t.Fatal(err)
	}
	return Base{Recipe: rec, ModelPath: model, Calib: calib, Eval: ev, Hash: "test"}
}

// TestSweepShipped runs a 2×1×2 grid on the shipped model, checks the
// outputs, and checks that a second run rebuilds nothing.
func TestSweepShipped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four models")
	}
	dir := t.TempDir()
	grid := Grid{Ratios: []float64{0, 0.09375}, Criteria: []string{"magnitude"}, Quants: []string{QuantNone, QuantInt8Dynamic}}
	var mu sync.Mutex
	var log []string
	cfg := Config{Base: shippedBase(t), Points: grid.Points(), OutDir: dir, Jobs: 2, EvalLimit: 64,
		Latency: measure.Options{Warmup: 1, Runs: 2}, Verify: true,
		Logf: func(format string, args ...any) {
			mu.Lock()
			log = append(log, fmt.Sprintf(format, args...))
			mu.Unlock()
		}}
	rs, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 || !rs[0].Reference {
		t.Fatalf("%d results (want the reference and 4 points), first %+v", len(rs), rs[0])
	}
	for _, r := range rs {
		if r.AccuracyPct == nil || r.EvalImages != 64 || r.RuntimeMs <= 0 || r.FileBytes <= 0 || r.Params <= 0 || r.PeakActivationBytes <= 0 {
			t.Errorf("%s: incomplete result %+v", r.ID, r)
		}
	}
	byID := map[string]*Result{}
	for _, r := range rs {
		byID[r.ID] = r
	}
	pruned, q := byID["r9.375_magnitude_none"], byID["r0_none_int8-dynamic"]
	if pruned == nil || q == nil {
		t.Fatalf("missing points in %v", byID)
	}
	if pruned.Params >= rs[0].Params || pruned.MACs >= rs[0].MACs {
		t.Errorf("pruning 9.375%%: params %d, MACs %d, not below the original's %d, %d", pruned.Params, pruned.MACs, rs[0].Params, rs[0].MACs)
	}
	if q.FileBytes*2 > rs[0].FileBytes {
		t.Errorf("int8: %d bytes, not under half the original's %d", q.FileBytes, rs[0].FileBytes)
	}

	outs, err := WriteAll(dir, rs, Summary{Recipe: "base.pqv", Model: cfg.Base.ModelPath, EvalImages: 64, Timing: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 4 {
		t.Errorf("WriteAll wrote %v, want csv, md and two plots", outs)
	}
	checkCSV(t, filepath.Join(dir, CSVFile), len(rs))
	for _, f := range []string{LatencyPlotFile, SizePlotFile} {
		checkPNG(t, filepath.Join(dir, f))
	}
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"r9.375_magnitude_int8-dynamic", "## Frontier: accuracy against pqvc runtime latency", "](accuracy_vs_size.png)", "**original**"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("sweep.md lacks %q", want)
		}
	}

	// Resuming: every point is skipped, nothing is built again, and the
	// figures come back from sweep.jsonl.
	log = nil
	var firstBuild []int
	cfg.Progress = func(stage string, done, total int) {
		if stage == "build" && firstBuild == nil {
			firstBuild = []int{done, total}
		}
	}
	rs2, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if firstBuild == nil || firstBuild[0] != 4 || firstBuild[1] != 4 {
		t.Errorf("resumed run's first build progress %v, want [4 4]", firstBuild)
	}
	skipped := 0
	for _, l := range log {
		if strings.Contains(l, "built in") {
			t.Errorf("resumed run rebuilt a point: %s", l)
		}
		if strings.Contains(l, "skipped") {
			skipped++
		}
	}
	if skipped != 4 {
		t.Errorf("resumed run skipped %d points, want 4; log:\n%s", skipped, strings.Join(log, "\n"))
	}
	for i := range rs {
		if *rs2[i].AccuracyPct != *rs[i].AccuracyPct || rs2[i].RuntimeMs != rs[i].RuntimeMs || rs2[i].FileBytes != rs[i].FileBytes {
			t.Errorf("%s: resumed figures differ: %+v vs %+v", rs[i].ID, rs2[i], rs[i])
		}
	}

	// A different base hash reuses nothing.
	cfg.Base.Hash = "other"
	cfg.Points = cfg.Points[:1]
	log = nil
	if _, err := Run(cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(log, "\n"), "r0_none_none: built in") {
		t.Errorf("a changed base did not rebuild: %s", strings.Join(log, "\n"))
	}
}

// checkCSV reads sweep.csv and checks its shape and that its Pareto
// columns agree with its own accuracy, latency and size columns.
func checkCSV(t *testing.T, path string, rows int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != rows+1 {
		t.Fatalf("sweep.csv has %d lines, want header + %d", len(recs), rows)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"ratio", "criterion", "quant", "params", "macs", "file_bytes", "accuracy_pct", "runtime_ms", "ort_ms", "pareto_latency", "pareto_size"} {
		if _, ok := col[h]; !ok {
			t.Errorf("sweep.csv lacks column %s (header %v)", h, recs[0])
		}
	}
	num := func(row []string, name string) float64 {
		x, err := strconv.ParseFloat(row[col[name]], 64)
		if err != nil {
			t.Fatalf("column %s: %v", name, err)
		}
		return x
	}
	var acc, lat, size []float64
	for _, row := range recs[1:] {
		acc, lat, size = append(acc, num(row, "accuracy_pct")), append(lat, num(row, "runtime_ms")), append(size, num(row, "file_bytes"))
	}
	onLat, onSize := Frontier(acc, lat), Frontier(acc, size)
	anyOn := false
	for i, row := range recs[1:] {
		if got := row[col["pareto_latency"]] == "true"; got != onLat[i] {
			t.Errorf("%s: pareto_latency %v, but the CSV's values say %v", row[0], got, onLat[i])
		}
		if got := row[col["pareto_size"]] == "true"; got != onSize[i] {
			t.Errorf("%s: pareto_size %v, but the CSV's values say %v", row[0], got, onSize[i])
		}
		anyOn = anyOn || onLat[i]
	}
	if !anyOn {
		t.Error("no point on the latency frontier")
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if r := img.Bounds(); r.Dx() < 100 || r.Dy() < 100 {
		t.Errorf("%s: %v image", path, r)
	}
}
