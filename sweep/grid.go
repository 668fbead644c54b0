// Package sweep runs a grid of compression settings — pruning ratio ×
// importance criterion × quantization mode — from one base recipe, and
// reports every point's size, cost, accuracy and latency with the Pareto
// frontiers of accuracy against latency and against model size.
//
// A sweep has two phases. Points are built in parallel (passes, accuracy,
// ONNX file), then timed one at a time on one thread: timing points while
// others compile would measure the machine's load, not the model. Every
// finished phase of every point is appended to OUTDIR/sweep.jsonl, so a
// rerun of the same sweep skips what is done.
package sweep

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/passes"
)

// Quantization modes a sweep can apply.
const (
	QuantNone        = "none"
	QuantFP16        = "fp16"
	QuantInt8Dynamic = "int8-dynamic"
	QuantInt8Static  = "int8-static"
)

// QuantModes lists the modes in a stable order.
var QuantModes = []string{QuantNone, QuantFP16, QuantInt8Dynamic, QuantInt8Static}

// NoCriterion is the criterion of an unpruned point: with ratio 0 there is
// nothing to rank, so every criterion gives the same model.
const NoCriterion = "none"

// Point is one setting of the grid.
type Point struct {
	Ratio     float64 // fraction of units pruned, in [0, 1); 0 skips importance and prune
	Criterion string  // importance criterion; NoCriterion when Ratio is 0
	Quant     string  // one of QuantModes
}

// ID names the point in file names and tables: r9.375_taylor_int8-dynamic.
func (p Point) ID() string {
	return "r" + strconv.FormatFloat(100*p.Ratio, 'g', -1, 64) + "_" + p.Criterion + "_" + p.Quant
}

// IsBaseline reports whether the point neither prunes nor quantizes: the
// base recipe's other passes only.
func (p Point) IsBaseline() bool { return p.Ratio == 0 && p.Quant == QuantNone }

// Grid is the cross product a sweep runs.
type Grid struct {
	Ratios   []float64
	Criteria []string
	Quants   []string
}

