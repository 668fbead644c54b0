package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/measure"
	"github.com/pqvc/pqvc/passes"
)

// Report is report.json: what a recipe run did, with before and after
// figures. Numbers carry their units in the field names.
type Report struct {
	Recipe         string       `json:"recipe"`
	Model          string       `json:"model"`
	ParamsBefore   int64        `json:"params_before"`
	ParamsAfter    int64        `json:"params_after"`
	MACsBefore     int64        `json:"macs_before"` // per sample
	MACsAfter      int64        `json:"macs_after"`
	BytesBefore    int64        `json:"bytes_before"` // weights in memory
	BytesAfter     int64        `json:"bytes_after"`
	AccuracyBefore *float64     `json:"accuracy_before,omitempty"` // top-1, 0..1, Go runtime
	AccuracyAfter  *float64     `json:"accuracy_after,omitempty"`
	EvalImages     int          `json:"eval_images,omitempty"`
	Passes         []PassReport `json:"passes"`
	Outputs        []string     `json:"outputs"` // relative to the output folder, with /
	Seconds        float64      `json:"seconds"` // whole run

	// Fields added after the first release; each name carries its unit.

	AccuracyPctBefore         *float64 `json:"accuracy_pct_before,omitempty"` // top-1 in percent
	AccuracyPctAfter          *float64 `json:"accuracy_pct_after,omitempty"`
	PeakActivationBytesBefore int64    `json:"peak_activation_bytes_before"` // batch 1, see measure.PeakActivationBytes
	PeakActivationBytesAfter  int64    `json:"peak_activation_bytes_after"`
	// Latencies are medians at batch 1 (see Timing); nil when not
	// measured: --latency=false, ONNX Runtime missing, or no ONNX output
	// to time after the passes.
	RuntimeMsBefore *float64 `json:"runtime_ms_before,omitempty"` // pqvc's runtime
	RuntimeMsAfter  *float64 `json:"runtime_ms_after,omitempty"`
	ORTMsBefore     *float64 `json:"ort_ms_before,omitempty"` // ONNX Runtime, the input file
	ORTMsAfter      *float64 `json:"ort_ms_after,omitempty"`  // ONNX Runtime, the emitted ONNX file
	Timing          *Timing  `json:"timing,omitempty"`

	ortBefore, ortAfter *ortJob // ONNX Runtime timings measureORT owes
}

// Timing says how the report's latencies were taken.
type Timing struct {
	Batch   int    `json:"batch"`
	Threads int    `json:"threads"`
	Warmup  int    `json:"warmup_runs"`
	Runs    int    `json:"timed_runs"`
	ORT     string `json:"ort"` // "used", or why ONNX Runtime was not
}

// PassReport is one entry of Report.Passes.
type PassReport struct {
	Name     string  `json:"name"`
	Seconds  float64 `json:"seconds"`
	Params   int64   `json:"params"`
	MACs     int64   `json:"macs"`
	Bytes    int64   `json:"bytes"`
	Changed  bool    `json:"changed"`
	Implicit bool    `json:"implicit,omitempty"`
	Result   any     `json:"result,omitempty"`
}

func passReports(r *passes.Report) []PassReport {
	out := []PassReport{}
	if r == nil {
		return out
	}
	for _, s := range r.Steps {
		// The report keeps the result's JSON, not the result: an analysis
		// result refers to the graph (importance's gradients are keyed by
		// its values), and holding it would keep the whole graph alive
		// while ONNX Runtime times the outputs at the end.
		var res any = fmt.Sprint(s.Result) // a plugin's result that JSON cannot hold
		if b, err := json.Marshal(s.Result); err == nil {
			res = json.RawMessage(b)
		}
		out = append(out, PassReport{Name: s.Name, Seconds: s.Seconds, Params: s.Params, MACs: s.MACs, Bytes: s.Bytes,
			Changed: s.Changed, Implicit: s.Implicit, Result: res})
	}
	return out
}

