package sweep

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/internal/atomicfile"
	"github.com/pqvc/pqvc/measure"
)

// Output file names inside the sweep's folder.
const (
	CSVFile         = "sweep.csv"
	MarkdownFile    = "sweep.md"
	LatencyPlotFile = "accuracy_vs_latency.png"
	SizePlotFile    = "accuracy_vs_size.png"
)

// CSVHeader is sweep.csv's first line; every figure's unit is in its name.
var CSVHeader = []string{"id", "ratio", "criterion", "quant", "params", "macs", "file_bytes", "peak_activation_bytes",
	"accuracy_pct", "runtime_ms", "ort_ms", "pareto_latency", "pareto_size", "error"}

// WriteCSV writes one row per result. Missing figures are empty cells.
func WriteCSV(w io.Writer, rs []*Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	f := func(x float64, prec int) string {
		if x == 0 {
			return ""
		}
		return strconv.FormatFloat(x, 'f', prec, 64)
	}
	for _, r := range rs {
		acc := ""
		if r.AccuracyPct != nil {
			acc = strconv.FormatFloat(*r.AccuracyPct, 'f', 4, 64)
		}
		row := []string{r.ID, strconv.FormatFloat(r.Ratio, 'g', -1, 64), r.Criterion, r.Quant,
			strconv.FormatInt(r.Params, 10), strconv.FormatInt(r.MACs, 10), strconv.FormatInt(r.FileBytes, 10),
			strconv.FormatInt(r.PeakActivationBytes, 10), acc, f(r.RuntimeMs, 4), f(r.ORTMs, 4),
			strconv.FormatBool(r.ParetoLatency), strconv.FormatBool(r.ParetoSize), r.Error}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Summary describes the sweep for sweep.md's header.
type Summary struct {
	Recipe, Model string
	EvalImages    int    // 0 when accuracy was not measured
	Timing        string // how latency was taken ("batch 1, 1 thread, median of 10 runs")
	Seconds       float64
}

// WriteMarkdown writes sweep.md: how the sweep was run, a table of every
// point, the two frontiers and the plots.
func WriteMarkdown(w io.Writer, rs []*Result, s Summary) {
	var b strings.Builder
	useORT := UseORT(rs)
	latName := "pqvc runtime"
	if useORT {
		latName = "ONNX Runtime"
	}
	fmt.Fprintf(&b, "# pqvc sweep\n\nBase recipe `%s`, model `%s`.\n", s.Recipe, s.Model)
	if s.EvalImages > 0 {
		fmt.Fprintf(&b, "Top-1 accuracy on %d images. ", s.EvalImages)
	}
	fmt.Fprintf(&b, "Latency: %s. Frontiers use %s latency and ONNX file size; ★ marks a point on a frontier.\n\n", s.Timing, latName)
	b.WriteString("| point | pruned | criterion | quant | params | MACs | file | peak act. | accuracy | pqvc | ORT | ★ latency | ★ size |\n")
	b.WriteString("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|\n")
	for _, r := range rs {
		if r.Error != "" {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | failed: %s |||||||||\n", r.ID, pctText(r.Ratio), r.Criterion, r.Quant, oneLine(r.Error))
			continue
		}
		id := r.ID
		if r.Reference {
			id = "**original**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", id, pctText(r.Ratio), r.Criterion, r.Quant,
			measure.Count(r.Params, ""), measure.Count(r.MACs, ""), kib(r.FileBytes), kib(r.PeakActivationBytes), accText(r.AccuracyPct),
			msText(r.RuntimeMs), msText(r.ORTMs), star(r.ParetoLatency), star(r.ParetoSize))
	}
	acc, lat, size := axes(rs)
	frontier := func(title string, cost []float64, on func(*Result) bool, costText func(*Result) string) {
		fmt.Fprintf(&b, "\n## Frontier: %s\n\n", title)
		onv := make([]bool, len(rs))
		for i, r := range rs {
			onv[i] = on(r)
		}
		for _, i := range FrontierOrder(acc, cost, onv) {
			fmt.Fprintf(&b, "- `%s`: %s, %s\n", rs[i].ID, accText(rs[i].AccuracyPct), costText(rs[i]))
		}
	}
	frontier("accuracy against "+latName+" latency", lat, func(r *Result) bool { return r.ParetoLatency },
		func(r *Result) string { return msText(r.Latency(useORT)) })
	frontier("accuracy against file size", size, func(r *Result) bool { return r.ParetoSize },
		func(r *Result) string { return kib(r.FileBytes) })
	fmt.Fprintf(&b, "\n## Plots\n\n![accuracy against latency](%s)\n\n![accuracy against size](%s)\n", LatencyPlotFile, SizePlotFile)
	if s.Seconds > 0 {
		fmt.Fprintf(&b, "\nThis run took %.1f s; points an earlier run of the same sweep built were reused.\n", s.Seconds)
	}
	io.WriteString(w, b.String())
}

// WriteAll writes sweep.csv, sweep.md and both plots into dir.
func WriteAll(dir string, rs []*Result, s Summary) ([]string, error) {
	var out []string
	var csvb bytes.Buffer
	if err := WriteCSV(&csvb, rs); err != nil {
		return nil, err
	}
	var md bytes.Buffer
	WriteMarkdown(&md, rs, s)
	for _, f := range []struct {
		name string
		b    []byte
	}{{CSVFile, csvb.Bytes()}, {MarkdownFile, md.Bytes()}} {
		p := filepath.Join(dir, f.name)
		if err := atomicfile.WriteFile(p, f.b); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	plots, err := WritePlots(dir, rs)
	if err != nil {
		return nil, err
	}
	return append(out, plots...), nil
}

func star(on bool) string {
	if on {
		return "★"
	}
	return ""
}

func pctText(ratio float64) string {
	if ratio == 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*ratio, 'g', -1, 64) + "%"
}

func accText(a *float64) string {
	if a == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f%%", *a)
}

func msText(ms float64) string {
	if ms == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f ms", ms)
}

func kib(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}

// oneLine keeps an error's first line and escapes table pipes.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", `\|`)
}
