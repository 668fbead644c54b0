package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"github.com/pqvc/pqvc/cli"
)

// Reports record how long the run and each pass took, so report.json is
// the one output that may differ between two runs of the same recipe.
// Everything else in it (figures, pass results, output names, which are
// relative to the output folder) must be identical across runs, output
// folders and GOMAXPROCS.
func TestReportDeterministic(t *testing.T) {
	assets, err := filepath.Abs("../../assets")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := filepath.Join(dir, "r.pqv")
	body := "model \"" + assets + "/deit_fmnist.onnx\"\ncalibrate_with \"" + assets + "/fmnist_calib.npz\"\n" +
		"canonicalize\nimportance taylor batches=2\nprune mlp ratio=9.375%\nfuse attention=mha\nquantize int8 mode=dynamic\nfuse\nemit onnx \"m.onnx\"\n"
	if err := os.WriteFile(r, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var reports []map[string]any
	for i, procs := range []int{1, 2} {
		old := goruntime.GOMAXPROCS(procs)
		out := filepath.Join(dir, "out"+string(rune('a'+i)))
		code, msg := runPQVC(r, "-o", out, "-q", "--latency=false")
		goruntime.GOMAXPROCS(old)
		if code != cli.ExitOK {
			t.Fatalf("exit %d: %s", code, msg)
		}
		b, err := os.ReadFile(filepath.Join(out, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["seconds"].(float64); !ok {
			t.Fatalf("report.json has no run time: %s", b)
		}
		delete(m, "seconds")
		for _, p := range m["passes"].([]any) {
			delete(p.(map[string]any), "seconds")
		}
		reports = append(reports, m)
	}
	a, _ := json.MarshalIndent(reports[0], "", " ")
	b, _ := json.MarshalIndent(reports[1], "", " ")
	if string(a) != string(b) {
		t.Errorf("reports differ beyond their times:\n%s\n---\n%s", a, b)
	}
	if outs := reports[0]["outputs"].([]any); len(outs) != 3 || outs[0] != "m.onnx" || outs[1] != "report.json" {
		t.Errorf("outputs %v, want m.onnx, report.json, report.md relative to the output folder", outs)
	}
}
