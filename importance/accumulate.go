package importance

import (
	"errors"
	"fmt"

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

// Accumulate runs gradients over up to batches calibration batches of
// batchSize samples (batches ≤ 0: the whole dataset; a short last batch is
// used as is). Grads are the sample-weighted mean of the batch gradients
// (the gradient of the mean loss over all samples seen), SqGrads are summed
// over all samples, and Samples counts them.
func Accumulate(g *ir.Graph, ds *data.Dataset, batchSize, batches int, loss LossKind) (*grad.Result, error) {
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
	if d := in.Type.Shape[0]; d.IsStatic() && d.C > 0 {
		// A static-batch export takes exactly its batch size; keep the
		// number of images about the same.
		batches = max(1, batches*batchSize/int(d.C))
		batchSize = int(d.C)
	}
	var teacher *runtime.Program // the KL teacher, or g itself for pseudo-labels
	switch loss.Kind {
	case "ce":
		if ds.Y == nil {
			return nil, errors.New("importance: ce loss needs labels; the dataset has none (use pseudo or kl)")
		}
	case "pseudo":
		// The model labels its own data: compile it once as a plain
		// forward program.
		var err error
		if teacher, err = runtime.Compile(g); err != nil {
			return nil, fmt.Errorf("importance: %w", err)
		}
	case "kl":
		if loss.Teacher == nil || loss.Teacher == g {
			return nil, errors.New("importance: kl loss needs a separate teacher model")
		}
		if len(loss.Teacher.Inputs) != 1 || len(loss.Teacher.Outputs) == 0 {
			return nil, errors.New("importance: the kl teacher must have one input and an output")
		}
		var err error
		if teacher, err = runtime.Compile(loss.Teacher); err != nil {
			return nil, fmt.Errorf("importance: teacher: %w", err)
		}
	default:
		return nil, fmt.Errorf("importance: unknown loss %q (want ce, pseudo or kl)", loss.Kind)
	}
	e, err := grad.NewEngine(g, grad.Options{Wrt: loss.Wrt, SampleSquares: loss.SampleSquares})
	if err != nil {
		return nil, err
	}
	n := ds.Len()
	if batches > 0 {
		n = min(n, batches*batchSize)
	}
	total := &grad.Result{Grads: map[*ir.Value]*ir.Tensor{}}
	if loss.SampleSquares {
		total.SqGrads = map[*ir.Value]*ir.Tensor{}
	}
	for lo := 0; lo < n; lo += batchSize {
		hi := min(lo+batchSize, n)
		x := ds.Batch(lo, hi)
		inputs := map[string]*ir.Tensor{in.Name: x}
		l := grad.Loss{Kind: "ce"}
		switch loss.Kind {
		case "ce":
			l.Labels = ds.Y[lo:hi]
		case "pseudo":
			if l.Labels, err = predictions(teacher, g, inputs); err != nil {
				return nil, err
			}
		case "kl":
			out, err := teacher.Run(map[string]*ir.Tensor{loss.Teacher.Inputs[0].Name: x})
			if err != nil {
				return nil, fmt.Errorf("importance: teacher: %w", err)
			}
			l = grad.Loss{Kind: "kl", Teacher: out[loss.Teacher.Outputs[0].Name]}
		}
		r, err := e.Gradients(inputs, l)
		if err != nil {
			return nil, fmt.Errorf("importance: batch [%d,%d): %w", lo, hi, err)
		}
		merge(total, r)
	}
	if total.Samples == 0 {
		return nil, errors.New("importance: no samples")
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

// merge adds a batch result into the running totals, weighting its mean
// gradient and loss by its sample count.
func merge(total, r *grad.Result) {
	w := float32(r.Samples)
	for v, t := range r.Grads {
		acc := total.Grads[v]
		if acc == nil {
			acc = ir.MustTensor(ir.F32, t.Shape...)
			total.Grads[v] = acc
		}
		for i, x := range t.F32() {
			acc.F32()[i] += w * x
		}
	}
	for v, t := range r.SqGrads {
		acc := total.SqGrads[v]
		if acc == nil {
			acc = ir.MustTensor(ir.F32, t.Shape...)
			total.SqGrads[v] = acc
		}
		for i, x := range t.F32() {
			acc.F32()[i] += x
		}
	}
	total.Loss += r.Loss * float64(r.Samples)
	total.Samples += r.Samples
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
