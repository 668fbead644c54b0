// Package importance scores prunable units of a model's weights.
//
// A Unit is everything removed together when one structure is pruned (an
// attention head: rows of the q/k/v weights and biases plus columns of the
// output projection; an MLP channel: a column of fc1 and a row of fc2). A
// Group holds the units that compete with each other (the heads of one
// block). Scores turns a criterion into one number per unit; higher means
// more important, so pruning removes the lowest scores.
//
// The criteria follow Torch-Pruning (torch_pruning/pruner/importance.py) so
// results are comparable, with one deliberate difference: the Hessian (OBD)
// criterion averages squared per-sample gradients over every calibration
// sample, where Torch-Pruning's GroupHessianImportance keeps only the last.
package importance

import (
	"errors"
	"fmt"
	"math"
	"math/rand"

	"github.com/pqvc/pqvc/ir"
)

// Slice selects the elements of constant W whose coordinate along Axis is
// in Index (all other axes whole): e.g. rows 64..127 of a [192, 576] qkv
// weight for head 1 (Axis 0 in the exporter's storage order).
type Slice struct {
	W     *ir.Value
	Axis  int
	Index []int
}

// Unit is a set of slices pruned together.
type Unit struct {
	Name   string
	Slices []Slice
}

// Group is a set of units that compete (are ranked against each other).
type Group struct {
	Name  string
	Units []Unit
}

// Criterion chooses how units are scored.
//
// Method:
//   - "magnitude": Σ|w|^p over the slice (p = Norm, 1 or 2; 0 means 2). As
//     Torch-Pruning's MagnitudeImportance this is the p-th power of the Lp
//     norm (no root), so slices add up and the ranking within one slice
//     equals that of the Lp norm.
//   - "taylor": Σ|w·∂L/∂w| over the slice, per element, as Torch-Pruning's
//     TaylorImportance with multivariable=False (its default). ∂L/∂w is
//     grads.Grads, the mean gradient over the calibration set (Accumulate
//     averages batch gradients).
//   - "taylor_joint": |Σ w·∂L/∂w| over the slice: the first-order change of
//     the loss when the whole slice is zeroed (Torch-Pruning's
//     multivariable=True).
//   - "hessian": ½·Σ w²·E[(∂L_i/∂w)²] over the slice, the OBD saliency with
//     the empirical-Fisher diagonal E[g²] = SqGrads / Samples (every
//     sample counts).
//   - "random": uniform in [0, 1) from Seed, for baselines.
//
// Reduce combines a unit's slice scores: "mean" (default, Torch-Pruning's
// group_reduction), "sum" or "max". Normalize rescales the scores of one
// group: "mean" (default, Torch-Pruning's normalizer), "max", "sum" or
// "none"; it never changes the ranking inside a group, only how groups
// compare when pruning globally.
type Criterion struct {
	Method    string
	Norm      int
	Reduce    string
	Normalize string
	Seed      int64
}

// Scores returns scores[g][u] for unit u of group g. sal is needed by
// taylor (gradients) and hessian (squared per-sample gradients); see
// Measure and FromGradients.
func Scores(groups []Group, c Criterion, sal *Saliency) ([][]float64, error) {
	p := c.Norm
	if p == 0 {
		p = 2
	}
	switch c.Method {
	case "magnitude":
		if p != 1 && p != 2 {
			return nil, fmt.Errorf("importance: magnitude norm %d (want 1 or 2)", c.Norm)
		}
	case "taylor", "taylor_joint":
		if !sal.has(taylorSums) {
			return nil, fmt.Errorf("importance: %s needs gradients", c.Method)
		}
	case "hessian":
		if !sal.has(obdSums) {
			return nil, errors.New("importance: hessian needs per-sample squared gradients (grad.Options.SampleSquares)")
		}
	case "random":
	default:
		return nil, fmt.Errorf("importance: unknown method %q (want magnitude, taylor, taylor_joint, hessian or random)", c.Method)
	}
	rng := rand.New(rand.NewSource(c.Seed))
	out := make([][]float64, len(groups))
	for gi, g := range groups {
		scores := make([]float64, len(g.Units))
		for ui, u := range g.Units {
			if c.Method == "random" {
				scores[ui] = rng.Float64()
				continue
			}
			if len(u.Slices) == 0 {
				return nil, fmt.Errorf("importance: group %q unit %q has no slices", g.Name, u.Name)
			}
			per := make([]float64, len(u.Slices))
			for si, s := range u.Slices {
				v, err := sliceScore(s, c.Method, p, sal)
				if err != nil {
					return nil, fmt.Errorf("importance: group %q unit %q slice %d: %w", g.Name, u.Name, si, err)
				}
				per[si] = v
			}
			r, err := reduce(per, c.Reduce)
			if err != nil {
				return nil, err
			}
			scores[ui] = r
		}
		if err := normalize(scores, c.Normalize); err != nil {
			return nil, err
		}
		out[gi] = scores
	}
	return out, nil
}

