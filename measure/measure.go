// Package measure times a graph in pqvc's runtime and in ONNX Runtime, and
// estimates its peak activation memory. Sweeps, the budget search, reports
// and benchmarks share it so that every figure is taken the same way:
// warm-up runs first, then the median of timed runs on one seeded input.
package measure

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	backendonnx "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/internal/cleanup"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
	"github.com/pqvc/pqvc/runtime/kernels"
)

// Options says how to time a graph.
type Options struct {
	Batch   int // value bound to every symbolic input dim; 0 means 1
	Threads int // kernel threads (pqvc) or intra-op threads (ORT); 0 means 1
	Warmup  int // untimed runs first; 0 means 2
	Runs    int // timed runs; 0 means 10
}

func (o Options) norm() Options {
	if o.Batch <= 0 {
		o.Batch = 1
	}
	if o.Threads <= 0 {
		o.Threads = 1
	}
	if o.Warmup <= 0 {
		o.Warmup = 2
	}
	if o.Runs <= 0 {
		o.Runs = 10
	}
	return o
}

// Latency is a timing summary.
type Latency struct {
	Median time.Duration `json:"median_ns"`
	Min    time.Duration `json:"min_ns"`
	Runs   int           `json:"runs"`
}

// Ms is the median in milliseconds.
func (l Latency) Ms() float64 { return float64(l.Median) / float64(time.Millisecond) }

// Inputs makes one seeded standard-normal float input per graph input, with
// symbolic dims bound to batch. Non-float inputs are an error: DeiT-style
// models take one image tensor.
func Inputs(g *ir.Graph, batch int) (map[string]*ir.Tensor, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	ins := map[string]*ir.Tensor{}
	for _, in := range g.Inputs {
		if in.Type.DType != ir.F32 {
			return nil, fmt.Errorf("input %q is %s; measuring needs float32 inputs", in.Name, in.Type.DType)
		}
		shape := BindShape(in.Type.Shape, batch)
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		ins[in.Name] = ir.F32Tensor(shape, x)
	}
	return ins, nil
}

// BindShape turns a shape into ints, giving every symbol the value batch
// (DeiT graphs have one symbol, the batch).
func BindShape(s ir.Shape, batch int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		b, err := d.Bind(int64(batch))
		if err != nil {
			b = ir.Static(d.C * int64(batch)) // an unknown dim counts as one symbol
		}
		out[i] = b.C
	}
	return out
}

// Runtime times g in pqvc's own runtime.
func Runtime(g *ir.Graph, o Options) (Latency, error) {
	o = o.norm()
	p, err := runtime.Compile(g)
	if err != nil {
		return Latency{}, err
	}
	ins, err := Inputs(g, o.Batch)
	if err != nil {
		return Latency{}, err
	}
	prev := kernels.Threads()
	kernels.SetThreads(o.Threads)
	defer kernels.SetThreads(prev)
	var ts []time.Duration
	for i := range o.Warmup + o.Runs {
		t0 := time.Now()
		if _, err := p.Run(ins); err != nil {
			return Latency{}, err
		}
		if i >= o.Warmup {
			ts = append(ts, time.Since(t0))
		}
	}
	return summarize(ts), nil
}

// ORT times the ONNX file at modelPath in ONNX Runtime through r, on the
// same seeded inputs Runtime uses for g (the graph the file was written
// from). Pass modelPath "" to have g written to a temporary file first.
func ORT(r *ort.Runner, g *ir.Graph, modelPath string, o Options) (Latency, error) {
	o = o.norm()
	if modelPath == "" {
		dir, err := os.MkdirTemp("", "pqvc-measure-")
		if err != nil {
			return Latency{}, err
		}
		defer os.RemoveAll(dir)
		defer cleanup.Track(dir)()
		modelPath = filepath.Join(dir, "model.onnx")
		if err := backendonnx.Write(modelPath, g, backendonnx.Options{}); err != nil {
			return Latency{}, fmt.Errorf("writing the model for ONNX Runtime: %w", err)
		}
	}
	arrs, err := InputArrays(g, o.Batch)
	if err != nil {
		return Latency{}, err
	}
	return ORTFile(r, modelPath, arrs, o)
}

// InputArrays is Inputs as arrays for ONNX Runtime. Taking them early lets
// a caller time a file in ONNX Runtime after it has let go of the graph.
func InputArrays(g *ir.Graph, batch int) (map[string]*tensorio.Array, error) {
	ins, err := Inputs(g, batch)
	if err != nil {
		return nil, err
	}
	arrs := map[string]*tensorio.Array{}
	for k, t := range ins {
		if arrs[k], err = data.FromTensor(t); err != nil {
			return nil, err
		}
	}
	return arrs, nil
}

// ORTFile times the ONNX file at modelPath in ONNX Runtime on inputs.
func ORTFile(r *ort.Runner, modelPath string, inputs map[string]*tensorio.Array, o Options) (Latency, error) {
	o = o.norm()
	b, err := r.Bench(modelPath, inputs, o.Threads, o.Warmup, o.Runs)
	if err != nil {
		return Latency{}, err
	}
	return Latency{Median: b.Median(), Min: b.Min(), Runs: o.Runs}, nil
}

func summarize(ts []time.Duration) Latency {
	s := slices.Clone(ts)
	slices.Sort(s)
	return Latency{Median: s[len(s)/2], Min: s[0], Runs: len(s)}
}

// PeakActivationBytes is the largest total size of the non-constant values
// alive at once when g runs in topological order with symbolic dims bound
// to batch: a value is live from its definition to its last use, and graph
// outputs stay live to the end. It is a lower bound for any executor that
// runs the ops one at a time without in-place reuse, and is what the
// report's "peak activation memory" means.
func PeakActivationBytes(g *ir.Graph, batch int) (int64, error) {
	order, err := g.Topo()
	if err != nil {
		return 0, err
	}
	pos := map[*ir.Value]int{}
	for i, v := range order {
		pos[v] = i
	}
	end := make([]int, len(order)) // index of the last use
	for i, v := range order {
		end[i] = i
		for _, u := range v.Uses() {
			if p, ok := pos[u]; ok && p > end[i] {
				end[i] = p
			}
		}
	}
	for _, o := range g.Outputs {
		if p, ok := pos[o.Value]; ok {
			end[p] = len(order)
		}
	}
	free := make([]int64, len(order)+1)
	var live, peak int64
	for i, v := range order {
		if v.Op != ir.OpConst {
			n := int64(v.Type.DType.Size())
			for _, d := range BindShape(v.Type.Shape, batch) {
				n *= d
			}
			live += n
			free[end[i]] += n
		}
		peak = max(peak, live)
		live -= free[i]
	}
	return peak, nil
}
