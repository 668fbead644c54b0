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
	// Checkpoint bounds activation memory. The forward pass keeps only the
	// values that cross the boundaries of about √n segments of the graph's
	// n steps; the backward pass recomputes one segment's values from them
	// just before differentiating it, and drops them after. A ViT then
	// holds a few residual-stream tensors per block instead of every
	// intermediate, for the price of one more forward pass. Gradients are
	// bit-identical either way.
	Checkpoint bool
	// NoPackCache compiles the forward program without its cache of
	// packed weights, which is as large as the weights (see
	// runtime.CompileOptions).
	NoPackCache bool
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
	// done[i] lists the Wrt constants whose gradient is complete once the
	// backward pass has handled order[i] (their first user).
	done map[int][]*ir.Value
	// segs are the recomputation segments: order[segs[k]:segs[k+1]]. One
	// segment (the whole graph) without Options.Checkpoint.
	segs []int
	keep map[*ir.Value]bool // values the forward pass keeps (Checkpoint)
	opts Options
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
	co := runtime.CompileOptions{PackCacheBytes: runtime.DefaultPackCache()}
	if opts.NoPackCache {
		co.PackCacheBytes = 0
	}
	prog, err := runtime.CompileWith(g, co)
	if err != nil {
		return nil, fmt.Errorf("grad: %w", err)
	}
	order, err := g.Topo()
	if err != nil {
		return nil, fmt.Errorf("grad: %w", err)
	}
	e := &Engine{g: g, prog: prog, order: order, opts: opts}
	e.plan()
	wrt := opts.Wrt
	if wrt == nil {
		wrt = []*ir.Value{}
		for _, v := range order {
			if v.IsConst() && v.Const.DType == ir.F32 && v.Const.Len() > 1 {
				wrt = append(wrt, v)
			}
		}
	}
	if err := e.setWrt(wrt); err != nil {
		return nil, err
	}
	return e, nil
}

// With returns an engine that differentiates wrt instead, sharing this
// one's compiled program and segments (e.g. to sweep the weights in
// chunks whose gradients fit in memory).
func (e *Engine) With(wrt []*ir.Value) (*Engine, error) {
	c := &Engine{g: e.g, prog: e.prog, order: e.order, segs: e.segs, keep: e.keep, opts: e.opts}
	c.opts.Wrt = wrt
	if err := c.setWrt(wrt); err != nil {
		return nil, err
	}
	return c, nil
}

// Program is the engine's forward program (e.g. for pseudo-labels, without
// compiling and packing the weights a second time).
func (e *Engine) Program() *runtime.Program { return e.prog }

