// Package eval measures a graph's top-1 accuracy and throughput on a
// labelled dataset with the Go runtime. Recipes report accuracy before and
// after through it, and `pqvc eval` prints it.
package eval

import (
	"errors"
	"fmt"
	"time"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// Options for Accuracy.
type Options struct {
	Batch int // images per run (default 32, or 1 for a batch-coupled graph: see BatchCoupled)
	Limit int // evaluate only the first Limit images (0: all)
	// Progress, if set, is called after every batch with images done.
	Progress func(done, total int)
}

// Result of an evaluation.
type Result struct {
	Accuracy        float64 // correct / n
	Correct, N      int
	Seconds         float64 // wall time of the runs (not loading)
	ImagesPerSecond float64
}

// BatchCoupled reports whether one image's outputs from g depend on the
// other images in its batch. Dynamic int8 quantization does: ONNX's
// DynamicQuantizeLinear takes one range per tensor, batch included, so a
// model deployed at batch 1 quantizes each image alone and a batch of 32
// shares one scale. Accuracy evaluates such a graph one image at a time by
// default, which is what a phone running it sees.
func BatchCoupled(g *ir.Graph) bool {
	for _, v := range g.Values() {
		switch v.Op {
		case ir.MSDomain + ".DynamicQuantizeMatMul":
			return true
		case "ReduceMin", "ReduceMax", "ReduceMean", "ReduceSum", "ReduceProd", "ReduceL2", "ReduceSumSquare":
			a := v.Arg(0)
			if a == nil || a.Type.Rank() == 0 || a.Type.Shape[0].IsStatic() {
				continue
			}
			axes, err := ir.ReduceAxes(v, a.Type.Rank())
			if err != nil {
				continue
			}
			for _, ax := range axes {
				if ax == 0 {
					return true
				}
			}
		}
	}
	return false
}

// Accuracy runs g over ds and compares the arg-max of its first output with
// the labels.
func Accuracy(g *ir.Graph, ds *data.Dataset, opts Options) (Result, error) {
	if ds.Y == nil {
		return Result{}, errors.New("dataset has no labels")
	}
	if len(g.Inputs) != 1 {
		return Result{}, fmt.Errorf("model has %d inputs; evaluation needs exactly one", len(g.Inputs))
	}
	if err := ds.CheckInput(g.Inputs[0]); err != nil {
		return Result{}, err
	}
	p, err := runtime.Compile(g)
	if err != nil {
		return Result{}, err
	}
	batch := opts.Batch
	switch {
	case batch > 0:
	case BatchCoupled(g):
		batch = 1
	default:
		batch = 32
	}
	n := ds.Len()
	if opts.Limit > 0 && opts.Limit < n {
		n = opts.Limit
	}
	// A static batch dim forces that batch size.
	if d := g.Inputs[0].Type.Shape[0]; d.IsStatic() {
		batch = int(d.C)
	}
	var res Result
	start := time.Now()
	for lo := 0; lo < n; lo += batch {
		hi := min(n, lo+batch)
		if hi-lo != batch && g.Inputs[0].Type.Shape[0].IsStatic() {
			break // a static-batch model cannot take the ragged tail
		}
		x, err := ds.Samples(lo, hi)
		if err != nil {
			return Result{}, err
		}
		out, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: x})
		if err != nil {
			return Result{}, fmt.Errorf("images %d to %d: %w", lo, hi, err)
		}
		logits := out[g.Outputs[0].Name]
		if logits.DType != ir.F32 || len(logits.Shape) != 2 || logits.Shape[0] != int64(hi-lo) {
			return Result{}, fmt.Errorf("output %q is %v%v; want f32 [batch, classes] logits", g.Outputs[0].Name, logits.DType, logits.Shape)
		}
		k := int(logits.Shape[1])
		f := logits.F32()
		for i := range hi - lo {
			best := 0
			for j := 1; j < k; j++ {
				if f[i*k+j] > f[i*k+best] {
					best = j
				}
			}
			if int64(best) == ds.Y[lo+i] {
				res.Correct++
			}
		}
		res.N += hi - lo
		if opts.Progress != nil {
			opts.Progress(res.N, n)
		}
	}
	if res.N == 0 {
		return Result{}, errors.New("no images evaluated")
	}
	res.Seconds = time.Since(start).Seconds()
	res.Accuracy = float64(res.Correct) / float64(res.N)
	res.ImagesPerSecond = float64(res.N) / res.Seconds
	return res, nil
}
