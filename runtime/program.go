// Package runtime is pqvc's reference interpreter over ir.Graph.
//
// Compile checks that every op has a kernel and plans buffer lifetimes; Run
// binds inputs (checking dtypes and static and symbolic dims), executes values
// in topological order and frees each intermediate after its last use.
// Matrix products go to runtime/kernels (packed, blocked, SIMD, multi-core);
// weights that feed MatMul/Gemm are packed once per Program (within a byte
// budget, see CompileOptions). Calibration,
// importance and evaluation all run graphs through here, and the tests hold
// its results against ONNX Runtime.
package runtime

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pqvc/pqvc/ir"
)

// kernel computes one value from its arguments' tensors (nil for omitted).
type kernel func(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error)

var kernelTable = map[string]kernel{}

func register(op string, k kernel) {
	if _, dup := kernelTable[op]; dup {
		panic("runtime: duplicate kernel " + op)
	}
	kernelTable[op] = k
}

// Supported reports whether the runtime can execute op.
func Supported(op string) bool { return kernelTable[op] != nil || op == ir.OpInput || op == ir.OpConst }

// Program is a graph prepared for execution. It is safe for concurrent Runs.
type Program struct {
	g       *ir.Graph
	steps   []step
	nslots  int
	inSlot  map[*ir.Value]int
	outSlot []int
	consts  []constSlot

	packMu    sync.Mutex
	packed    map[*ir.Value]any // per-weight packed forms, built on first use
	packLimit int64             // bytes of packed forms kept; <0 unlimited
	packBytes int64             // bytes of packed forms kept so far
}

// CompileOptions tune a Program.
type CompileOptions struct {
	// PackCacheBytes bounds the per-weight prepared forms (packed GEMM
	// panels, dequantized int8 weights) a Program keeps between runs. They
	// are as large as the weights themselves, so an unbounded cache doubles
	// a model's memory. Past the bound, a float MatMul reads its weight
	// directly (the GEMM packs it block by block into a reused workspace,
	// with the same bits) and a dequantized weight is rebuilt on each use.
	// Negative means unlimited.
	PackCacheBytes int64
}

// defaultPackCache is the PackCacheBytes that Compile uses.
var defaultPackCache atomic.Int64

func init() { defaultPackCache.Store(-1) }

// SetDefaultPackCache sets the PackCacheBytes of Programs made by Compile
// from now on (negative: unlimited, the initial setting) and returns the
// previous value. The CLI bounds it for large models, as it bounds the Go
// heap.
func SetDefaultPackCache(bytes int64) int64 { return defaultPackCache.Swap(bytes) }

// DefaultPackCache is the PackCacheBytes that Compile uses.
func DefaultPackCache() int64 { return defaultPackCache.Load() }

type step struct {
	v       *ir.Value
	k       kernel
	slot    int
	args    []int // slot per argument, -1 for omitted
	release []int // slots whose last use is this step

	// bias, when set, is a constant per-column bias that a following Add
	// would apply: this MatMul adds it in its GEMM epilogue instead, and
	// that Add (biasAdd) passes the result through. Used only on plain
	// runs, where nobody observes the MatMul's own value.
	bias    *ir.Tensor
	biasAdd bool
}

type constSlot struct {
	slot int
	t    *ir.Tensor
}

// Compile prepares g for execution with the default options.
func Compile(g *ir.Graph) (*Program, error) {
	return CompileWith(g, CompileOptions{PackCacheBytes: DefaultPackCache()})
}

