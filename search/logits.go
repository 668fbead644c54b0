package search

import (
	"fmt"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// logits runs g on the first n images of ds and returns its first output,
// flattened, with the number of classes. Quantization sensitivity compares
// logits rather than top-1 accuracy: one layer's int8 error rarely flips a
// prediction on a few hundred images, but it always moves the logits.
func logits(g *ir.Graph, ds *data.Dataset, n int) ([]float32, int, error) {
	if len(g.Inputs) != 1 || len(g.Outputs) == 0 {
		return nil, 0, fmt.Errorf("search: the model has %d inputs; want 1", len(g.Inputs))
	}
	p, err := runtime.Compile(g)
	if err != nil {
		return nil, 0, fmt.Errorf("search: compiling for logits: %w", err)
	}
	batch := 32
	if d := g.Inputs[0].Type.Shape[0]; d.IsStatic() {
		batch = int(d.C)
	}
	n = min(n, ds.Len())
	var out []float32
	k := 0
	for lo := 0; lo+batch <= n || lo < n && !g.Inputs[0].Type.Shape[0].IsStatic(); lo += batch {
		hi := min(n, lo+batch)
		x, err := ds.Samples(lo, hi)
		if err != nil {
			return nil, 0, fmt.Errorf("search: %w", err)
		}
		res, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: x})
		if err != nil {
			return nil, 0, fmt.Errorf("search: images %d to %d: %w", lo, hi, err)
		}
		y := res[g.Outputs[0].Name]
		if y == nil || y.DType != ir.F32 || len(y.Shape) != 2 || y.Shape[0] != int64(hi-lo) {
			return nil, 0, fmt.Errorf("search: output %q is not f32 [batch, classes] logits", g.Outputs[0].Name)
		}
		k = int(y.Shape[1])
		out = append(out, y.F32()...)
	}
	return out, k, nil
}

// logitError is the mean over images of the squared distance between two
// runs' logits.
func logitError(a, b []float32, k int) float64 {
	if len(a) != len(b) || k == 0 || len(a) == 0 {
		return 0
	}
	s := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s / float64(len(a)/k)
}

// top1 is the share of rows of lg (k logits each) whose arg-max (first
// on ties, as eval.Accuracy) is the label.
func top1(lg []float32, k int, y []int64) float64 {
	if k == 0 || len(lg) == 0 {
		return 0
	}
	n, correct := len(lg)/k, 0
	for i := range n {
		best := 0
		for j := 1; j < k; j++ {
			if lg[i*k+j] > lg[i*k+best] {
				best = j
			}
		}
		if i < len(y) && int64(best) == y[i] {
			correct++
		}
	}
	return float64(correct) / float64(n)
}
