// Package search finds, within an accuracy budget, the per-block pruning
// ratios and the layers to keep in float that make a model fastest (or
// smallest), and writes the answer as an ordinary recipe.
//
// The search works on recipe text: every candidate is rendered from the
// base recipe (its prune and quantize steps replaced), parsed and run
// exactly as `pqvc found.pqv` would run it, so the accuracy it reports for
// the winner is the accuracy the emitted recipe reproduces.
//
// Method: (1) sensitivity — each prunable group (a block's heads, head
// dims or MLP channels) is pruned alone at a few ratios and the accuracy
// drop measured on a subset of the evaluation images; (2) selection —
// greedy by cost saved per accuracy lost, with an additive prediction of
// the drop, then verified on the full evaluation set and backed off while
// over budget; (3) quantization — the pruned model is quantized and, while
// over budget, the layer whose float version recovers the most of the int8
// logit error per unit of cost is excluded, each step verified on the full
// set.
//
// Per-block ratios are one prune step, `prune all ratios=[...]`, not one
// step per group: the importance analysis is invalidated by the first
// prune (the runner drops analysis results when the graph changes) and the
// ordering rules forbid running importance after a prune, so later steps
// would silently rank by magnitude instead.
package search

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/eval"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/measure"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/passes/prune"
)

// Inputs are the base recipe and what it names, loaded. Paths are written
// into the found recipe as given, so make them absolute (or relative to
// the folder the recipe will be written to).
type Inputs struct {
	Base                           *dsl.Recipe
	Model                          *ir.Graph
	Calib, Eval                    *data.Dataset
	ModelPath, CalibPath, EvalPath string
	Dir                            string // where found.pqv goes (for messages)
}

// Options configure a search.
type Options struct {
	MaxDrop   float64   // allowed top-1 accuracy drop, absolute (0.005 = 0.5 points)
	Objective string    // "latency" (MACs, calibrated by runtime timings) or "size" (bytes)
	Quant     string    // "" keeps the base's quantize step; none, int8-dynamic, int8-static, fp16
	Ratios    []float64 // ratios tried per group (default 12.5%, 25%, 50%)
	// SensitivityImages is how many evaluation images the sensitivity
	// runs use (0: 500); selection is always checked on all of them.
	SensitivityImages int
	Kinds             []string // unit kinds searched (default heads, head_dim, mlp)
	Timing            bool     // time models in the runtime (threads 1)
	Logf              func(format string, args ...any)
}

// Sensitivity is the effect of pruning one group alone.
type Sensitivity struct {
	Group   string  `json:"group"`
	Ratio   float64 `json:"ratio"`
	Removed int     `json:"removed"` // units removed
	Units   int     `json:"units"`   // units in the group
	Drop    float64 `json:"drop"`    // accuracy lost on the subset
	Saved   int64   `json:"saved"`   // MACs (latency) or parameters (size) saved
}

// efficiency is cost saved per accuracy lost; a free choice (no drop)
// counts as losing a quarter of one image, so larger savings still rank
// first among free choices.
func (s Sensitivity) efficiency(images int) float64 {
	return float64(s.Saved) / math.Max(s.Drop, 0.25/float64(images))
}

// LayerSensitivity is what leaving one layer in float recovers when every
// other layer is quantized. Layers are ranked by Recovered per Cost.
type LayerSensitivity struct {
	layer
	Gain       float64 `json:"gain"`        // accuracy recovered on the subset
	LogitError float64 `json:"logit_error"` // mean squared logit distance to the float model
	Recovered  float64 `json:"recovered"`   // fraction of the all-int8 logit error removed
	Cost       int64   `json:"cost"`        // MACs (latency) or weight elements (size) left in float
}

// Figures are a model's cost.
type Figures struct {
	Accuracy  float64 `json:"accuracy"`
	MACs      int64   `json:"macs"`
	Params    int64   `json:"params"`
	Bytes     int64   `json:"bytes"`
	LatencyMs float64 `json:"latency_ms,omitempty"` // runtime, 1 thread, median
}

