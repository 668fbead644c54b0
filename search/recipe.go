package search

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pqvc/pqvc/backend"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/eval"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/passes/prune"
	"github.com/pqvc/pqvc/passes/quant"
)

// Config is one point of the search space: per-group pruning ratios,
// whether the quantize step runs, and the layers it leaves in float.
type Config struct {
	Ratios  map[string]float64 `json:"ratios"`            // group name → fraction removed
	Quant   bool               `json:"quant"`             // run the quantize step
	Exclude []string           `json:"exclude,omitempty"` // value names quantize leaves in float
}

// clone copies c so a candidate can be changed without touching c.
func (c Config) clone() Config {
	return Config{Ratios: maps.Clone(c.Ratios), Quant: c.Quant, Exclude: slices.Clone(c.Exclude)}
}

// RatioEntries spells c's ratios as prune's ratios option, sorted by group.
func (c Config) RatioEntries() []string {
	var out []string
	for _, g := range slices.Sorted(maps.Keys(c.Ratios)) {
		if r := c.Ratios[g]; r > 0 {
			out = append(out, fmt.Sprintf("%s=%s%%", g, trimFloat(100*r)))
		}
	}
	return out
}

func trimFloat(x float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", x), "0"), ".")
}

// template is the base recipe taken apart: the steps before and after
// the prune and quantize steps the search writes, and the options those
// steps start from.
type template struct {
	base      *dsl.Recipe
	pruneAt   int // index in base.Steps (after removal) where prune goes
	quantAt   int // index where quantize goes
	steps     []dsl.Step
	pruneOpts prune.Options
	quantOpts *quant.QuantizeOptions // nil: no quantization
	quantPass *passes.Pass
}

// newTemplate strips the base recipe's prune and quantize steps and keeps
// where they were. quantMode overrides the base's quantize step: "" keeps
// it, "none" drops it, int8-dynamic, int8-static or fp16 replace it.
func newTemplate(base *dsl.Recipe, quantMode string) (*template, error) {
	t := &template{base: base, pruneAt: -1, quantAt: -1, pruneOpts: prune.Defaults}
	t.quantPass = passes.Lookup("quantize")
	if t.quantPass == nil {
		return nil, fmt.Errorf("search: no quantize pass registered")
	}
	lastPrep := -1 // after canonicalize and importance, prune can run
	for _, st := range base.Steps {
		switch st.Pass.Name {
		case "prune":
			if t.pruneAt < 0 {
				t.pruneAt = len(t.steps)
				t.pruneOpts = *st.Options.(*prune.Options)
			}
			continue
		case "quantize":
			if t.quantAt < 0 {
				t.quantAt = len(t.steps)
				o := *st.Options.(*quant.QuantizeOptions)
				t.quantOpts = &o
			}
			continue
		case "canonicalize", "importance":
			lastPrep = len(t.steps)
		}
		t.steps = append(t.steps, st)
	}
	if t.pruneAt < 0 {
		t.pruneAt = lastPrep + 1
	}
	if t.quantAt < 0 {
		t.quantAt = len(t.steps)
	}
	switch quantMode {
	case "":
	case "none":
		t.quantOpts = nil
	case "int8-dynamic", "int8-static", "fp16":
		o := *passes.NewOptions(t.quantPass).(*quant.QuantizeOptions)
		if t.quantOpts != nil {
			o = *t.quantOpts // keep target, per_channel... of the base
		}
		o.Exclude = nil
		switch quantMode {
		case "int8-dynamic":
			o.Precision, o.Mode = "int8", "dynamic"
		case "int8-static":
			o.Precision, o.Mode = "int8", "static"
		default:
			o.Precision = "fp16"
		}
		t.quantOpts = &o
	default:
		return nil, fmt.Errorf("search: unknown quantization %q (want int8-dynamic, int8-static, fp16 or none)", quantMode)
	}
	if t.quantOpts != nil && len(t.quantOpts.Exclude) > 0 {
		// The search owns the exclude list; base patterns would hide
		// layers from its sensitivity analysis.
		t.quantOpts.Exclude = nil
	}
	return t, nil
}

