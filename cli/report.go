package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

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
	Outputs        []string     `json:"outputs"`
	Seconds        float64      `json:"seconds"` // whole run
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
		res := s.Result
		if _, err := json.Marshal(res); err != nil {
			res = fmt.Sprint(res) // a plugin's result that JSON cannot hold
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
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, withUnit(before, unit), withUnit(after, unit), pct(before, after))
	}
	row("parameters", r.ParamsBefore, r.ParamsAfter, "")
	row("MACs per image", r.MACsBefore, r.MACsAfter, "")
	row("weight bytes", r.BytesBefore, r.BytesAfter, "B")
	if r.AccuracyBefore != nil && r.AccuracyAfter != nil {
		fmt.Fprintf(&b, "| top-1 accuracy (%d images) | %.2f%% | %.2f%% | %+.2f pp |\n", r.EvalImages,
			100**r.AccuracyBefore, 100**r.AccuracyAfter, 100*(*r.AccuracyAfter-*r.AccuracyBefore))
	}
	b.WriteString("\n## Passes\n\n| # | pass | seconds | params | MACs | changed |\n|---:|---|---:|---:|---:|---|\n")
	for i, p := range r.Passes {
		name := p.Name
		if p.Implicit {
			name += " (required)"
		}
		fmt.Fprintf(&b, "| %d | %s | %.3f s | %d | %d | %v |\n", i+1, name, p.Seconds, p.Params, p.MACs, p.Changed)
	}
	b.WriteString("\n## Outputs\n\n")
	for _, o := range r.Outputs {
		fmt.Fprintf(&b, "- `%s`\n", o)
	}
	fmt.Fprintf(&b, "\nTotal time %.2f s.\n", r.Seconds)
	io.WriteString(w, b.String())
}

func withUnit(n int64, unit string) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.3f G%s", float64(n)/1e9, unit)
	case n >= 1e6:
		return fmt.Sprintf("%.3f M%s", float64(n)/1e6, unit)
	case n >= 1e3:
		return fmt.Sprintf("%.1f k%s", float64(n)/1e3, unit)
	}
	return fmt.Sprintf("%d %s", n, unit)
}

func pct(before, after int64) string {
	if before == 0 {
		return "–"
	}
	return fmt.Sprintf("%+.2f%%", 100*float64(after-before)/float64(before))
}