// Result is what a search found and how.
type Result struct {
	MaxDrop      float64            `json:"max_drop"`
	Objective    string             `json:"objective"`
	CostModel    string             `json:"cost_model"`
	EvalImages   int                `json:"eval_images"`
	SubsetImages int                `json:"subset_images"`
	SubsetBase   float64            `json:"subset_base_accuracy"`
	Before       Figures            `json:"before"` // the model as loaded
	After        Figures            `json:"after"`  // the found recipe's result
	Prune        []Sensitivity      `json:"prune_sensitivity"`
	QuantAllDrop *float64           `json:"quant_all_drop,omitempty"` // quantizing the unpruned model
	PruneBudget  float64            `json:"prune_budget"`
	Predicted    float64            `json:"predicted_prune_drop"`  // sum of the chosen groups' single drops
	PrunedFloat  float64            `json:"pruned_float_accuracy"` // full set
	Layers       []LayerSensitivity `json:"quant_sensitivity,omitempty"`
	// LogitErrorAll is the all-int8 model's mean squared logit distance
	// to the float pruned model on the subset.
	LogitErrorAll float64  `json:"logit_error_all,omitempty"`
	Chosen        Config   `json:"chosen"`
	Log           []string `json:"log"` // decisions, in order
	Recipe        string   `json:"recipe"`
	Runs          int      `json:"runs"`
	Seconds       float64  `json:"seconds"`
	// ORTBeforeMs and ORTAfterMs are ONNX Runtime timings (1 thread),
	// filled in by a caller that has ONNX Runtime.
	ORTBeforeMs float64 `json:"ort_before_ms,omitempty"`
	ORTAfterMs  float64 `json:"ort_after_ms,omitempty"`
	// Reproduced is set by whoever re-runs the found recipe.
	Reproduced *float64 `json:"reproduced_accuracy,omitempty"`

	graph *ir.Graph
}

// Graph is the model the found recipe produces.
func (r *Result) Graph() *ir.Graph { return r.graph }

type searcher struct {
	in     Inputs
	o      Options
	tmpl   *template
	runs   int
	res    *Result
	subset int
}

func (s *searcher) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.res.Log = append(s.res.Log, msg)
	if s.o.Logf != nil {
		s.o.Logf("search: %s", msg)
	}
}

// Run searches and returns the result; the found recipe's text is
// Result.Recipe, with the paths of in.
func Run(in Inputs, o Options) (*Result, error) {
	start := time.Now()
	if in.Eval == nil || in.Eval.Y == nil {
		return nil, fmt.Errorf("search: needs labelled evaluation data (evaluate_with or --eval)")
	}
	if o.MaxDrop < 0 || math.IsNaN(o.MaxDrop) {
		return nil, fmt.Errorf("search: max drop must be ≥ 0, have %g", o.MaxDrop)
	}
	switch o.Objective {
	case "":
		o.Objective = "latency"
	case "latency", "size":
	default:
		return nil, fmt.Errorf("search: objective must be latency or size, not %q", o.Objective)
	}
	if len(o.Ratios) == 0 {
		o.Ratios = []float64{0.125, 0.25, 0.5}
	}
	if len(o.Kinds) == 0 {
		o.Kinds = []string{prune.KindHeads, prune.KindHeadDim, prune.KindMLP}
	}
	tmpl, err := newTemplate(in.Base, o.Quant)
	if err != nil {
		return nil, err
	}
	s := &searcher{in: in, o: o, tmpl: tmpl, res: &Result{MaxDrop: o.MaxDrop, Objective: o.Objective}}
	s.subset = o.SensitivityImages
	if s.subset <= 0 {
		s.subset = 500
	}
	s.subset = min(s.subset, in.Eval.Len())
	s.res.EvalImages, s.res.SubsetImages = in.Eval.Len(), s.subset
	if err := s.search(); err != nil {
		return nil, err
	}
	s.res.Runs = s.runs
	s.res.Seconds = time.Since(start).Seconds()
	return s.res, nil
}