// setWrt checks the constants to differentiate and derives which values
// carry gradients and when each constant's gradient is complete.
func (e *Engine) setWrt(wrt []*ir.Value) error {
	g := e.g
	e.wrt, e.isWrt, e.needs, e.done = nil, map[*ir.Value]bool{}, map[*ir.Value]bool{}, map[int][]*ir.Value{}
	for _, v := range wrt {
		if v == nil || !v.IsConst() || v.Const.DType != ir.F32 {
			return fmt.Errorf("grad: %s is not an f32 constant", v)
		}
		if v.Graph() != g {
			return fmt.Errorf("grad: %s is not in graph %q", v, g.Name)
		}
		e.wrt = append(e.wrt, v)
		e.isWrt[v] = true
	}
	pos := make(map[*ir.Value]int, len(e.order))
	for i, v := range e.order {
		pos[v] = i
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
	for _, w := range e.wrt {
		first := -1
		for _, u := range w.Uses() {
			if i, ok := pos[u]; ok && (first < 0 || i < first) {
				first = i
			}
		}
		if first >= 0 {
			e.done[first] = append(e.done[first], w)
		}
	}
	// Only values the outputs depend on are differentiated, so report
	// missing VJPs among those alone.
	live := map[*ir.Value]bool{}
	for _, o := range g.Outputs {
		live[o.Value] = true
	}
	var errs []error
	for i := len(e.order) - 1; i >= 0; i-- {
		v := e.order[i]
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
	return errors.Join(errs...)
}

// plan splits the topological order into recomputation segments. With
// Checkpoint there are about √n segments of equal step counts; a value is
// kept by the forward pass when a later segment (or the loss) reads it.
func (e *Engine) plan() {
	n := 0
	for _, v := range e.order {
		if !v.IsConst() && v.Op != ir.OpInput {
			n++
		}
	}
	e.segs = []int{0}
	if e.opts.Checkpoint && n > 0 {
		per := max(1, int(math.Ceil(float64(n)/math.Ceil(math.Sqrt(float64(n))))))
		steps := 0
		for i, v := range e.order {
			if v.IsConst() || v.Op == ir.OpInput {
				continue
			}
			if steps > 0 && steps%per == 0 {
				e.segs = append(e.segs, i)
			}
			steps++
		}
	}
	e.segs = append(e.segs, len(e.order))
	if !e.opts.Checkpoint {
		return
	}
	seg := make(map[*ir.Value]int, len(e.order))
	for k := 0; k+1 < len(e.segs); k++ {
		for _, v := range e.order[e.segs[k]:e.segs[k+1]] {
			seg[v] = k
		}
	}
	e.keep = map[*ir.Value]bool{}
	for _, o := range e.g.Outputs {
		e.keep[o.Value] = true
	}
	for _, v := range e.order {
		if v.IsConst() || v.Op == ir.OpInput {
			continue
		}
		for _, u := range v.Uses() {
			if s, ok := seg[u]; ok && s != seg[v] {
				e.keep[v] = true
				break
			}
		}
	}
}

// Wrt returns the constants the engine differentiates.
func (e *Engine) Wrt() []*ir.Value { return e.wrt }

// Gradients runs one batch. With Options.SampleSquares it runs the samples
// one at a time (see Options).
func (e *Engine) Gradients(inputs map[string]*ir.Tensor, loss Loss) (*Result, error) {
	if !e.opts.SampleSquares {
		out, err := e.output(loss.Output)
		if err != nil {
			return nil, err
		}
		grads := map[*ir.Value][]float32{}
		l, n, err := e.pass(inputs, loss, out, func(w *ir.Value, g []float32) { grads[w] = g }, nil)
		if err != nil {
			return nil, err
		}
		return &Result{Loss: l, Grads: e.tensors(grads, 1), Samples: n}, nil
	}
	res := &Result{Grads: map[*ir.Value]*ir.Tensor{}, SqGrads: map[*ir.Value]*ir.Tensor{}}
	for _, w := range e.wrt {
		res.Grads[w] = ir.MustTensor(ir.F32, w.Const.Shape...)
		res.SqGrads[w] = ir.MustTensor(ir.F32, w.Const.Shape...)
	}
	if err := e.AddTo(res, inputs, loss); err != nil {
		return nil, err
	}
	inv := 1 / float64(res.Samples)
	res.Loss *= inv
	for _, t := range res.Grads {
		for j := range t.F32() {
			t.F32()[j] *= float32(inv)
		}
	}
	return res, nil
}

// AddTo runs one batch and adds its sample-weighted results into acc:
// acc.Grads[w] += N·∂(mean loss)/∂w (the sum of per-sample gradients),
// acc.Loss += N·(mean loss), acc.Samples += N, and with SampleSquares
// acc.SqGrads[w] += Σ_i (∂L_i/∂w)². A nil acc.Grads or acc.SqGrads map is
// not collected; missing entries are allocated. Each gradient is added as
// soon as the backward pass completes it, so a pass never holds all of the
// model's gradients at once.
func (e *Engine) AddTo(acc *Result, inputs map[string]*ir.Tensor, loss Loss) error {
	out, err := e.output(loss.Output)
	if err != nil {
		return err
	}
	add := func(m map[*ir.Value]*ir.Tensor, w *ir.Value, g []float32, f func(dst []float32, g []float32)) {
		if m == nil {
			return
		}
		t := m[w]
		if t == nil {
			t = ir.MustTensor(ir.F32, w.Const.Shape...)
			m[w] = t
		}
		f(t.F32(), g)
	}
	if !e.opts.SampleSquares {
		var n float32
		sink := func(w *ir.Value, g []float32) {
			add(acc.Grads, w, g, func(dst, g []float32) {
				for j, x := range g {
					dst[j] += n * x
				}
			})
		}
		l, cnt, err := e.pass(inputs, loss, out, sink, func(samples int) { n = float32(samples) })
		if err != nil {
			return err
		}
		acc.Loss += l * float64(cnt)
		acc.Samples += cnt
		return nil
	}
	n, err := batchSize(inputs, loss)
	if err != nil {
		return err
	}
	for i := range n {
		in, l, err := sampleOf(inputs, loss, i, n)
		if err != nil {
			return err
		}
		li, _, err := e.pass(in, l, out, func(w *ir.Value, g []float32) {
			add(acc.Grads, w, g, func(dst, g []float32) {
				for j, x := range g {
					dst[j] += x
				}
			})
			add(acc.SqGrads, w, g, func(dst, g []float32) {
				for j, x := range g {
					dst[j] += x * x
				}
			})
		}, nil)
		if err != nil {
			return fmt.Errorf("sample %d: %w", i, err)
		}
		acc.Loss += li
		acc.Samples++
	}
	return nil
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

// pass is one forward and backward pass. It returns the mean loss and the
// number of samples, and hands each Wrt constant's gradient of the mean
// loss to sink once complete (constants the loss does not reach get no
// call). counted, if not nil, learns the sample count before any sink call.
func (e *Engine) pass(inputs map[string]*ir.Tensor, loss Loss, out *ir.Value, sink func(*ir.Value, []float32), counted func(int)) (float64, int, error) {
	r, err := e.prog.RunWith(inputs, runtime.RunOptions{Keep: !e.opts.Checkpoint, KeepOnly: e.keep})
	if err != nil {
		return 0, 0, fmt.Errorf("grad: forward: %w", err)
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
		return 0, 0, fmt.Errorf("grad: loss on %s: %w", out, err)
	}
	if counted != nil {
		counted(n)
	}
	return l, n, e.backward(vals, out, seed, sink)
}

// backward propagates seed (the gradient of out) to the Wrt constants,
// segment by segment from the last: it recomputes the segment's values
// that the forward pass did not keep, differentiates its steps in reverse
// order, and drops its values. Gradients of intermediates are dropped as
// soon as they are consumed, and a constant's gradient goes to sink as
// soon as its first user (in topological order) has been handled.
func (e *Engine) backward(vals map[*ir.Value]*ir.Tensor, out *ir.Value, seed []float32, sink func(*ir.Value, []float32)) error {
	if !e.needs[out] {
		return nil
	}
	grads := map[*ir.Value][]float32{out: seed}
	tensorOf := func(a *ir.Value) *ir.Tensor {
		if a == nil {
			return nil
		}
		if a.IsConst() {
			return a.Const
		}
		return vals[a]
	}
	for k := len(e.segs) - 2; k >= 0 && len(grads) > 0; k-- {
		seg := e.order[e.segs[k]:e.segs[k+1]]
		if err := e.recompute(seg, vals, tensorOf); err != nil {
			return err
		}
		for i := len(seg) - 1; i >= 0; i-- {
			if err := e.step(seg[i], vals, grads, tensorOf); err != nil {
				return err
			}
			for _, w := range e.done[e.segs[k]+i] {
				if g := grads[w]; g != nil {
					sink(w, g)
					delete(grads, w)
				}
			}
		}
		for _, v := range seg {
			if v.Op != ir.OpInput {
				delete(vals, v)
			}
		}
	}
	// Constants whose users are all off the gradient path got nothing;
	// anything left is complete now.
	for _, w := range e.wrt {
		if g := grads[w]; g != nil {
			sink(w, g)
		}
	}
	return nil
}

// recompute evaluates the values of one segment that the forward pass did
// not keep.
func (e *Engine) recompute(seg []*ir.Value, vals map[*ir.Value]*ir.Tensor, tensorOf func(*ir.Value) *ir.Tensor) error {
	var args []*ir.Tensor
	for _, v := range seg {
		if v.IsConst() || v.Op == ir.OpInput || vals[v] != nil {
			continue
		}
		args = args[:0]
		for _, a := range v.Args() {
			args = append(args, tensorOf(a))
		}
		t, err := e.prog.Eval(v, args)
		if err != nil {
			return fmt.Errorf("grad: recompute: %w", err)
		}
		vals[v] = t
	}
	return nil
}

// step applies v's VJP to its pending gradient, if any.
func (e *Engine) step(v *ir.Value, vals map[*ir.Value]*ir.Tensor, grads map[*ir.Value][]float32, tensorOf func(*ir.Value) *ir.Tensor) error {
	g := grads[v]
	if g == nil || v.Op == ir.OpConst || v.Op == ir.OpInput {
		return nil
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
		return nil
	}
	c.res = make([][]float32, len(c.args))
	f := vjpTable[v.Op]
	if f == nil {
		return fmt.Errorf("grad: %s: no gradient for op %s", v, v.Op)
	}
	if err := f(c); err != nil {
		return fmt.Errorf("grad: %s: %w", v, err)
	}
	for j, a := range v.Args() {
		ga := c.res[j]
		if ga == nil || !c.need[j] {
			continue
		}
		if len(ga) != tensorOf(a).Len() {
			return fmt.Errorf("grad: %s: gradient of argument %d has %d elements, want %d (a grad bug)", v, j, len(ga), tensorOf(a).Len())
		}
		if prev := grads[a]; prev != nil {
			addInto(prev, ga)
		} else {
			grads[a] = ga
		}
	}
	return nil
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