// JSON encodes the report, indented, with a trailing newline.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Markdown writes the report for people.
func (r *Report) Markdown(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "# pqvc report\n\nRecipe `%s`, model `%s`.\n\n", r.Recipe, r.Model)
	b.WriteString("| | before | after | change |\n|---|---:|---:|---:|\n")
	row := func(name string, before, after int64, unit string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, measure.Count(before, unit), measure.Count(after, unit), pct(before, after))
	}
	row("parameters", r.ParamsBefore, r.ParamsAfter, "")
	row("MACs per image", r.MACsBefore, r.MACsAfter, "")
	row("weight bytes", r.BytesBefore, r.BytesAfter, "B")
	if r.PeakActivationBytesBefore > 0 {
		row("peak activation memory (batch 1)", r.PeakActivationBytesBefore, r.PeakActivationBytesAfter, "B")
	}
	if r.AccuracyBefore != nil && r.AccuracyAfter != nil {
		fmt.Fprintf(&b, "| top-1 accuracy (%d images) | %.2f%% | %.2f%% | %+.2f pp |\n", r.EvalImages,
			100**r.AccuracyBefore, 100**r.AccuracyAfter, 100*(*r.AccuracyAfter-*r.AccuracyBefore))
	}
	msRow := func(name string, before, after *float64) {
		if before == nil && after == nil {
			return
		}
		change := "–"
		if before != nil && after != nil && *before > 0 {
			change = fmt.Sprintf("%+.2f%%", 100*(*after-*before) / *before)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, msCell(before), msCell(after), change)
	}
	msRow("latency, pqvc runtime", r.RuntimeMsBefore, r.RuntimeMsAfter)
	msRow("latency, ONNX Runtime", r.ORTMsBefore, r.ORTMsAfter)
	if t := r.Timing; t != nil {
		fmt.Fprintf(&b, "\nLatency is the median of %d runs after %d warm-up, batch %d, %d thread(s)", t.Runs, t.Warmup, t.Batch, t.Threads)
		if t.ORT != "used" {
			fmt.Fprintf(&b, "; ONNX Runtime: %s", t.ORT)
		}
		b.WriteString(".\n")
	}
	b.WriteString("\n## Passes\n\n| # | pass | time | params | MACs | weight bytes | changed |\n|---:|---|---:|---:|---:|---:|---|\n")
	for i, p := range r.Passes {
		name := p.Name
		if p.Implicit {
			name += " (required)"
		}
		fmt.Fprintf(&b, "| %d | %s | %.3f s | %d | %d | %s | %v |\n", i+1, name, p.Seconds, p.Params, p.MACs, measure.Count(p.Bytes, "B"), p.Changed)
	}
	b.WriteString("\n## Outputs\n\n")
	for _, o := range r.Outputs {
		fmt.Fprintf(&b, "- `%s`\n", o)
	}
	fmt.Fprintf(&b, "\nTotal time %.2f s.\n", r.Seconds)
	io.WriteString(w, b.String())
}

func pct(before, after int64) string {
	if before == 0 {
		return "–"
	}
	return fmt.Sprintf("%+.2f%%", 100*float64(after-before)/float64(before))
}

func msCell(ms *float64) string {
	if ms == nil {
		return "–"
	}
	return fmt.Sprintf("%.3f ms", *ms)
}

// reportTiming is how recipe reports time a model: few runs, so a recipe
// on a small model stays fast, at batch 1 on one thread, where figures
// are comparable between machines and runs.
var reportTiming = measure.Options{Batch: 1, Threads: 1, Warmup: 1, Runs: 5}

// ortJob is one ONNX Runtime timing the report still owes: the file and
// the seeded inputs taken from its graph while the graph was at hand.
type ortJob struct {
	path   string
	inputs map[string]*tensorio.Array
}