func taylorSums(m *Marginals) [][]float64 { return m.Taylor }
func jointSums(m *Marginals) [][]float64  { return m.Joint }
func obdSums(m *Marginals) [][]float64    { return m.OBD }

// sliceScore applies the method to one slice: magnitude from the weight
// itself, the gradient criteria from the saliency marginals.
func sliceScore(s Slice, method string, p int, sal *Saliency) (float64, error) {
	if s.W == nil || !s.W.IsConst() || s.W.Const.DType != ir.F32 {
		return 0, fmt.Errorf("%s is not an f32 constant", s.W)
	}
	switch method {
	case "taylor":
		return sal.sum(s, taylorSums, "gradient")
	case "taylor_joint":
		v, err := sal.sum(s, jointSums, "gradient")
		return math.Abs(v), err
	case "hessian":
		return sal.sum(s, obdSums, "squared gradient")
	}
	w := s.W.Const.F32()
	var acc float64
	err := eachElement(s, func(i int) {
		x := float64(w[i])
		if p == 1 {
			acc += math.Abs(x)
		} else {
			acc += x * x
		}
	})
	return acc, err
}

// eachElement calls fn with the flat index of every element of the slice.
func eachElement(s Slice, fn func(i int)) error {
	shape := s.W.Const.Shape
	ax := s.Axis
	if ax < 0 {
		ax += len(shape)
	}
	if ax < 0 || ax >= len(shape) {
		return fmt.Errorf("axis %d out of range for %v", s.Axis, shape)
	}
	outer, n, inner := 1, int(shape[ax]), 1
	for _, d := range shape[:ax] {
		outer *= int(d)
	}
	for _, d := range shape[ax+1:] {
		inner *= int(d)
	}
	for _, idx := range s.Index {
		if idx < 0 || idx >= n {
			return fmt.Errorf("index %d out of range for axis %d of %v", idx, ax, shape)
		}
	}
	for o := range outer {
		for _, idx := range s.Index {
			base := (o*n + idx) * inner
			for k := range inner {
				fn(base + k)
			}
		}
	}
	return nil
}

func reduce(xs []float64, how string) (float64, error) {
	var r float64
	switch how {
	case "", "mean", "sum":
		for _, x := range xs {
			r += x
		}
		if how != "sum" {
			r /= float64(len(xs))
		}
	case "max":
		r = math.Inf(-1)
		for _, x := range xs {
			r = max(r, x)
		}
	default:
		return 0, fmt.Errorf("importance: unknown reduce %q (want mean, sum or max)", how)
	}
	return r, nil
}

// normalize divides a group's scores by their mean, max or sum; a zero
// divisor (all scores zero) leaves them unchanged rather than making NaNs.
func normalize(xs []float64, how string) error {
	var d float64
	switch how {
	case "none":
		return nil
	case "", "mean", "sum":
		for _, x := range xs {
			d += x
		}
		if how != "sum" && len(xs) > 0 {
			d /= float64(len(xs))
		}
	case "max":
		d = math.Inf(-1)
		for _, x := range xs {
			d = max(d, x)
		}
	default:
		return fmt.Errorf("importance: unknown normalize %q (want none, mean, max or sum)", how)
	}
	if d == 0 || math.IsInf(d, 0) || math.IsNaN(d) {
		return nil
	}
	for i := range xs {
		xs[i] /= d
	}
	return nil
}
