// Package quant holds pqvc's quantization passes, after ONNX Runtime's
// quantization tool: the calibrate analysis (activation ranges over the
// recipe's calibration data), the quantize transform (fp16, int8 dynamic,
// int8 static in QDQ form) and fold_qdq (weight folding, redundant pair
// removal and lowering to integer ops).
//
// Importing the package registers the passes. Their ordering facts live in
// passes.Ordering.
package quant

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/schollz/progressbar/v3"
	"gonum.org/v1/gonum/floats"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/runtime"
)

// Calibrate is the calibrate analysis. It runs the graph over ctx.Calib in
// batches and records, for every float tensor that feeds the activation
// input of a MatMul, Gemm or Conv, the range a static quantizer should map
// to the integer grid. It requires nothing and never mutates the IR.
//
// The ranges are computed on first use (Ranges.Get), not when the pass
// runs: quantize requires calibrate for static mode only, and a dynamic or
// fp16 quantize must not pay for (or fail for lack of) calibration data.
var Calibrate = &passes.Pass{
	Name: "calibrate",
	Doc: `collect activation ranges over the calibration data
Methods: minmax (min and max seen), percentile (the given percentile of
|x| or of each tail), entropy (TensorRT's KL-divergence threshold over a
2048-bin histogram of |x|), moving_average (min and max per batch,
exponentially averaged with momentum).`,
	Analysis: true,
	Options:  &CalibOptions{Method: "minmax", Percentile: 99.99, Momentum: 0.9, Batch: 32, Bins: 2048},
	Run: func(ctx *passes.Context, g *ir.Graph) (any, error) {
		o := *ctx.Options.(*CalibOptions)
		return &Ranges{opts: o, g: g, ds: ctx.Calib}, nil
	},
}

// CalibOptions are calibrate's options.
type CalibOptions struct {
	Method     string  `pqv:"method,positional" enum:"minmax|percentile|entropy|moving_average" doc:"how a range is chosen from the observed values"`
	Percentile float64 `pqv:"percentile" min:"50" max:"100" doc:"percentile of |x| kept by method percentile"`
	Momentum   float64 `pqv:"momentum" min:"0" max:"1" doc:"weight of the running range in moving_average"`
	Batch      int     `pqv:"batch" min:"1" doc:"samples per calibration batch"`
	Samples    int     `pqv:"samples" min:"0" doc:"calibration samples to use (0: all)"`
	Bins       int     `pqv:"bins" min:"128" doc:"histogram bins for percentile and entropy"`
}

// Range is a calibrated float interval.
type Range struct{ Min, Max float32 }

// Ranges is calibrate's result: a range per observed value, computed once,
// on the first Get.
type Ranges struct {
	opts CalibOptions
	g    *ir.Graph
	ds   *data.Dataset

	once sync.Once
	m    map[*ir.Value]Range
	err  error
}

// NewRanges wraps known ranges (tests, or ranges computed elsewhere).
func NewRanges(m map[*ir.Value]Range) *Ranges {
	r := &Ranges{m: m}
	r.once.Do(func() {})
	return r
}

// Get returns the ranges, calibrating on the first call.
func (r *Ranges) Get() (map[*ir.Value]Range, error) {
	r.once.Do(func() { r.m, r.err = calibrate(r.g, r.ds, r.opts) })
	return r.m, r.err
}

// String summarises the result for reports.
func (r *Ranges) String() string {
	if r.m == nil {
		return fmt.Sprintf("calibrate %s (not yet run)", r.opts.Method)
	}
	return fmt.Sprintf("calibrate %s: %d ranges", r.opts.Method, len(r.m))
}

// MarshalJSON reports the method and, once computed, how many ranges.
func (r *Ranges) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Method string `json:"method"`
		Ranges int    `json:"ranges"`
	}{r.opts.Method, len(r.m)})
}

// quantizable reports whether v is an op whose inputs quantize rewrites:
// argument 0 is the activation and argument 1 the weight.
func quantizable(v *ir.Value) bool {
	switch v.Op {
	case "MatMul", "Gemm", "Conv":
		return true
	}
	return false
}

// observed lists the values whose ranges static quantization needs: the
// float activation inputs of quantizable ops with a constant weight.
func observed(g *ir.Graph) map[*ir.Value]bool {
	want := map[*ir.Value]bool{}
	for _, v := range g.Values() {
		if a, w := v.Arg(0), v.Arg(1); quantizable(v) && w != nil && w.IsConst() && !a.IsConst() && a.Type.DType == ir.F32 {
			want[a] = true
		}
	}
	return want
}