func (s *searcher) search() error {
	res := s.res
	base, err := eval.Accuracy(s.in.Model, s.in.Eval, eval.Options{})
	if err != nil {
		return fmt.Errorf("search: evaluating the model: %w", err)
	}
	st := ir.ComputeStats(s.in.Model)
	res.Before = Figures{Accuracy: base.Accuracy, MACs: st.MACs, Params: st.Params, Bytes: st.Bytes}
	floor := base.Accuracy - s.o.MaxDrop - 1e-12 // lowest accuracy within budget
	s.logf("model: %.2f%% on %d images; budget: at least %.2f%%", 100*base.Accuracy, base.N, 100*(base.Accuracy-s.o.MaxDrop))

	// The base pipeline with no pruning and no quantization: the reference
	// the sensitivity drops are taken against.
	ref, err := s.run(Config{}, s.subset, false)
	if err != nil {
		return err
	}
	res.SubsetBase = ref.Accuracy
	if s.o.Timing {
		if res.Before.LatencyMs, err = s.latency(s.in.Model); err != nil {
			return err
		}
	}
	res.CostModel = "size: parameters removed (sensitivity), bytes of the result (reported)"
	if s.o.Objective == "latency" {
		res.CostModel = "latency: MACs removed (sensitivity); the result timed in pqvc's runtime, 1 thread, median of 10 runs"
		if s.o.Timing {
			lat, err := s.latency(ref.graph)
			if err != nil {
				return err
			}
			res.CostModel += fmt.Sprintf("; calibration: the unpruned float pipeline runs %.3f ms for %d MACs (%.3f ns/MAC)", lat, ref.MACs, 1e6*lat/float64(ref.MACs))
		}
	}

	if err := s.pruneSensitivity(ref); err != nil {
		return err
	}
	// Quantization spends part of the budget: measure how much on the
	// unpruned model and leave the rest to pruning (at least half of it:
	// excluding layers from quantization can win accuracy back).
	res.PruneBudget = s.o.MaxDrop
	if s.tmpl.quantOpts != nil {
		q, err := s.run(Config{Quant: true}, 0, false)
		if err != nil {
			return err
		}
		d := base.Accuracy - q.Accuracy
		res.QuantAllDrop = &d
		res.PruneBudget = math.Max(s.o.MaxDrop-math.Max(d, 0), s.o.MaxDrop/2)
		s.logf("quantizing the unpruned model costs %.2f points (full set); pruning gets %.2f of the %.2f-point budget", 100*d, 100*res.PruneBudget, 100*s.o.MaxDrop)
	}
	cfg, pruned, err := s.selectPruning(base.Accuracy, ref)
	if err != nil {
		return err
	}
	res.PrunedFloat = pruned.Accuracy
	final := pruned
	if s.tmpl.quantOpts != nil {
		cfg.Quant = true
		if final, err = s.selectExclusions(cfg, floor); err != nil {
			return err
		}
		cfg = final.cfg
	}
	if final.Accuracy < floor {
		return fmt.Errorf("search: even with no pruning the base recipe's pipeline gives %.2f%%, below the budget's %.2f%%", 100*final.Accuracy, 100*(base.Accuracy-s.o.MaxDrop))
	}
	// The final figures come from a verified run of the exact recipe.
	out, err := s.run(cfg, 0, true)
	if err != nil {
		return err
	}
	if out.Accuracy != final.Accuracy {
		return fmt.Errorf("search: the chosen recipe is not deterministic: %.6f then %.6f", final.Accuracy, out.Accuracy)
	}
	res.Chosen = cfg
	res.graph = out.graph
	res.After = Figures{Accuracy: out.Accuracy, MACs: out.MACs, Params: out.Params, Bytes: out.Bytes}
	if s.o.Timing {
		if res.After.LatencyMs, err = s.latency(out.graph); err != nil {
			return err
		}
	}
	res.Recipe = s.tmpl.recipe(cfg, s.in.ModelPath, s.in.CalibPath, s.in.EvalPath)
	s.logf("chose %s: %.2f%% (drop %.2f points, budget %.2f)", cfg.Describe(), 100*out.Accuracy, 100*(base.Accuracy-out.Accuracy), 100*s.o.MaxDrop)
	return nil
}

func (s *searcher) latency(g *ir.Graph) (float64, error) {
	l, err := measure.Runtime(g, measure.Options{Threads: 1, Runs: 10, Warmup: 3})
	if err != nil {
		return 0, fmt.Errorf("search: timing: %w", err)
	}
	return l.Ms(), nil
}

// groups lists the prunable groups of the canonical model by kind.
func (s *searcher) groups() ([]prune.Group, error) {
	g := s.in.Model.Clone()
	canon := passes.Lookup("canonicalize")
	if canon == nil {
		return nil, fmt.Errorf("search: no canonicalize pass registered")
	}
	pl := &passes.Pipeline{Steps: []passes.Step{{Pass: canon, Options: passes.NewOptions(canon), Pos: "search"}}}
	if _, err := passes.Run(g, pl, passes.Config{}); err != nil {
		return nil, fmt.Errorf("search: canonicalizing the model: %w", err)
	}
	st, err := prune.Analyze(g)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	var out []prune.Group
	for _, k := range s.o.Kinds {
		gs, err := st.Groups(k)
		if err != nil {
			return nil, fmt.Errorf("search: %s groups: %w", k, err)
		}
		out = append(out, gs...)
	}
	return out, nil
}

