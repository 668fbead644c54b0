package importance

import (
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/grad"
)

// Saliency is what the gradient criteria need from a calibration run,
// without the gradients themselves (which are as large as the model): per
// weight and per axis, the sums over all other axes of each element's
// saliency. A Slice selects whole indices along one axis, so its score is
// a sum of these marginals.
type Saliency struct {
	Loss    float64 // mean loss over the calibration samples
	Samples int
	W       map[*ir.Value]*Marginals
}

// Marginals are one weight's per-axis saliency sums, indexed [axis][index].
// A criterion whose data was not collected has nil sums.
type Marginals struct {
	Taylor [][]float64 // Σ|w·g| (g: the mean gradient)
	Joint  [][]float64 // Σ w·g
	OBD    [][]float64 // Σ ½·w²·E[g²]
}

// FromGradients reduces gradients to saliency marginals: Taylor and Joint
// from r.Grads, OBD from r.SqGrads (a sum over r.Samples samples).
func FromGradients(r *grad.Result) *Saliency {
	s := &Saliency{Loss: r.Loss, Samples: r.Samples, W: map[*ir.Value]*Marginals{}}
	s.add(r)
	return s
}

// add reduces the gradients of r into s (weights already present get
// their missing criteria filled in).
func (s *Saliency) add(r *grad.Result) {
	m := func(w *ir.Value) *Marginals {
		if s.W[w] == nil {
			s.W[w] = &Marginals{}
		}
		return s.W[w]
	}
	for w, t := range r.Grads {
		wd, gd := w.Const.F32(), t.F32()
		mg := m(w)
		mg.Taylor = marginals(w.Const.Shape, func(i int) float64 { return math.Abs(float64(wd[i]) * float64(gd[i])) })
		mg.Joint = marginals(w.Const.Shape, func(i int) float64 { return float64(wd[i]) * float64(gd[i]) })
	}
	if r.Samples > 0 {
		inv := 1 / float64(r.Samples)
		for w, t := range r.SqGrads {
			wd, sq := w.Const.F32(), t.F32()
			m(w).OBD = marginals(w.Const.Shape, func(i int) float64 {
				x := float64(wd[i])
				return 0.5 * x * x * float64(sq[i]) * inv
			})
		}
	}
}

// marginals sums f over every element of a tensor of the given shape,
// once per axis, by the element's index along that axis.
func marginals(shape []int64, f func(i int) float64) [][]float64 {
	out := make([][]float64, len(shape))
	inner := make([]int, len(shape))
	n := 1
	for a := len(shape) - 1; a >= 0; a-- {
		out[a] = make([]float64, shape[a])
		inner[a] = n
		n *= int(shape[a])
	}
	for i := range n {
		x := f(i)
		for a := range out {
			out[a][(i/inner[a])%len(out[a])] += x
		}
	}
	return out
}

// sum adds the marginals of a slice's indices along its axis.
func (s *Saliency) sum(sl Slice, pick func(*Marginals) [][]float64, what string) (float64, error) {
	mg := s.W[sl.W]
	if mg == nil || pick(mg) == nil {
		return 0, fmt.Errorf("no %s for %s", what, sl.W)
	}
	m := pick(mg)
	ax := sl.Axis
	if ax < 0 {
		ax += len(m)
	}
	if ax < 0 || ax >= len(m) {
		return 0, fmt.Errorf("axis %d out of range for %v", sl.Axis, sl.W.Const.Shape)
	}
	var acc float64
	for _, idx := range sl.Index {
		if idx < 0 || idx >= len(m[ax]) {
			return 0, fmt.Errorf("index %d out of range for axis %d of %v", idx, ax, sl.W.Const.Shape)
		}
		acc += m[ax][idx]
	}
	return acc, nil
}

// has reports whether any weight has the sums pick selects.
func (s *Saliency) has(pick func(*Marginals) [][]float64) bool {
	if s == nil {
		return false
	}
	for _, m := range s.W {
		if pick(m) != nil {
			return true
		}
	}
	return false
}