// stat accumulates one value's statistics across batches.
type stat struct {
	min, max   float64 // overall
	emin, emax float64 // exponential moving average of per-batch extremes
	n          int
	hist       []float64 // |x| histogram over [0, absmax], second sweep
	neg, pos   []float64 // signed tails for asymmetric percentile
}

func calibrate(g *ir.Graph, ds *data.Dataset, o CalibOptions) (map[*ir.Value]Range, error) {
	if ds == nil {
		return nil, fmt.Errorf("calibrate: no calibration data (give the recipe a calib dataset)")
	}
	if len(g.Inputs) != 1 {
		return nil, fmt.Errorf("calibrate: the graph has %d inputs; calibration feeds exactly one", len(g.Inputs))
	}
	p, err := runtime.Compile(g)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	want := observed(g)
	stats := map[*ir.Value]*stat{}
	for v := range want {
		stats[v] = &stat{min: math.Inf(1), max: math.Inf(-1)}
	}
	hist := o.Method == "percentile" || o.Method == "entropy"
	sweeps := 1
	if hist {
		sweeps = 2 // the first finds each |x| max, the second fills fixed bins
	}
	n := ds.Len()
	if o.Samples > 0 {
		n = min(n, o.Samples)
	}
	bs := o.Batch
	if d := g.Inputs[0].Type.Shape[0]; d.IsStatic() && d.C > 0 {
		// A static-batch export takes exactly its batch size, and only
		// whole batches of it.
		bs = int(d.C)
		n -= n % bs
	}
	nb := (n + bs - 1) / bs
	bar := newBar(nb*sweeps, "calibrate "+o.Method)
	for sweep := range sweeps {
		for b := range nb {
			x, err := ds.Samples(b*bs, min(n, (b+1)*bs))
			if err != nil {
				return nil, err
			}
			observe := func(v *ir.Value, t *ir.Tensor) {
				if s := stats[v]; s != nil {
					s.add(t.F32(), sweep, o)
				}
			}
			for _, in := range g.Inputs {
				observe(in, x) // Observe sees computed values only
			}
			if _, err := p.RunWith(map[string]*ir.Tensor{g.Inputs[0].Name: x}, runtime.RunOptions{Observe: observe}); err != nil {
				return nil, fmt.Errorf("calibrate: batch %d: %w", b, err)
			}
			if bar != nil {
				bar.Add(1)
			}
		}
	}
	if bar != nil {
		bar.Finish()
	}
	out := map[*ir.Value]Range{}
	for v, s := range stats {
		switch {
		case s.n == 0:
		case v.Op == ir.OpInput:
			// A graph input's range is set by preprocessing, and an image's
			// histogram is spiky (background pixels), which fools the KL
			// search into clipping the foreground: keep min and max.
			out[v] = Range{float32(s.min), float32(s.max)}
		default:
			out[v] = s.finish(o)
		}
	}
	return out, nil
}

// newBar returns a progress bar on stderr, or nil when stderr is not a
// terminal or when running under go test: progress is for people watching.
func newBar(n int, desc string) *progressbar.ProgressBar {
	if testing.Testing() {
		return nil
	}
	fi, err := os.Stderr.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(desc),
		progressbar.OptionClearOnFinish())
}

func (s *stat) add(xs []float32, sweep int, o CalibOptions) {
	if len(xs) == 0 {
		return
	}
	if sweep == 0 {
		lo, hi := float64(xs[0]), float64(xs[0])
		for _, x := range xs {
			lo, hi = math.Min(lo, float64(x)), math.Max(hi, float64(x))
		}
		if s.n == 0 {
			s.emin, s.emax = lo, hi
		} else {
			m := o.Momentum
			s.emin, s.emax = m*s.emin+(1-m)*lo, m*s.emax+(1-m)*hi
		}
		s.min, s.max = math.Min(s.min, lo), math.Max(s.max, hi)
		s.n++
		return
	}
	if s.hist == nil {
		s.hist, s.neg, s.pos = make([]float64, o.Bins), make([]float64, o.Bins), make([]float64, o.Bins)
	}
	absmax := math.Max(-s.min, s.max)
	if absmax == 0 {
		return
	}
	w := absmax / float64(o.Bins)
	for _, x := range xs {
		a := math.Abs(float64(x))
		i := min(int(a/w), o.Bins-1)
		s.hist[i]++
		if x < 0 {
			s.neg[i]++
		} else {
			s.pos[i]++
		}
	}
}