// pruneSensitivity prunes each group alone at each ratio.
func (s *searcher) pruneSensitivity(ref *outcome) error {
	groups, err := s.groups()
	if err != nil {
		return err
	}
	for _, grp := range groups {
		n := len(grp.Units)
		for _, r := range s.o.Ratios {
			k := int(math.Floor(r*float64(n) + 1e-9))
			if k == 0 || k >= n {
				continue // removes nothing, or everything (prune refuses)
			}
			c := Config{Ratios: map[string]float64{grp.Name: r}}
			o, err := s.run(c, s.subset, false)
			if err != nil {
				return err
			}
			saved := ref.MACs - o.MACs
			if s.o.Objective == "size" {
				saved = ref.Params - o.Params
			}
			sen := Sensitivity{Group: grp.Name, Ratio: r, Removed: k, Units: n, Drop: ref.Accuracy - o.Accuracy, Saved: saved}
			s.res.Prune = append(s.res.Prune, sen)
			if s.o.Logf != nil {
				s.o.Logf("search: %s at %s%%: drop %.2f points, saves %d", grp.Name, trimFloat(100*r), 100*sen.Drop, saved)
			}
		}
	}
	return nil
}

// verified is a configuration with its full-set outcome.
type verified struct {
	*outcome
	cfg Config
}

// selectPruning adds choices greedily by efficiency (cost saved per
// accuracy lost alone), keeping each only if the combination stays within
// the prune budget on the subset — single-group drops do not add up (two
// harmless cuts can be harmful together), so every addition is measured.
// The result is then checked on the full set and the least efficient
// choice backed off until the real drop fits.
func (s *searcher) selectPruning(baseAcc float64, ref *outcome) (Config, *verified, error) {
	res := s.res
	cands := append([]Sensitivity(nil), res.Prune...)
	sort.SliceStable(cands, func(a, b int) bool {
		ea, eb := cands[a].efficiency(s.subset), cands[b].efficiency(s.subset)
		if ea != eb {
			return ea > eb
		}
		return cands[a].Saved > cands[b].Saved
	})
	chosen := map[string]Sensitivity{}
	cfg := Config{Ratios: map[string]float64{}}
	pred := 0.0
	for _, c := range cands {
		cur, had := chosen[c.Group]
		if c.Saved <= 0 || had && cur.Ratio >= c.Ratio || c.Drop > res.PruneBudget {
			continue
		}
		try := cfg.clone()
		try.Ratios[c.Group] = c.Ratio
		o, err := s.run(try, s.subset, false)
		if err != nil {
			return Config{}, nil, err
		}
		drop := ref.Accuracy - o.Accuracy
		if drop > res.PruneBudget+1e-12 {
			s.logf("rejected %s=%s%%: together with the choices so far the subset drop would be %.2f points", c.Group, trimFloat(100*c.Ratio), 100*drop)
			continue
		}
		pred += math.Max(c.Drop, 0)
		if had {
			pred -= math.Max(cur.Drop, 0)
		}
		chosen[c.Group], cfg = c, try
		s.logf("added %s=%s%% (alone: drop %.2f, saves %d): combined subset drop %.2f points", c.Group, trimFloat(100*c.Ratio), 100*c.Drop, c.Saved, 100*drop)
	}
	res.Predicted = pred
	s.logf("greedy pruning: %s; sum of single-group drops %.2f points (budget %.2f)", cfg.Describe(), 100*pred, 100*res.PruneBudget)
	for {
		o, err := s.run(cfg, 0, false)
		if err != nil {
			return Config{}, nil, err
		}
		drop := baseAcc - o.Accuracy
		if drop <= res.PruneBudget+1e-12 || len(chosen) == 0 {
			s.logf("pruning verified on %d images: %.2f%% (drop %.2f points)", o.Images, 100*o.Accuracy, 100*drop)
			return cfg, &verified{o, cfg}, nil
		}
		// Back off: the least efficient choice drops to the next lower
		// ratio measured for its group, or goes.
		worst := ""
		for g, c := range chosen {
			if worst == "" || c.efficiency(s.subset) < chosen[worst].efficiency(s.subset) ||
				c.efficiency(s.subset) == chosen[worst].efficiency(s.subset) && g < worst {
				worst = g
			}
		}
		w := chosen[worst]
		delete(chosen, worst)
		delete(cfg.Ratios, worst)
		for _, c := range res.Prune {
			if c.Group == worst && c.Ratio < w.Ratio && c.Saved > 0 && (chosen[worst].Ratio == 0 || c.Ratio > chosen[worst].Ratio) {
				chosen[worst] = c
				cfg.Ratios[worst] = c.Ratio
			}
		}
		s.logf("drop %.2f points is over %.2f: backing off %s from %s%% to %s%%", 100*drop, 100*res.PruneBudget, worst, trimFloat(100*w.Ratio), trimFloat(100*cfg.Ratios[worst]))
	}
}

