// Package importance registers the `importance` analysis: it measures how
// much each prunable unit matters, with magnitude, Taylor, Hessian (OBD) or
// random criteria, from calibration data run forward and backward on pqvc's
// own runtime. The prune pass ranks units with its result when a recipe ran
// it (and by weight magnitude otherwise).
//
// Requires: calibration data for taylor and hessian. Establishes nothing in
// the graph (an analysis); its result is valid until a transform changes the
// graph.
package importance

import (
	"encoding/json"
	"errors"

	imp "github.com/pqvc/pqvc/importance"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/runtime/grad"
)

// Options of the importance analysis.
type Options struct {
	Method    string `pqv:"method,positional" enum:"magnitude|taylor|hessian|random" doc:"criterion"`
	Norm      int    `pqv:"norm" min:"1" max:"2" doc:"magnitude: L1 or L2"`
	Batches   int    `pqv:"batches" min:"1" doc:"calibration batches for taylor and hessian"`
	BatchSize int    `pqv:"batch_size" min:"1" doc:"images per batch"`
	Loss      string `pqv:"loss" enum:"auto|ce|pseudo" doc:"auto: cross-entropy with labels, else the model's own top-1 as pseudo-labels"`
	Reduce    string `pqv:"reduce" enum:"mean|sum|max" doc:"how a unit's element scores combine"`
	Normalize string `pqv:"normalize" enum:"mean|max|sum|none" doc:"per-group normalisation (global ranking compares normalised scores)"`
	Seed      int    `pqv:"seed" doc:"random: the seed"`
}

// Pass is the importance analysis.
var Pass = &passes.Pass{
	Name: "importance",
	Doc: `importance: score prunable units (magnitude, taylor, hessian, random)

magnitude is the Lp norm of a unit's weights. taylor is Σ|w·∂L/∂w|,
accumulated over calibration batches (Torch-Pruning's TaylorImportance).
hessian is the Optimal-Brain-Damage saliency ½·Σ w²·E[g²], with E[g²]
accumulated over per-sample gradients of every calibration image (Torch-
Pruning's GroupHessianImportance keeps only the last sample). Gradients come
from pqvc's own reverse-mode runtime. Without labels the loss is
cross-entropy against the model's own predictions: the KL divergence to the
unpruned model has zero gradient at the unpruned model itself.`,
	Analysis: true,
	Options:  &Options{Method: "taylor", Norm: 2, Batches: 8, BatchSize: 32, Loss: "auto", Reduce: "mean", Normalize: "mean"},
	Run:      run,
}

func init() { passes.Register(Pass) }

// Result is what the analysis hands to prune.
type Result struct {
	Criterion imp.Criterion
	Grads     *grad.Result // nil for magnitude and random
	Samples   int
	LossKind  string
}

// Score ranks the units of each group (higher matters more).
func (r *Result) Score(groups []imp.Group) ([][]float64, error) {
	return imp.Scores(groups, r.Criterion, r.Grads)
}

// MarshalJSON summarises the result for report.json (gradients stay out).
func (r *Result) MarshalJSON() ([]byte, error) {
	m := map[string]any{"method": r.Criterion.Method, "samples": r.Samples}
	if r.Grads != nil {
		m["loss"] = r.Grads.Loss
		m["loss_kind"] = r.LossKind
	}
	return json.Marshal(m)
}

func run(ctx *passes.Context, g *ir.Graph) (any, error) {
	o := ctx.Options.(*Options)
	res := &Result{Criterion: imp.Criterion{Method: o.Method, Norm: o.Norm, Reduce: o.Reduce, Normalize: o.Normalize, Seed: int64(o.Seed)}}
	if o.Method == "magnitude" || o.Method == "random" {
		return res, nil
	}
	if ctx.Calib == nil {
		return nil, errors.New("importance " + o.Method + " needs calibration data (calibrate_with or --calib)")
	}
	kind := o.Loss
	if kind == "auto" {
		kind = "ce"
		if ctx.Calib.Y == nil {
			kind = "pseudo"
		}
	}
	if kind == "ce" && ctx.Calib.Y == nil {
		return nil, errors.New("importance: loss=ce needs labels (member y) in the calibration data")
	}
	acc, err := imp.Accumulate(g, ctx.Calib, o.BatchSize, o.Batches, imp.LossKind{Kind: kind, SampleSquares: o.Method == "hessian"})
	if err != nil {
		return nil, err
	}
	res.Grads, res.Samples, res.LossKind = acc, acc.Samples, kind
	ctx.Logf("importance %s: %d calibration images, loss %.4f (%s)", o.Method, acc.Samples, acc.Loss, kind)
	return res, nil
}