// Points expands the grid in ratio, criterion, quant order. Ratio 0 appears
// once per quant mode (with NoCriterion), not once per criterion: the
// criterion does not matter when nothing is pruned.
func (g Grid) Points() []Point {
	var out []Point
	seen := map[Point]bool{}
	for _, r := range g.Ratios {
		crits := g.Criteria
		if r == 0 {
			crits = []string{NoCriterion}
		}
		for _, c := range crits {
			for _, q := range g.Quants {
				p := Point{Ratio: r, Criterion: c, Quant: q}
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// ParseRatios reads a comma-separated list of ratios, each a fraction
// (0.09375) or a percentage (9.375%), each in [0, 1).
func ParseRatios(s string) ([]float64, error) {
	var out []float64
	for _, f := range splitList(s) {
		num, pct := strings.CutSuffix(f, "%")
		x, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return nil, fmt.Errorf("ratio %q is not a number or percentage", f)
		}
		if pct {
			x /= 100
		}
		if x < 0 || x >= 1 {
			return nil, fmt.Errorf("ratio %s is outside [0, 100%%)", f)
		}
		out = append(out, x)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ratios given")
	}
	return out, nil
}

// ParseCriteria reads a comma-separated list of importance criteria,
// checked against the importance pass's options.
func ParseCriteria(s string) ([]string, error) {
	imp := passes.Lookup("importance")
	if imp == nil {
		return nil, fmt.Errorf("the importance pass is not registered")
	}
	out := splitList(s)
	for _, c := range out {
		if err := passes.SetOption(imp, passes.NewOptions(imp), "method", ident(c)); err != nil {
			return nil, fmt.Errorf("criterion %q: %w", c, err)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no criteria given")
	}
	return out, nil
}

// ParseQuants reads a comma-separated list of quantization modes.
func ParseQuants(s string) ([]string, error) {
	out := splitList(s)
	for _, q := range out {
		if !slicesContains(QuantModes, q) {
			return nil, fmt.Errorf("unknown quantization mode %q (want one of %s)", q, strings.Join(QuantModes, ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no quantization modes given")
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func ident(s string) passes.Literal { return passes.Literal{Kind: passes.LitIdent, Text: s} }

// Recipe derives p's recipe from base: the base recipe's steps with the
// importance criterion, the prune ratio and the quantize step replaced.
// Steps the base lacks are added where the ordering rules want them
// (canonicalize first, importance just before prune, calibrate just before
// quantize); ratio 0 drops importance and prune, quant none drops quantize,
// calibrate and fold_qdq. unit, when not "", replaces prune's unit. The
// result has no emits and no report: a sweep writes its own outputs.
func Recipe(base *dsl.Recipe, p Point, unit string) (*dsl.Recipe, error) {
	added := dsl.Position{File: base.File + " (sweep)"}
	var steps []dsl.Step
	find := func(name string) int {
		for i, s := range steps {
			if s.Pass.Name == name {
				return i
			}
		}
		return -1
	}
	insert := func(at int, st dsl.Step) {
		steps = append(steps[:at], append([]dsl.Step{st}, steps[at:]...)...)
	}
	newStep := func(name string) (dsl.Step, error) {
		ps := passes.Lookup(name)
		if ps == nil {
			return dsl.Step{}, fmt.Errorf("pass %s is not registered", name)
		}
		return dsl.Step{Pass: ps, Options: passes.NewOptions(ps), Pos: added}, nil
	}
	set := func(st dsl.Step, name string, lit passes.Literal) error {
		if err := passes.SetOption(st.Pass, st.Options, name, lit); err != nil {
			return fmt.Errorf("point %s: %s step at %s: %w", p.ID(), st.Pass.Name, st.Pos, err)
		}
		return nil
	}
	drop := map[string]bool{"quantize": true, "calibrate": p.Quant != QuantInt8Static,
		"fold_qdq": p.Quant == QuantNone || p.Quant == QuantFP16}
	if p.Ratio == 0 {
		drop["importance"], drop["prune"] = true, true
	}
	quantAt := -1 // where the base's first quantize step was
	var baseQuant *dsl.Step
	for _, st := range base.Steps {
		if st.Pass.Name == "quantize" && quantAt < 0 {
			quantAt, baseQuant = len(steps), &st
		}
		if drop[st.Pass.Name] {
			continue
		}
		st.Options = cloneOptions(st.Options) // the base recipe stays untouched
		steps = append(steps, st)
	}

	if p.Ratio > 0 {
		if find("canonicalize") < 0 {
			st, err := newStep("canonicalize")
			if err != nil {
				return nil, err
			}
			insert(0, st)
			if quantAt >= 0 {
				quantAt++
			}
		}
		pi := find("prune")
		if pi < 0 {
			st, err := newStep("prune")
			if err != nil {
				return nil, err
			}
			pi = max(find("importance"), find("canonicalize")) + 1
			insert(pi, st)
			if quantAt >= pi {
				quantAt++
			}
		}
		if find("importance") < 0 {
			st, err := newStep("importance")
			if err != nil {
				return nil, err
			}
			insert(pi, st)
			if quantAt >= pi {
				quantAt++
			}
		}
		for _, st := range steps {
			var err error
			switch st.Pass.Name {
			case "importance":
				err = set(st, "method", ident(p.Criterion))
			case "prune":
				err = set(st, "ratio", passes.Literal{Kind: passes.LitFloat, Text: strconv.FormatFloat(p.Ratio, 'g', -1, 64)})
				if err == nil && unit != "" {
					err = set(st, "unit", ident(unit))
				}
			}
			if err != nil {
				return nil, err
			}
		}
	}

	if p.Quant != QuantNone {
		q, err := newStep("quantize")
		if err != nil {
			return nil, err
		}
		if baseQuant != nil {
			q.Options, q.Pos = cloneOptions(baseQuant.Options), baseQuant.Pos // keep per_channel, exclude, ...
		}
		if p.Quant == QuantFP16 {
			err = set(q, "precision", ident("fp16"))
		} else {
			err = set(q, "precision", ident("int8"))
			if err == nil {
				err = set(q, "mode", ident(strings.TrimPrefix(p.Quant, "int8-")))
			}
		}
		if err != nil {
			return nil, err
		}
		at := quantAt
		if at < 0 || at > len(steps) {
			at = len(steps)
			if fi := find("fold_qdq"); fi >= 0 {
				at = fi
			}
		}
		if ci := find("calibrate"); ci >= at {
			at = ci + 1 // a base calibrate step after its quantize would break the order anyway
		}
		insert(at, q)
		if p.Quant == QuantInt8Static && find("fold_qdq") < 0 {
			// Without fold_qdq the QDQ weights stay float in the file;
			// lower=true gives the integer form ONNX Runtime runs fast
			// (fused into MatMulIntegerToFloat by a later fuse step).
			f, err := newStep("fold_qdq")
			if err != nil {
				return nil, err
			}
			if err := set(f, "lower", passes.Literal{Kind: passes.LitIdent, Text: "true"}); err != nil {
				return nil, err
			}
			insert(at+1, f)
		}
		if p.Quant == QuantInt8Static && find("calibrate") < 0 {
			c, err := newStep("calibrate")
			if err != nil {
				return nil, err
			}
			insert(at, c)
		}
	}

	out := *base
	out.Steps, out.Emits, out.Report = steps, nil, ""
	if err := passes.CheckOrder(out.Pipeline()); err != nil {
		return nil, fmt.Errorf("point %s: %w", p.ID(), err)
	}
	return &out, nil
}

// cloneOptions copies an options struct so that setting a field on the copy
// leaves the original alone. Slices are copied too.
func cloneOptions(opts any) any {
	if opts == nil {
		return nil
	}
	src := reflect.ValueOf(opts)
	if src.Kind() != reflect.Pointer || src.Elem().Kind() != reflect.Struct {
		return opts
	}
	dst := reflect.New(src.Elem().Type())
	dst.Elem().Set(src.Elem())
	for i := range dst.Elem().NumField() {
		if f := dst.Elem().Field(i); f.Kind() == reflect.Slice && !f.IsNil() && f.CanSet() {
			c := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
			reflect.Copy(c, f)
			f.Set(c)
		}
	}
	return dst.Interface()
}