// recipe returns the recipe text for c, with model and data at the given
// paths (as they should be written in the file).
func (t *template) recipe(c Config, model, calib, evalPath string) string {
	r := *t.base
	r.Model, r.Calib, r.Eval = model, calib, evalPath
	r.Steps = nil
	for i := 0; i <= len(t.steps); i++ {
		if i == t.pruneAt {
			if es := c.RatioEntries(); len(es) > 0 {
				o := t.pruneOpts
				o.Unit, o.Ratio, o.Scope, o.Ratios, o.Ignore = "all", 0, "local", es, nil
				r.Steps = append(r.Steps, dsl.Step{Pass: passes.Lookup("prune"), Options: &o})
			}
		}
		if i == t.quantAt && c.Quant && t.quantOpts != nil {
			o := *t.quantOpts
			o.Exclude = slices.Clone(c.Exclude)
			r.Steps = append(r.Steps, dsl.Step{Pass: t.quantPass, Options: &o})
		}
		if i < len(t.steps) {
			r.Steps = append(r.Steps, t.steps[i])
		}
	}
	return dsl.Format(&r)
}

// outcome is what running one configuration gave.
type outcome struct {
	Accuracy float64 `json:"accuracy"`
	Images   int     `json:"images"`
	MACs     int64   `json:"macs"`
	Params   int64   `json:"params"`
	Bytes    int64   `json:"bytes"`
	graph    *ir.Graph
}

// run parses the recipe text for c exactly as a recipe file would be
// parsed, runs its passes on a copy of the model and evaluates the result
// on the first limit images (0: all; negative: no evaluation). Going through the text means the
// search measures the very recipe it writes out.
func (s *searcher) run(c Config, limit int, verify bool) (*outcome, error) {
	src := s.tmpl.recipe(c, s.in.ModelPath, s.in.CalibPath, s.in.EvalPath)
	rec, err := dsl.Parse(filepath.Join(s.in.Dir, "candidate.pqv"), []byte(src), backend.Names())
	if err != nil {
		return nil, fmt.Errorf("search: candidate recipe does not parse: %w\n%s", err, src)
	}
	g := s.in.Model.Clone()
	if _, err := passes.Run(g, rec.Pipeline(), passes.Config{Verify: verify, Calib: s.in.Calib, Eval: s.in.Eval}); err != nil {
		return nil, fmt.Errorf("search: running candidate %s: %w", c.Describe(), err)
	}
	st := ir.ComputeStats(g)
	s.runs++
	o := &outcome{MACs: st.MACs, Params: st.Params, Bytes: st.Bytes, graph: g}
	if limit >= 0 {
		r, err := eval.Accuracy(g, s.in.Eval, eval.Options{Limit: limit})
		if err != nil {
			return nil, fmt.Errorf("search: evaluating candidate %s: %w", c.Describe(), err)
		}
		o.Accuracy, o.Images = r.Accuracy, r.N
	}
	return o, nil
}

// Describe is a short human form of c: its ratios, then whether it
// quantizes and which layers it leaves in float.
func (c Config) Describe() string {
	parts := c.RatioEntries()
	if len(parts) == 0 {
		parts = []string{"no pruning"}
	}
	if c.Quant {
		q := "quantized"
		if len(c.Exclude) > 0 {
			q += fmt.Sprintf(" except %s", strings.Join(c.Exclude, ", "))
		}
		parts = append(parts, q)
	}
	return strings.Join(parts, ", ")
}

// layer is one op quantize would convert: a MatMul, Gemm or Conv with a
// constant weight.
type layer struct {
	Name    string `json:"name"`
	MACs    int64  `json:"macs"`    // per image
	Weights int64  `json:"weights"` // elements of its weight
}

// quantizable lists the layers quantize would convert in g, in graph order.
func quantizable(g *ir.Graph) ([]layer, error) {
	order, err := g.Topo()
	if err != nil {
		return nil, err
	}
	var out []layer
	for _, v := range order {
		switch v.Op {
		case "MatMul", "Gemm", "Conv":
		default:
			continue
		}
		if w := v.Arg(1); w != nil && w.IsConst() && v.Name != "" {
			out = append(out, layer{Name: v.Name, MACs: ir.MACs(v), Weights: w.Type.Shape.NumElements().C})
		}
	}
	return out, nil
}
