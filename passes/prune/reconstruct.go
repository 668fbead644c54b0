package prune

import (
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// Reconstruct re-fits the weight of each consumer projection (an attention
// output projection or an MLP's fc2, given as its MatMul or Gemm in pruned)
// so that, on calibration images x, it reproduces what the same op computed
// in orig, the unpruned graph pruned was cloned from (values are matched by
// ID, which Clone keeps). Consumers are fitted in order, each on inputs
// computed with the earlier ones already re-fitted, so errors do not pile
// up. The fit is ridge-regularised least squares, W = (XᵀX + λI)⁻¹XᵀT with
// λ = ridge·trace(XᵀX)/K, solved by Cholesky. It returns the relative
// output error of each consumer before and after its fit.
func Reconstruct(orig, pruned *ir.Graph, consumers []*ir.Value, x *ir.Tensor, ridge float64) ([][2]float64, error) {
	byID := map[int]*ir.Value{}
	for _, v := range orig.Values() {
		byID[v.ID] = v
	}
	var origOps []*ir.Value
	for _, c := range consumers {
		o := byID[c.ID]
		if o == nil || o.Op != c.Op {
			return nil, fmt.Errorf("reconstruct: %s has no counterpart in the unpruned graph", c)
		}
		origOps = append(origOps, o)
	}
	targets, err := capture(orig, origOps, x)
	if err != nil {
		return nil, fmt.Errorf("reconstruct: unpruned model: %w", err)
	}
	var errs [][2]float64
	for i, c := range consumers {
		got, err := capture(pruned, []*ir.Value{c.Arg(0), c}, x)
		if err != nil {
			return nil, fmt.Errorf("reconstruct: %w", err)
		}
		in, out, want := got[0], got[1], targets[i]
		w := c.Arg(1)
		trans := c.Op == "Gemm" && c.Int("transB") != 0
		k := int(in.Shape[len(in.Shape)-1])
		n := int(want.Shape[len(want.Shape)-1])
		// Subtract what the weight does not produce (a Gemm's bias), so the
		// target is X·W alone.
		before := relErr(out.F32(), want.F32())
		t := make([]float64, len(want.F32()))
		for j, y := range want.F32() {
			t[j] = float64(y) - float64(out.F32()[j])
		}
		xs := in.F32()
		rows := len(xs) / k
		// T currently holds want − out; add back X·W to get the target.
		wd := w.Const.F32()
		for r := range rows {
			for a := range k {
				xv := float64(xs[r*k+a])
				if xv == 0 {
					continue
				}
				for b := range n {
					var wv float32
					if trans {
						wv = wd[b*k+a]
					} else {
						wv = wd[a*n+b]
					}
					t[r*n+b] += xv * float64(wv)
				}
			}
		}
		sol, err := ridgeSolve(xs, rows, k, t, n, ridge)
		if err != nil {
			return nil, fmt.Errorf("reconstruct %s: %w", c, err)
		}
		data := make([]float32, k*n)
		for a := range k {
			for b := range n {
				if trans {
					data[b*k+a] = float32(sol[a*n+b])
				} else {
					data[a*n+b] = float32(sol[a*n+b])
				}
			}
		}
		nw := pruned.AddConst(w.Name, ir.F32Tensor(append([]int64(nil), w.Const.Shape...), data))
		c.SetArg(1, nw)
		if len(w.Uses()) == 0 {
			if err := pruned.Remove(w); err != nil {
				return nil, err
			}
		}
		after, err := capture(pruned, []*ir.Value{c}, x)
		if err != nil {
			return nil, err
		}
		errs = append(errs, [2]float64{before, relErr(after[0].F32(), want.F32())})
	}
	return errs, nil
}

// capture runs g on x and returns the values vs.
func capture(g *ir.Graph, vs []*ir.Value, x *ir.Tensor) ([]*ir.Tensor, error) {
	h := g.Clone()
	byID := map[int]*ir.Value{}
	for _, v := range h.Values() {
		byID[v.ID] = v
	}
	h.Outputs = nil
	for i, v := range vs {
		h.SetOutput(fmt.Sprintf("capture%d", i), byID[v.ID])
	}
	h.RemoveDead()
	p, err := runtime.Compile(h)
	if err != nil {
		return nil, err
	}
	out, err := p.Run(map[string]*ir.Tensor{h.Inputs[0].Name: x})
	if err != nil {
		return nil, err
	}
	res := make([]*ir.Tensor, len(vs))
	for i := range vs {
		res[i] = out[fmt.Sprintf("capture%d", i)]
	}
	return res, nil
}

func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i] - want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// ridgeSolve returns the k×n matrix W minimising |X·W − T|² + λ|W|², X
// being rows×k and T rows×n, row-major.
func ridgeSolve(x []float32, rows, k int, t []float64, n int, ridge float64) ([]float64, error) {
	a := make([]float64, k*k)
	b := make([]float64, k*n)
	for r := range rows {
		xr := x[r*k : (r+1)*k]
		tr := t[r*n : (r+1)*n]
		for i, xi := range xr {
			if xi == 0 {
				continue
			}
			fi := float64(xi)
			ai := a[i*k : (i+1)*k]
			for j, xj := range xr {
				ai[j] += fi * float64(xj)
			}
			bi := b[i*n : (i+1)*n]
			for j, tj := range tr {
				bi[j] += fi * tj
			}
		}
	}
	tr := 0.0
	for i := range k {
		tr += a[i*k+i]
	}
	lam := ridge * tr / float64(max(k, 1))
	if lam == 0 {
		lam = 1e-8
	}
	for i := range k {
		a[i*k+i] += lam
	}
	// Cholesky: A = L·Lᵀ, in place in the lower triangle.
	for j := range k {
		s := a[j*k+j]
		for p := range j {
			s -= a[j*k+p] * a[j*k+p]
		}
		if s <= 0 {
			return nil, fmt.Errorf("normal equations are not positive definite (column %d)", j)
		}
		d := math.Sqrt(s)
		a[j*k+j] = d
		for i := j + 1; i < k; i++ {
			s := a[i*k+j]
			for p := range j {
				s -= a[i*k+p] * a[j*k+p]
			}
			a[i*k+j] = s / d
		}
	}
	// Solve L·Y = B, then Lᵀ·W = Y, column by column of B.
	for c := range n {
		for i := range k {
			s := b[i*n+c]
			for p := range i {
				s -= a[i*k+p] * b[p*n+c]
			}
			b[i*n+c] = s / a[i*k+i]
		}
		for i := k - 1; i >= 0; i-- {
			s := b[i*n+c]
			for p := i + 1; p < k; p++ {
				s -= a[p*k+i] * b[p*n+c]
			}
			b[i*n+c] = s / a[i*k+i]
		}
	}
	return b, nil
}