// measureBefore fills in the report's "before" figures that the first
// release lacked: peak activation memory and, when latency is asked for,
// latency in pqvc's runtime. ONNX Runtime's timing of the input file is
// only prepared here; measureORT takes it at the end.
func (r *Report) measureBefore(g *ir.Graph, modelPath string, latency bool) error {
	peak, err := measure.PeakActivationBytes(g, 1)
	if err != nil {
		return fmt.Errorf("peak activation memory of %s: %w", modelPath, err)
	}
	r.PeakActivationBytesBefore = peak
	if r.AccuracyBefore != nil {
		r.AccuracyPctBefore = ptr(100 * *r.AccuracyBefore)
	}
	if !latency {
		return nil
	}
	o := reportTiming
	r.Timing = &Timing{Batch: o.Batch, Threads: o.Threads, Warmup: o.Warmup, Runs: o.Runs, ORT: "used"}
	lat, err := measure.Runtime(g, o)
	if err != nil {
		return fmt.Errorf("timing %s in pqvc's runtime: %w", modelPath, err)
	}
	r.RuntimeMsBefore = ptr(lat.Ms())
	if err := ort.Available(); err != nil {
		r.Timing.ORT = "not available (" + err.Error() + ")"
		return nil
	}
	in, err := measure.InputArrays(g, o.Batch)
	if err != nil {
		return fmt.Errorf("inputs to time %s: %w", modelPath, err)
	}
	r.ortBefore = &ortJob{modelPath, in}
	return nil
}

// measureAfter fills in the "after" figures for the compiled graph g.
// onnxPath is the emitted ONNX file ("" when the recipe emits none), which
// is what ONNX Runtime times in measureORT.
func (r *Report) measureAfter(g *ir.Graph, onnxPath string) error {
	peak, err := measure.PeakActivationBytes(g, 1)
	if err != nil {
		return fmt.Errorf("peak activation memory after the passes: %w", err)
	}
	r.PeakActivationBytesAfter = peak
	if r.AccuracyAfter != nil {
		r.AccuracyPctAfter = ptr(100 * *r.AccuracyAfter)
	}
	if r.Timing == nil {
		return nil
	}
	lat, err := measure.Runtime(g, reportTiming)
	if err != nil {
		return fmt.Errorf("timing the result in pqvc's runtime: %w", err)
	}
	r.RuntimeMsAfter = ptr(lat.Ms())
	if r.ortBefore == nil {
		return nil
	}
	if onnxPath == "" {
		r.Timing.ORT = "the recipe emits no ONNX file to time after the passes"
		return nil
	}
	in, err := measure.InputArrays(g, reportTiming.Batch)
	if err != nil {
		return fmt.Errorf("inputs to time the result: %w", err)
	}
	r.ortAfter = &ortJob{onnxPath, in}
	return nil
}

// measureORT times the input file and the emitted ONNX file in ONNX
// Runtime, each in its own runner process that exits before the next
// starts. It runs last, after the caller has let go of the graph: ONNX
// Runtime holds its own copy of a model (about twice its weights, with
// prepacked MatMuls), and a runner kept alive through the passes, or one
// holding both models, made the compile's processes together peak at
// about three times a DeiT-base. A model ONNX Runtime cannot run is a
// finding for the report, not a reason to throw the compiled model away.
func (r *Report) measureORT() {
	if r.Timing == nil {
		return
	}
	if j := r.ortBefore; j != nil {
		r.ORTMsBefore = r.timeORT(j, "the input model")
	}
	if j := r.ortAfter; j != nil {
		r.ORTMsAfter = r.timeORT(j, filepath.Base(j.path))
	}
}

// timeORT times one file in a runner of its own; a failure goes into the
// report's timing note and gives nil.
func (r *Report) timeORT(j *ortJob, what string) *float64 {
	runner, err := ort.Start()
	if err != nil {
		r.Timing.ORT = "failed to start (" + oneLine(err) + ")"
		return nil
	}
	lat, err := measure.ORTFile(runner, j.path, j.inputs, reportTiming)
	runner.Close()
	if err != nil {
		r.Timing.ORT = "could not run " + what + " (" + oneLine(err) + ")"
		return nil
	}
	return ptr(lat.Ms())
}

func ptr(x float64) *float64 { return &x }
