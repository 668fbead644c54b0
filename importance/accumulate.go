package importance

import (
	"errors"
	"fmt"
	"slices"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
	"github.com/pqvc/pqvc/runtime/grad"
)

// LossKind says which loss Accumulate differentiates and what it collects.
type LossKind struct {
	// Kind is "ce" (cross-entropy with the dataset's labels), "pseudo"
	// (cross-entropy with the model's own arg-max predictions, for data
	// without labels) or "kl" (KL(teacher‖model) against Teacher's logits).
	// A model cannot be its own KL teacher: the loss and every gradient
	// would be zero.
	Kind    string
	Teacher *ir.Graph
	// SampleSquares collects Σ_i (∂L_i/∂w)² for the hessian criterion; it
	// runs the samples one at a time (see grad.Options.SampleSquares).
	SampleSquares bool
	// Wrt restricts the differentiated constants (nil: all f32 weights).
	Wrt []*ir.Value
}

// Memory bounds what a calibration run holds at once. The zero value
// holds everything, which is fastest.
type Memory struct {
	// Checkpoint recomputes activations in the backward pass instead of
	// keeping them, and drops the packed-weight cache (grad.Options).
	Checkpoint bool
	// MicroBatch, when positive, runs at most this many images per
	// forward and backward pass. Batches are split, pseudo-labels and
	// teacher logits come per image, and the gradient of the mean loss is
	// the same. Static-batch exports run their own batch size regardless.
	MicroBatch int
	// GradBytes, when positive, bounds the gradient accumulators: Measure
	// sweeps the weights in equal chunks of at most this many bytes (plus
	// less than one weight; see chunks), one pass over the calibration
	// data per chunk, latest layers first since their backward pass is
	// shortest. Each chunk's gradients are reduced to saliency marginals
	// before the next.
	GradBytes int64
}

// Accumulate runs gradients over up to batches calibration batches of
// batchSize samples (batches ≤ 0: the whole dataset; a short last batch is
// used as is). Grads are the sample-weighted mean of the batch gradients
// (the gradient of the mean loss over all samples seen), SqGrads are summed
// over all samples, and Samples counts them. It keeps every gradient; see
// Measure for runs whose memory must stay near the model's size.
func Accumulate(g *ir.Graph, ds *data.Dataset, batchSize, batches int, loss LossKind) (*grad.Result, error) {
	c, err := newCalib(g, ds, batchSize, batches, loss, Memory{})
	if err != nil {
		return nil, err
	}
	total := &grad.Result{Grads: map[*ir.Value]*ir.Tensor{}}
	if loss.SampleSquares {
		total.SqGrads = map[*ir.Value]*ir.Tensor{}
	}
	if err := c.sweep(c.e, total); err != nil {
		return nil, err
	}
	inv := float32(1 / float64(total.Samples))
	for _, t := range total.Grads {
		for i := range t.F32() {
			t.F32()[i] *= inv
		}
	}
	total.Loss /= float64(total.Samples)
	return total, nil
}

// Measure is Accumulate reduced to saliency marginals, within the memory
// bounds of mem. The hessian criterion (loss.SampleSquares) collects only
// the squared gradients it uses.
func Measure(g *ir.Graph, ds *data.Dataset, batchSize, batches int, loss LossKind, mem Memory) (*Saliency, error) {
	c, err := newCalib(g, ds, batchSize, batches, loss, mem)
	if err != nil {
		return nil, err
	}
	wrt := slices.Clone(c.e.Wrt())
	slices.Reverse(wrt)
	sal := &Saliency{W: map[*ir.Value]*Marginals{}}
	for _, chunk := range chunks(wrt, mem.GradBytes) {
		e, err := c.e.With(chunk)
		if err != nil {
			return nil, err
		}
		acc := &grad.Result{}
		if loss.SampleSquares {
			acc.SqGrads = map[*ir.Value]*ir.Tensor{}
		} else {
			acc.Grads = map[*ir.Value]*ir.Tensor{}
		}
		if err := c.sweep(e, acc); err != nil {
			return nil, err
		}
		// acc.Grads holds sums of per-sample gradients; Taylor uses their mean.
		inv := float32(1 / float64(acc.Samples))
		for _, t := range acc.Grads {
			for i := range t.F32() {
				t.F32()[i] *= inv
			}
		}
		sal.add(acc)
		sal.Loss, sal.Samples = acc.Loss/float64(acc.Samples), acc.Samples
	}
	return sal, nil
}

// chunks splits weights, in order, into as few runs as a budget of
// gradient bytes allows (all of them when budget ≤ 0), of about equal
// size: k = ⌈total/budget⌉ runs, each cut where the running total passes
// a multiple of total/k. A run exceeds total/k by less than one weight,
// and the budget by at most that, so DeiT-base's 330 MB in a 82 MB budget
// make 4 sweeps where first-fit packing made 5.
func chunks(ws []*ir.Value, budget int64) [][]*ir.Value {
	var total int64
	for _, w := range ws {
		total += 4 * int64(w.Const.Len())
	}
	if budget <= 0 || total <= budget {
		return [][]*ir.Value{ws}
	}
	k := (total + budget - 1) / budget
	var out [][]*ir.Value
	var cum int64
	start := 0
	for i, w := range ws {
		cum += 4 * int64(w.Const.Len())
		// Cut after w once the running total reaches the next boundary.
		if cum*k >= total*int64(len(out)+1) || i == len(ws)-1 {
			out = append(out, ws[start:i+1])
			start = i + 1
		}
	}
	return out
}