// selectExclusions quantizes the pruned model and, while it is under the
// floor, leaves in float the layer that recovers the most accuracy per
// unit of cost, re-checking on the full set after each.
func (s *searcher) selectExclusions(cfg Config, floor float64) (*verified, error) {
	o, err := s.run(cfg, 0, false)
	if err != nil {
		return nil, err
	}
	if o.Accuracy >= floor {
		s.logf("quantizing every layer of the pruned model: %.2f%% on the full set, within budget, so no layer needs to stay in float (per-layer sensitivity not measured)", 100*o.Accuracy)
		return &verified{o, cfg}, nil
	}
	s.logf("quantizing every layer of the pruned model: %.2f%% on the full set, under the budget's %.2f%%: measuring which layers to keep in float", 100*o.Accuracy, 100*floor)
	// Per-layer sensitivity on the subset: every layer quantized but one,
	// scored by how much closer its logits come to the float model's.
	floatCfg := cfg.clone()
	floatCfg.Quant = false
	fl, err := s.run(floatCfg, -1, false)
	if err != nil {
		return nil, err
	}
	ref, k, err := logits(fl.graph, s.in.Eval, s.subset)
	if err != nil {
		return nil, err
	}
	layers, err := quantizable(fl.graph)
	if err != nil {
		return nil, err
	}
	all, err := s.run(cfg, -1, false)
	if err != nil {
		return nil, err
	}
	allLogits, _, err := logits(all.graph, s.in.Eval, s.subset)
	if err != nil {
		return nil, err
	}
	allAcc := top1(allLogits, k, s.in.Eval.Y)
	errAll := logitError(allLogits, ref, k)
	s.res.LogitErrorAll = errAll
	for _, l := range layers {
		c := cfg.clone()
		c.Exclude = []string{l.Name}
		r, err := s.run(c, -1, false)
		if err != nil {
			return nil, err
		}
		lg, _, err := logits(r.graph, s.in.Eval, s.subset)
		if err != nil {
			return nil, err
		}
		ls := LayerSensitivity{layer: l, Gain: top1(lg, k, s.in.Eval.Y) - allAcc, LogitError: logitError(lg, ref, k), Cost: l.MACs}
		if errAll > 0 {
			ls.Recovered = (errAll - ls.LogitError) / errAll
		}
		if s.o.Objective == "size" {
			ls.Cost = l.Weights
		}
		s.res.Layers = append(s.res.Layers, ls)
	}
	order := append([]LayerSensitivity(nil), s.res.Layers...)
	sort.SliceStable(order, func(a, b int) bool {
		ea := order[a].Recovered / float64(max(order[a].Cost, 1))
		eb := order[b].Recovered / float64(max(order[b].Cost, 1))
		return ea > eb
	})
	for _, l := range order {
		cfg.Exclude = append(cfg.Exclude, l.Name)
		o, err := s.run(cfg, 0, false)
		if err != nil {
			return nil, err
		}
		s.logf("keeping %s in float (alone it removes %.1f%% of the int8 logit error, %.2f points on the subset): %.2f%% on the full set", l.Name, 100*l.Recovered, 100*l.Gain, 100*o.Accuracy)
		if o.Accuracy >= floor {
			return &verified{o, cfg}, nil
		}
	}
	// Every layer in float and still under: quantization is not worth it
	// here, but the pruned float model is within budget by construction.
	cfg.Exclude, cfg.Quant = nil, false
	s.logf("no set of float layers brings the quantized model within budget: leaving it unquantized")
	o, err = s.run(cfg, 0, false)
	if err != nil {
		return nil, err
	}
	return &verified{o, cfg}, nil
}