// finish turns the statistics into a range. Thresholds from |x| are
// clipped to the observed extremes, so a one-sided tensor (after GELU or
// Softmax) keeps its narrow side.
func (s *stat) finish(o CalibOptions) Range {
	clipTo := func(t float64) Range {
		return Range{float32(math.Max(s.min, -t)), float32(math.Min(s.max, t))}
	}
	absmax := math.Max(-s.min, s.max)
	w := absmax / float64(o.Bins)
	switch o.Method {
	case "moving_average":
		return Range{float32(s.emin), float32(s.emax)}
	case "percentile":
		if s.hist == nil {
			break
		}
		q := o.Percentile / 100
		// Each tail keeps q of its own mass, as ORT's asymmetric percentile.
		lo := -float64(quantileBin(s.neg, q)+1) * w
		hi := float64(quantileBin(s.pos, q)+1) * w
		return Range{float32(math.Max(s.min, lo)), float32(math.Min(s.max, hi))}
	case "entropy":
		if s.hist == nil {
			break
		}
		// 128 levels model int8 on a symmetric tensor; a one-sided tensor
		// (after GELU or Softmax) gets nearly all 256 levels of u8 on its
		// one side, and searching with 128 would clip it too hard.
		levels := 128
		if s.min >= -0.1*s.max {
			levels = 255
		}
		return clipTo(float64(klThreshold(s.hist, levels)) * w)
	}
	return Range{float32(s.min), float32(s.max)}
}

// quantileBin returns the first bin at which the cumulative share of h
// reaches q.
func quantileBin(h []float64, q float64) int {
	total := floats.Sum(h)
	if total == 0 {
		return len(h) - 1
	}
	cum := make([]float64, len(h))
	floats.CumSum(cum, h)
	for i, c := range cum {
		if c/total >= q {
			return i
		}
	}
	return len(h) - 1
}

// klThreshold is TensorRT's entropy calibration: for each candidate cut i
// (from nq bins up), the reference distribution P is h[:i] with the clipped
// tail folded into its last bin, Q is h[:i] merged into nq levels and spread
// back over the non-empty bins; the cut with the least KL(P‖Q) wins. It
// returns the cut as a bin count (threshold = cut × bin width).
func klThreshold(h []float64, nq int) int {
	n := len(h)
	if n <= nq {
		return n
	}
	best, bestKL := n, math.Inf(1)
	p := make([]float64, n)
	q := make([]float64, n)
	tail := make([]float64, n+1) // tail[i] = Σ h[i:]
	for i := n - 1; i >= 0; i-- {
		tail[i] = tail[i+1] + h[i]
	}
	for i := nq; i <= n; i++ {
		copy(p, h[:i])
		p[i-1] += tail[i]
		// Merge h[:i] into nq levels; each level's mass is spread evenly
		// over the bins of that level that were non-empty.
		for j := range nq {
			lo, hi := j*i/nq, (j+1)*i/nq
			sum, nz := 0.0, 0
			for k := lo; k < hi; k++ {
				sum += h[k]
				if h[k] != 0 {
					nz++
				}
			}
			for k := lo; k < hi; k++ {
				q[k] = 0
				if h[k] != 0 {
					q[k] = sum / float64(nz)
				}
			}
		}
		if kl := klDiv(p[:i], q[:i]); kl < bestKL {
			best, bestKL = i, kl
		}
	}
	return best
}

// klDiv is KL(p‖q) of two unnormalised histograms; bins where p is zero
// contribute nothing and bins where only q is zero are smoothed.
func klDiv(p, q []float64) float64 {
	sp, sq := floats.Sum(p), floats.Sum(q)
	if sp == 0 || sq == 0 {
		return math.Inf(1)
	}
	kl := 0.0
	for i := range p {
		if p[i] == 0 {
			continue
		}
		pi := p[i] / sp
		qi := q[i] / sq
		if qi == 0 {
			qi = 1e-10
		}
		kl += pi * math.Log(pi/qi)
	}
	return kl
}