// calib is one calibration run's setup, shared by the sweeps of Measure.
type calib struct {
	g         *ir.Graph
	ds        *data.Dataset
	in        *ir.Value
	batchSize int
	n         int // samples used
	loss      LossKind
	e         *grad.Engine
	teacher   *runtime.Program // the KL teacher, or g's own program for pseudo-labels
	labels    map[int][]int64  // pseudo-labels by batch start, kept across sweeps
	logits    map[int]*ir.Tensor
}

func newCalib(g *ir.Graph, ds *data.Dataset, batchSize, batches int, loss LossKind, mem Memory) (*calib, error) {
	if len(g.Inputs) != 1 {
		return nil, fmt.Errorf("importance: model has %d inputs, want 1", len(g.Inputs))
	}
	if batchSize <= 0 {
		return nil, fmt.Errorf("importance: batch size %d", batchSize)
	}
	in := g.Inputs[0]
	if err := ds.CheckInput(in); err != nil {
		return nil, fmt.Errorf("importance: %w", err)
	}
	n := ds.Len()
	if batches > 0 {
		n = min(n, batches*batchSize)
	}
	if d := in.Type.Shape[0]; d.IsStatic() && d.C > 0 {
		// A static-batch export takes exactly its batch size; keep the
		// number of images about the same.
		if batches > 0 {
			n = min(ds.Len(), max(1, batches*batchSize/int(d.C))*int(d.C))
		}
		batchSize = int(d.C)
	} else if mem.MicroBatch > 0 {
		batchSize = min(batchSize, mem.MicroBatch)
	}
	c := &calib{g: g, ds: ds, in: in, batchSize: batchSize, n: n, loss: loss, labels: map[int][]int64{}, logits: map[int]*ir.Tensor{}}
	switch loss.Kind {
	case "ce":
		if ds.Y == nil {
			return nil, errors.New("importance: ce loss needs labels; the dataset has none (use pseudo or kl)")
		}
	case "pseudo":
	case "kl":
		if loss.Teacher == nil || loss.Teacher == g {
			return nil, errors.New("importance: kl loss needs a separate teacher model")
		}
		if len(loss.Teacher.Inputs) != 1 || len(loss.Teacher.Outputs) == 0 {
			return nil, errors.New("importance: the kl teacher must have one input and an output")
		}
		var err error
		if c.teacher, err = runtime.CompileWith(loss.Teacher, runtime.CompileOptions{PackCacheBytes: packCache(mem)}); err != nil {
			return nil, fmt.Errorf("importance: teacher: %w", err)
		}
	default:
		return nil, fmt.Errorf("importance: unknown loss %q (want ce, pseudo or kl)", loss.Kind)
	}
	var err error
	c.e, err = grad.NewEngine(g, grad.Options{Wrt: loss.Wrt, SampleSquares: loss.SampleSquares, Checkpoint: mem.Checkpoint, NoPackCache: mem.Checkpoint})
	if err != nil {
		return nil, err
	}
	if loss.Kind == "pseudo" {
		// The model labels its own data with the engine's forward program.
		c.teacher = c.e.Program()
	}
	if c.n == 0 {
		return nil, errors.New("importance: no samples")
	}
	return c, nil
}

func packCache(mem Memory) int64 {
	if mem.Checkpoint {
		return 0
	}
	return runtime.DefaultPackCache()
}

// sweep runs e over the calibration batches, adding into acc (see
// grad.Engine.AddTo).
func (c *calib) sweep(e *grad.Engine, acc *grad.Result) error {
	for lo := 0; lo < c.n; lo += c.batchSize {
		hi := min(lo+c.batchSize, c.n)
		x, err := c.ds.Samples(lo, hi)
		if err != nil {
			return err
		}
		inputs := map[string]*ir.Tensor{c.in.Name: x}
		l := grad.Loss{Kind: "ce"}
		switch c.loss.Kind {
		case "ce":
			l.Labels = c.ds.Y[lo:hi]
		case "pseudo":
			if c.labels[lo] == nil {
				y, err := predictions(c.teacher, c.g, inputs)
				if err != nil {
					return err
				}
				c.labels[lo] = y
			}
			l.Labels = c.labels[lo]
		case "kl":
			if c.logits[lo] == nil {
				out, err := c.teacher.Run(map[string]*ir.Tensor{c.loss.Teacher.Inputs[0].Name: x})
				if err != nil {
					return fmt.Errorf("importance: teacher: %w", err)
				}
				c.logits[lo] = out[c.loss.Teacher.Outputs[0].Name]
			}
			l = grad.Loss{Kind: "kl", Teacher: c.logits[lo]}
		}
		if err := e.AddTo(acc, inputs, l); err != nil {
			return fmt.Errorf("importance: batch [%d,%d): %w", lo, hi, err)
		}
	}
	if acc.Samples == 0 {
		return errors.New("importance: no samples")
	}
	return nil
}

// predictions returns the model's arg-max class per sample (pseudo-labels).
func predictions(p *runtime.Program, g *ir.Graph, inputs map[string]*ir.Tensor) ([]int64, error) {
	out, err := p.Run(inputs)
	if err != nil {
		return nil, fmt.Errorf("importance: pseudo-labels: %w", err)
	}
	z := out[g.Outputs[0].Name]
	if z == nil || z.DType != ir.F32 || len(z.Shape) < 1 {
		return nil, errors.New("importance: pseudo-labels: logits are not an f32 tensor")
	}
	c := int(z.Shape[len(z.Shape)-1])
	zs := z.F32()
	labels := make([]int64, len(zs)/max(c, 1))
	for i := range labels {
		best := 0
		for j := 1; j < c; j++ {
			if zs[i*c+j] > zs[i*c+best] {
				best = j
			}
		}
		labels[i] = int64(best)
	}
	return labels, nil
}