// CompileWith prepares g for execution.
func CompileWith(g *ir.Graph, opts CompileOptions) (*Program, error) {
	order, err := g.Topo()
	if err != nil {
		return nil, err
	}
	p := &Program{g: g, inSlot: map[*ir.Value]int{}, packed: map[*ir.Value]any{}, packLimit: opts.PackCacheBytes}
	slot := map[*ir.Value]int{}
	var errs []error
	for _, v := range order {
		slot[v] = p.nslots
		p.nslots++
		switch v.Op {
		case ir.OpInput:
			p.inSlot[v] = slot[v]
		case ir.OpConst:
			if v.Const == nil || v.Const.Opaque() {
				errs = append(errs, fmt.Errorf("%s: constant data not available", v))
			}
			p.consts = append(p.consts, constSlot{slot[v], v.Const})
		default:
			k := kernelTable[v.Op]
			if k == nil {
				errs = append(errs, fmt.Errorf("%s: op %s has no runtime kernel", v, v.Op))
				continue
			}
			st := step{v: v, k: k, slot: slot[v]}
			for _, a := range v.Args() {
				if a == nil {
					st.args = append(st.args, -1)
				} else {
					st.args = append(st.args, slot[a])
				}
			}
			p.steps = append(p.steps, st)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.fuseBiases()
	// Free each computed value after its last use, unless it is an output.
	keep := map[int]bool{}
	for _, o := range g.Outputs {
		keep[slot[o.Value]] = true
		p.outSlot = append(p.outSlot, slot[o.Value])
	}
	for _, c := range p.consts {
		keep[c.slot] = true
	}
	for s := range p.inSlot {
		keep[slot[s]] = true
	}
	last := map[int]int{}
	for i, st := range p.steps {
		for _, a := range st.args {
			if a >= 0 {
				last[a] = i
			}
		}
	}
	for s, i := range last {
		if !keep[s] {
			p.steps[i].release = append(p.steps[i].release, s)
		}
	}
	return p, nil
}

// Graph returns the graph the program runs.
func (p *Program) Graph() *ir.Graph { return p.g }

// RunOptions control one Run.
type RunOptions struct {
	// Observe, if set, is called with every computed value and its tensor
	// (in execution order), e.g. to collect calibration statistics. The
	// tensor must not be modified or retained past the call unless Keep is set.
	Observe func(v *ir.Value, t *ir.Tensor)
	// Keep retains every intermediate (for gradients); Result.Values has them.
	Keep bool
	// KeepOnly, when Keep is false, retains just these values in
	// Result.Values and frees the rest as usual (checkpoints for a
	// backward pass that recomputes the others with Eval).
	KeepOnly map[*ir.Value]bool
}

// Result is what Run returns.
type Result struct {
	Outputs map[string]*ir.Tensor
	Values  map[*ir.Value]*ir.Tensor // only with RunOptions.Keep
}

// Run executes the program on named inputs.
func (p *Program) Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	r, err := p.RunWith(inputs, RunOptions{})
	if err != nil {
		return nil, err
	}
	return r.Outputs, nil
}

// RunWith executes the program with options.
func (p *Program) RunWith(inputs map[string]*ir.Tensor, opts RunOptions) (*Result, error) {
	vals := make([]*ir.Tensor, p.nslots)
	for _, c := range p.consts {
		vals[c.slot] = c.t
	}
	binds := map[string]int64{}
	for _, in := range p.g.Inputs {
		t, ok := inputs[in.Name]
		if !ok {
			return nil, fmt.Errorf("input %q not given", in.Name)
		}
		if err := checkInput(in, t, binds); err != nil {
			return nil, err
		}
		vals[p.inSlot[in]] = t
	}
	for name := range inputs {
		found := false
		for _, in := range p.g.Inputs {
			found = found || in.Name == name
		}
		if !found {
			return nil, fmt.Errorf("the model has no input %q", name)
		}
	}
	x := &execCtx{p: p}
	// A fused MatMul's slot holds the biased sum, so it cannot be observed
	// or kept.
	fused := opts.Observe == nil && !opts.Keep && opts.KeepOnly == nil
	res := &Result{Outputs: map[string]*ir.Tensor{}}
	if opts.Keep || opts.KeepOnly != nil {
		res.Values = map[*ir.Value]*ir.Tensor{}
	}
	args := make([]*ir.Tensor, 0, 16)
	for i := range p.steps {
		st := &p.steps[i]
		args = args[:0]
		for _, a := range st.args {
			if a < 0 {
				args = append(args, nil)
			} else {
				args = append(args, vals[a])
			}
		}
		var t *ir.Tensor
		var err error
		switch {
		case fused && st.biasAdd:
			t = args[biasAddOperand(st)]
		case fused && st.bias != nil:
			t, err = matmulBias(x, st.v, args, st.bias)
		default:
			t, err = st.k(x, st.v, args)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.v, err)
		}
		if t.DType != st.v.Type.DType || len(t.Shape) != st.v.Type.Rank() {
			return nil, fmt.Errorf("%s: kernel produced %v%v, graph says %v (a runtime bug)", st.v, t.DType, t.Shape, st.v.Type)
		}
		vals[st.slot] = t
		if opts.Observe != nil {
			opts.Observe(st.v, t)
		}
		if opts.Keep {
			res.Values[st.v] = t
		} else {
			if opts.KeepOnly[st.v] {
				res.Values[st.v] = t
			}
			for _, s := range st.release {
				vals[s] = nil
			}
		}
	}
	for i, o := range p.g.Outputs {
		res.Outputs[o.Name] = vals[p.outSlot[i]]
	}
	return res, nil
}

