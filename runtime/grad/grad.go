// Package grad computes reverse-mode gradients of a classification loss
// with respect to the constants (weights) of an ir.Graph.
//
// The forward pass runs on the reference interpreter with every intermediate
// kept (runtime.RunOptions.Keep); the backward pass walks the values in
// reverse topological order and applies one vector-Jacobian product (VJP)
// per op. Gradients flow only along float32 values that depend on a
// constant being differentiated, so shape arithmetic (Shape, Range,
// ConstantOfShape, comparisons, integer Casts) never needs a VJP. Matrix
// products in the backward pass use runtime/kernels, so they run on all
// cores like the forward pass.
//
// Importance criteria (Taylor, OBD/Hessian) are its main users: see package
// importance.
package grad

import (
	"errors"
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// Loss selects the scalar being differentiated: the mean over the batch of a
// per-sample loss on a logits output.
type Loss struct {
	// Kind is "ce" (cross-entropy with Labels; "" means ce) or "kl"
	// (KL(teacher‖model) with Teacher logits, for data without labels;
	// batch-mean, no temperature).
	Kind    string
	Labels  []int64
	Teacher *ir.Tensor
	// Output names the graph output holding the logits ([N, classes]; more
	// leading dims are flattened into samples); "" means the first output.
	Output string
}

// Options control what is differentiated.
type Options struct {
	// Wrt lists the constants to differentiate; nil means every f32
	// constant with more than one element (scalars are exporter constants
	// such as 1/√d, never pruned).
	Wrt []*ir.Value
	// SampleSquares also accumulates Σ_i (∂L_i/∂w)² over the samples of
	// the batch (the empirical Fisher diagonal behind OBD/Hessian
	// importance). It runs one forward and backward pass per sample
	// (batch slices of size 1), so it costs about N single-image passes
	// instead of one N-image pass; Grads are then the mean of the
	// per-sample gradients, which equals the batch gradient.
	SampleSquares bool
}

// Result holds the loss and gradients of one batch.
type Result struct {
	Loss    float64                  // mean per-sample loss over the batch
	Grads   map[*ir.Value]*ir.Tensor // ∂(mean loss)/∂w for every Wrt constant
	SqGrads map[*ir.Value]*ir.Tensor // Σ_i (∂L_i/∂w)², with SampleSquares
	Samples int                      // number of samples (N) behind Loss, Grads and SqGrads
}

// Engine is a graph prepared for repeated gradient computations (one
// compiled program, one dependency analysis), e.g. over calibration batches.
// It is not safe for concurrent use.
type Engine struct {
	g     *ir.Graph
	prog  *runtime.Program
	order []*ir.Value
	wrt   []*ir.Value
	isWrt map[*ir.Value]bool
	needs map[*ir.Value]bool // value depends (through f32 values) on a Wrt constant
	opts  Options
}

// Gradients runs g on inputs and returns the loss and its gradients.
func Gradients(g *ir.Graph, inputs map[string]*ir.Tensor, loss Loss, opts Options) (*Result, error) {
	e, err := NewEngine(g, opts)
	if err != nil {
		return nil, err
	}
	return e.Gradients(inputs, loss)
}

// NewEngine compiles g and works out which values carry gradients. It
// reports every op on a gradient path that has no VJP, naming the value.
func NewEngine(g *ir.Graph, opts Options) (*Engine, error) {
	prog, err := runtime.Compile(g)
	if err != nil {
		return nil, fmt.Errorf("grad: %w", err)
	}
	order, err := g.Topo()
	if err != nil {
		return nil, fmt.Errorf("grad: %w", err)
	}
	e := &Engine{g: g, prog: prog, order: order, isWrt: map[*ir.Value]bool{}, needs: map[*ir.Value]bool{}, opts: opts}
	if opts.Wrt == nil {
		for _, v := range order {
			if v.IsConst() && v.Const.DType == ir.F32 && v.Const.Len() > 1 {
				e.wrt = append(e.wrt, v)
			}
		}
	} else {
		for _, v := range opts.Wrt {
			if v == nil || !v.IsConst() || v.Const.DType != ir.F32 {
				return nil, fmt.Errorf("grad: %s is not an f32 constant", v)
			}
			if v.Graph() != g {
				return nil, fmt.Errorf("grad: %s is not in graph %q", v, g.Name)
			}
			e.wrt = append(e.wrt, v)
		}
	}
	for _, v := range e.wrt {
		e.isWrt[v] = true
	}
	for _, v := range order {
		if e.isWrt[v] {
			e.needs[v] = true
			continue
		}
		if v.Type.DType != ir.F32 {
			continue // integer and bool values carry no gradient
		}
		for _, a := range v.Args() {
			if a != nil && e.needs[a] {
				e.needs[v] = true
				break
			}
		}
	}
	// Only values the outputs depend on are differentiated, so report
	// missing VJPs among those alone.
	live := map[*ir.Value]bool{}
	for _, o := range g.Outputs {
		live[o.Value] = true
	}
	var errs []error
	for i := len(order) - 1; i >= 0; i-- {
		v := order[i]
		if !live[v] {
			continue
		}
		for _, a := range v.Args() {
			if a != nil {
				live[a] = true
			}
		}
		if e.needs[v] && !v.IsConst() && vjpTable[v.Op] == nil {
			errs = append(errs, fmt.Errorf("grad: %s: no gradient for op %s", v, v.Op))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

// Wrt returns the constants the engine differentiates.
func (e *Engine) Wrt() []*ir.Value { return e.wrt }

// Gradients runs one batch. With Options.SampleSquares it runs the samples
// one at a time (see Options).
func (e *Engine) Gradients(inputs map[string]*ir.Tensor, loss Loss) (*Result, error) {
	out, err := e.output(loss.Output)
	if err != nil {
		return nil, err
	}
	if !e.opts.SampleSquares {
		l, n, grads, err := e.pass(inputs, loss, out)
		if err != nil {
			return nil, err
		}
		return &Result{Loss: l, Grads: e.tensors(grads, 1), Samples: n}, nil
	}
	n, err := batchSize(inputs, loss)
	if err != nil {
		return nil, err
	}
	res := &Result{Grads: map[*ir.Value]*ir.Tensor{}, SqGrads: map[*ir.Value]*ir.Tensor{}, Samples: n}
	for _, w := range e.wrt {
		res.Grads[w] = ir.MustTensor(ir.F32, w.Const.Shape...)
		res.SqGrads[w] = ir.MustTensor(ir.F32, w.Const.Shape...)
	}
	inv := float32(1 / float64(n))
	for i := range n {
		in, l, err := sampleOf(inputs, loss, i, n)
		if err != nil {
			return nil, err
		}
		li, _, grads, err := e.pass(in, l, out)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		res.Loss += li / float64(n)
		for _, w := range e.wrt {
			gi := grads[w]
			if gi == nil {
				continue
			}
			acc, sq := res.Grads[w].F32(), res.SqGrads[w].F32()
			for j, x := range gi {
				acc[j] += inv * x
				sq[j] += x * x
			}
		}
	}
	return res, nil
}

func (e *Engine) output(name string) (*ir.Value, error) {
	if len(e.g.Outputs) == 0 {
		return nil, errors.New("grad: graph has no outputs")
	}
	if name == "" {
		return e.g.Outputs[0].Value, nil
	}
	for _, o := range e.g.Outputs {
		if o.Name == name {
			return o.Value, nil
		}
	}
	return nil, fmt.Errorf("grad: graph has no output %q", name)
}

// tensors wraps raw gradients as tensors, zero for constants the loss does
// not depend on (so callers can index every Wrt constant).
func (e *Engine) tensors(grads map[*ir.Value][]float32, scale float32) map[*ir.Value]*ir.Tensor {
	m := make(map[*ir.Value]*ir.Tensor, len(e.wrt))
	for _, w := range e.wrt {
		g := grads[w]
		if g == nil {
			m[w] = ir.MustTensor(ir.F32, w.Const.Shape...)
			continue
		}
		if scale != 1 {
			for i := range g {
				g[i] *= scale
			}
		}
		m[w] = ir.F32Tensor(append([]int64{}, w.Const.Shape...), g)
	}
	return m
}

// pass is one forward and backward pass; it returns the mean loss, the
// number of samples and the raw gradients of the Wrt constants.
func (e *Engine) pass(inputs map[string]*ir.Tensor, loss Loss, out *ir.Value) (float64, int, map[*ir.Value][]float32, error) {
	r, err := e.prog.RunWith(inputs, runtime.RunOptions{Keep: true})
	if err != nil {
		return 0, 0, nil, fmt.Errorf("grad: forward: %w", err)
	}
	vals := r.Values
	for _, in := range e.g.Inputs {
		vals[in] = inputs[in.Name]
	}
	logits := vals[out]
	if logits == nil && out.IsConst() {
		logits = out.Const
	}
	l, n, seed, err := lossGrad(logits, loss)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("grad: loss on %s: %w", out, err)
	}
	grads, err := e.backward(vals, out, seed)
	return l, n, grads, err
}

// backward propagates seed (the gradient of out) to the Wrt constants.
// Gradients of intermediates are dropped as soon as they are consumed.
func (e *Engine) backward(vals map[*ir.Value]*ir.Tensor, out *ir.Value, seed []float32) (map[*ir.Value][]float32, error) {
	grads := map[*ir.Value][]float32{}
	if !e.needs[out] {
		return grads, nil
	}
	grads[out] = seed
	tensorOf := func(a *ir.Value) *ir.Tensor {
		if a == nil {
			return nil
		}
		if a.IsConst() {
			return a.Const
		}
		return vals[a]
	}
	for i := len(e.order) - 1; i >= 0; i-- {
		v := e.order[i]
		g := grads[v]
		if g == nil || v.Op == ir.OpConst || v.Op == ir.OpInput {
			continue
		}
		delete(grads, v)
		c := &vctx{v: v, out: vals[v], g: g}
		anyNeed := false
		for _, a := range v.Args() {
			c.args = append(c.args, tensorOf(a))
			need := a != nil && e.needs[a]
			c.need = append(c.need, need)
			anyNeed = anyNeed || need
		}
		if !anyNeed {
			continue
		}
		c.res = make([][]float32, len(c.args))
		f := vjpTable[v.Op]
		if f == nil {
			return nil, fmt.Errorf("grad: %s: no gradient for op %s", v, v.Op)
		}
		if err := f(c); err != nil {
			return nil, fmt.Errorf("grad: %s: %w", v, err)
		}
		for j, a := range v.Args() {
			ga := c.res[j]
			if ga == nil || !c.need[j] {
				continue
			}
			if len(ga) != tensorOf(a).Len() {
				return nil, fmt.Errorf("grad: %s: gradient of argument %d has %d elements, want %d (a grad bug)", v, j, len(ga), tensorOf(a).Len())
			}
			if prev := grads[a]; prev != nil {
				addInto(prev, ga)
			} else {
				grads[a] = ga
			}
		}
	}
	return grads, nil
}

// lossGrad returns the mean loss over samples, the sample count and
// ∂(mean loss)/∂logits. Sums run in float64: the loss is compared against
// finite differences and summed over calibration sets.
func lossGrad(z *ir.Tensor, l Loss) (float64, int, []float32, error) {
	if z == nil || z.DType != ir.F32 || len(z.Shape) < 1 {
		return 0, 0, nil, errors.New("logits must be an f32 tensor of rank ≥ 1")
	}
	c := int(z.Shape[len(z.Shape)-1])
	n := prod(z.Shape[:len(z.Shape)-1])
	if c == 0 || n == 0 {
		return 0, 0, nil, fmt.Errorf("empty logits %v", z.Shape)
	}
	zs := z.F32()
	grad := make([]float32, len(zs))
	var total float64
	p := make([]float64, c)
	switch l.Kind {
	case "ce", "":
		if len(l.Labels) != n {
			return 0, 0, nil, fmt.Errorf("%d labels for %d samples", len(l.Labels), n)
		}
		for i := range n {
			y := l.Labels[i]
			if y < 0 || y >= int64(c) {
				return 0, 0, nil, fmt.Errorf("label %d of sample %d outside [0, %d)", y, i, c)
			}
			lse := softmax64(zs[i*c:(i+1)*c], p)
			total += lse - float64(zs[i*c+int(y)])
			for j := range c {
				d := p[j]
				if j == int(y) {
					d--
				}
				grad[i*c+j] = float32(d / float64(n))
			}
		}
	case "kl":
		if l.Teacher == nil || l.Teacher.DType != ir.F32 || l.Teacher.Len() != len(zs) {
			return 0, 0, nil, fmt.Errorf("kl loss needs f32 teacher logits shaped like %v", z.Shape)
		}
		ts := l.Teacher.F32()
		q := make([]float64, c)
		for i := range n {
			lseZ := softmax64(zs[i*c:(i+1)*c], p)
			lseT := softmax64(ts[i*c:(i+1)*c], q)
			for j := range c {
				if q[j] > 0 {
					// log q - log p = (t - lseT) - (z - lseZ)
					total += q[j] * ((float64(ts[i*c+j]) - lseT) - (float64(zs[i*c+j]) - lseZ))
				}
				grad[i*c+j] = float32((p[j] - q[j]) / float64(n))
			}
		}
	default:
		return 0, 0, nil, fmt.Errorf("unknown loss kind %q (want ce or kl)", l.Kind)
	}
	return total / float64(n), n, grad, nil
}

// softmax64 writes softmax(z) into p and returns logsumexp(z).
func softmax64(z []float32, p []float64) float64 {
	m := math.Inf(-1)
	for _, x := range z {
		m = max(m, float64(x))
	}
	var s float64
	for j, x := range z {
		p[j] = math.Exp(float64(x) - m)
		s += p[j]
	}
	for j := range p {
		p[j] /= s
	}
	return m + math.Log(s)
}
