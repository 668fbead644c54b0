package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/internal/ort"
)

// TestReportBeforeAfter checks the figures measureBefore and measureAfter
// add to a report, and that report.json keeps its first-release fields.
func TestReportBeforeAfter(t *testing.T) {
	const model = "../assets/deit_fmnist.onnx"
	g, err := loadModel(model)
	if err != nil {
		t.Skipf("shipped model: %v", err)
	}
	acc := 0.883
	rep := &Report{Recipe: "r.pqv", Model: model, ParamsBefore: 10, ParamsAfter: 8, AccuracyBefore: &acc, AccuracyAfter: &acc, EvalImages: 2000,
		Passes: []PassReport{{Name: "canonicalize", Seconds: 0.5, Params: 8, MACs: 9, Bytes: 2048, Changed: true}}, Outputs: []string{}}
	if err := rep.measureBefore(g, model, true); err != nil {
		t.Fatal(err)
	}
	// No ONNX output: ONNX Runtime has nothing to time after the passes.
	if err := rep.measureAfter(g, ""); err != nil {
		t.Fatal(err)
	}
	rep.measureORT()
	if ort.Available() == nil {
		if rep.ORTMsBefore == nil || *rep.ORTMsBefore <= 0 {
			t.Errorf("ONNX Runtime latency of the input model not measured (%s)", rep.Timing.ORT)
		}
		if want := "the recipe emits no ONNX file to time after the passes"; rep.Timing.ORT != want {
			t.Errorf("timing.ort %q, want %q", rep.Timing.ORT, want)
		}
	}
	if rep.PeakActivationBytesBefore <= 0 || rep.PeakActivationBytesAfter != rep.PeakActivationBytesBefore {
		t.Errorf("peak activation bytes %d → %d, want equal and positive for the same graph", rep.PeakActivationBytesBefore, rep.PeakActivationBytesAfter)
	}
	if rep.RuntimeMsBefore == nil || *rep.RuntimeMsBefore <= 0 || rep.RuntimeMsAfter == nil || *rep.RuntimeMsAfter <= 0 {
		t.Errorf("runtime latency not measured: %v, %v", rep.RuntimeMsBefore, rep.RuntimeMsAfter)
	}
	if rep.ORTMsAfter != nil {
		t.Errorf("ONNX Runtime latency after without an ONNX output: %v", *rep.ORTMsAfter)
	}
	if rep.AccuracyPctBefore == nil || *rep.AccuracyPctBefore != 88.3 {
		t.Errorf("accuracy_pct_before %v, want 88.3", rep.AccuracyPctBefore)
	}
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"params_before", "accuracy_before", "passes", "peak_activation_bytes_before", "peak_activation_bytes_after",
		"runtime_ms_before", "runtime_ms_after", "accuracy_pct_after", "timing"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report.json lacks %s", k)
		}
	}
	var md strings.Builder
	rep.Markdown(&md)
	for _, want := range []string{"| peak activation memory (batch 1) | 166.4 kB |", "| latency, pqvc runtime | ", " ms | ",
		"| 1 | canonicalize | 0.500 s | 8 | 9 | 2.0 kB | true |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md.String())
		}
	}
}

// TestReportORTAfterGraph checks that ONNX Runtime's timings, taken after
// the graph is let go, come from the files: the input model before, the
// emitted one after, and an unrunnable file is a finding, not an error.
func TestReportORTAfterGraph(t *testing.T) {
	if err := ort.Available(); err != nil {
		t.Skipf("ONNX Runtime: %v", err)
	}
	const model = "../assets/deit_fmnist.onnx"
	g, err := loadModel(model)
	if err != nil {
		t.Skipf("shipped model: %v", err)
	}
	rep := &Report{Outputs: []string{}}
	if err := rep.measureBefore(g, model, true); err != nil {
		t.Fatal(err)
	}
	if err := rep.measureAfter(g, model); err != nil {
		t.Fatal(err)
	}
	if rep.ORTMsBefore != nil || rep.ORTMsAfter != nil {
		t.Fatal("ONNX Runtime timed before measureORT")
	}
	rep.measureORT()
	if rep.ORTMsBefore == nil || rep.ORTMsAfter == nil || rep.Timing.ORT != "used" {
		t.Errorf("ONNX Runtime latencies %v, %v (%s), want both", rep.ORTMsBefore, rep.ORTMsAfter, rep.Timing.ORT)
	}

	bad := t.TempDir() + "/bad.onnx"
	if err := os.WriteFile(bad, []byte("not onnx"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep = &Report{Outputs: []string{}}
	if err := rep.measureBefore(g, model, true); err != nil {
		t.Fatal(err)
	}
	if err := rep.measureAfter(g, bad); err != nil {
		t.Fatal(err)
	}
	rep.measureORT()
	if rep.ORTMsBefore == nil || rep.ORTMsAfter != nil || !strings.HasPrefix(rep.Timing.ORT, "could not run bad.onnx (") {
		t.Errorf("unrunnable output: latencies %v, %v, timing.ort %q", rep.ORTMsBefore, rep.ORTMsAfter, rep.Timing.ORT)
	}
}