// fuseBiases marks MatMul steps (constant 2-D weight, one user) whose only
// user adds a constant bias over the last dim: the GEMM adds the bias in
// its epilogue and the Add step passes the result on. Exporters write every
// Linear layer this way, so this saves a pass over every activation.
func (p *Program) fuseBiases() {
	index := map[*ir.Value]int{}
	for i, st := range p.steps {
		index[st.v] = i
	}
	outputs := map[*ir.Value]bool{}
	for _, o := range p.g.Outputs {
		outputs[o.Value] = true
	}
	for i := range p.steps {
		st := &p.steps[i]
		v := st.v
		w := v.Arg(1)
		if v.Op != "MatMul" || v.Type.DType != ir.F32 || w == nil || !w.IsConst() || w.Type.Rank() != 2 ||
			v.Arg(0).Type.Rank() < 2 || len(v.Uses()) != 1 || outputs[v] {
			continue
		}
		add := v.Uses()[0]
		if add.Op != "Add" || add.Arg(0) == add.Arg(1) {
			continue
		}
		b := add.Arg(0)
		if b == v {
			b = add.Arg(1)
		}
		n := w.Type.Shape[1].C
		if !b.IsConst() || b.Const.DType != ir.F32 || int64(b.Const.Len()) != n || b.Type.Rank() > 1 ||
			!add.Type.Shape.Equal(v.Type.Shape) {
			continue
		}
		j, ok := index[add]
		if !ok {
			continue
		}
		st.bias = b.Const
		p.steps[j].biasAdd = true
	}
}

// biasAddOperand is the argument position of the fused MatMul in an Add.
func biasAddOperand(st *step) int {
	if st.v.Arg(0).IsConst() {
		return 1
	}
	return 0
}

// checkInput verifies a tensor against a graph input's type, binding each
// symbolic dim to a size on first sight and checking it after.
func checkInput(in *ir.Value, t *ir.Tensor, binds map[string]int64) error {
	if t == nil {
		return fmt.Errorf("input %q is nil", in.Name)
	}
	if t.DType != in.Type.DType {
		return fmt.Errorf("input %q is %v, the model wants %v", in.Name, t.DType, in.Type.DType)
	}
	if len(t.Shape) != in.Type.Rank() {
		return fmt.Errorf("input %q has shape %v, the model wants %v", in.Name, t.Shape, in.Type)
	}
	for i, d := range in.Type.Shape {
		n := t.Shape[i]
		switch {
		case d.IsStatic():
			if n != d.C {
				return fmt.Errorf("input %q has shape %v, the model wants %v (dim %d)", in.Name, t.Shape, in.Type, i)
			}
		case d.C == 1 && !d.IsUnknown() && d.Syms != "":
			if b, ok := binds[d.Syms]; ok && b != n {
				return fmt.Errorf("input %q dim %d (%s) is %d, but %s is %d elsewhere", in.Name, i, d.Syms, n, d.Syms, b)
			}
			binds[d.Syms] = n
		}
	}
	if t.Len() != lenOf(t) {
		return fmt.Errorf("input %q: data length does not match shape %v", in.Name, t.Shape)
	}
	return nil
}

func lenOf(t *ir.Tensor) int {
	switch d := t.Data.(type) {
	case []float32:
		return len(d)
	case []uint16:
		return len(d)
	case []int8:
		return len(d)
	case []uint8:
		return len(d)
	case []int32:
		return len(d)
	case []int64:
		return len(d)
	case []bool:
		return len(d)
	case []float64:
		return len(d)
	}
	return -1
}

// execCtx is per-Run state handed to kernels.
type execCtx struct {
	p *Program
}

// Eval computes one value of the program's graph from its arguments'
// tensors (nil for omitted ones), as a Run would: a backward pass uses it
// to recompute activations it did not keep.
func (p *Program) Eval(v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	k := kernelTable[v.Op]
	if k == nil {
		return nil, fmt.Errorf("%s: op %s has no runtime kernel", v, v.Op)
	}
	t, err := k(&execCtx{p: p}, v, args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v, err)
	}
	return t, nil
}

// packedFor returns a per-weight prepared form, building it once and
// keeping it while the Program's pack cache has room (else building it for
// this use only).
func (x *execCtx) packedFor(v *ir.Value, build func() any) any {
	if pk := x.packedIfRoom(v, build); pk != nil {
		return pk
	}
	return build()
}

// packedIfRoom returns v's cached prepared form, building and caching it
// if the pack cache has room, or nil when it has none. Its size is taken
// as four bytes per element of v (the float form; int8 panels are
// smaller, so the bound errs on the safe side).
func (x *execCtx) packedIfRoom(v *ir.Value, build func() any) any {
	p := x.p
	p.packMu.Lock()
	defer p.packMu.Unlock()
	if pk, ok := p.packed[v]; ok {
		return pk
	}
	size := int64(4)
	for _, d := range v.Type.Shape {
		size *= max(d.C, 1)
	}
	if p.packLimit >= 0 && p.packBytes+size > p.packLimit {
		return nil
	}
	pk := build()
	p.packed[v] = pk
	p.packBytes += size
	return pk
}
