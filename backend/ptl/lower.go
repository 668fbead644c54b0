package ptl

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
)

// lowerer turns a static-shaped graph into a program.
type lowerer struct {
	p      *program
	packed bool                  // dynamic int8 linear layers become quantized::linear_dynamic
	vals   map[*ir.Value]operand // lowered result of each value
	// exactFloat marks MatMulInteger results: they are held as float32
	// tensors whose values are the exact integer sums, so the Cast to f32
	// that always follows costs nothing. asInt caches their int32 form for
	// any other user.
	exactFloat map[*ir.Value]bool
	asInt      map[*ir.Value]operand
	consts     map[*ir.Value]operand
}

// lowerFunc lowers one value; it returns the operand holding v's result.
type lowerFunc func(l *lowerer, v *ir.Value) (operand, error)

// lowerings maps IR op names to their lowering; filled in init functions
// next to the lowerings themselves.
var lowerings = map[string]lowerFunc{}

// Supported reports whether Write can lower op.
func Supported(op string) bool { _, ok := lowerings[op]; return ok }

// lower builds the program for g. With packed, dynamic int8 linear layers
// become quantized::linear_dynamic calls on packed weights; with xnnpack,
// f32 ones become prepacked::linear_clamp_run.
func lower(g *ir.Graph, packed, xnnpack bool) (*program, error) {
	l := &lowerer{
		p:          newProgram(className, len(g.Inputs)),
		packed:     packed,
		vals:       map[*ir.Value]operand{},
		exactFloat: map[*ir.Value]bool{},
		asInt:      map[*ir.Value]operand{},
		consts:     map[*ir.Value]operand{},
	}
	for i, in := range g.Inputs {
		if in.Type.DType != ir.F32 {
			return nil, fmt.Errorf("input %q is %v; only f32 inputs are supported", in.Name, in.Type.DType)
		}
		l.vals[in] = reg(l.p.inputs[i])
	}
	order, err := g.Topo()
	if err != nil {
		return nil, err
	}
	// Linear layers with packed weights: matched first, so the values only
	// they read (int8 arithmetic, the f32 MatMul) are never lowered.
	dyn := map[*ir.Value]*dynLinear{}
	f32 := map[*ir.Value]*f32Linear{}
	reads := map[*ir.Value]*ir.Value{}
	for _, v := range order {
		if m, ok := matchDynLinear(v); ok && packed {
			dyn[v], reads[v] = m, m.x
		} else if m, ok := matchF32Linear(v); ok && xnnpack {
			f32[v], reads[v] = m, m.x
		}
	}
	live := liveValues(g, reads)
	for _, v := range order {
		if v.Op == ir.OpInput || v.Op == ir.OpConst || !live[v] {
			continue
		}
		if x := reads[v]; x != nil {
			xo, err := l.in(x)
			if err != nil {
				return nil, fmt.Errorf("node %s (%s): %w", nodeName(v), v.Op, err)
			}
			if m := dyn[v]; m != nil {
				l.vals[v] = l.p.call(opLinearDynamic, xo, l.p.addPacked(m.packed), boolLit(false))
			} else {
				l.vals[v] = l.p.call(opLinearClampRun, xo, l.p.addPacked(f32[v].ctx))
			}
			continue
		}
		f := lowerings[v.Op]
		if f == nil {
			if allConst(v) {
				// A constant computation canonicalize left (too big to
				// fold there): evaluate it here.
				t, err := canon.Eval(v)
				if err != nil {
					return nil, fmt.Errorf("node %s: %w", v, err)
				}
				l.vals[v] = l.p.addTensor(t)
				continue
			}
			return nil, fmt.Errorf("node %s (%s): no TorchScript mapping", nodeName(v), v.Op)
		}
		out, err := f(l, v)
		if err != nil {
			return nil, fmt.Errorf("node %s (%s): %w", nodeName(v), v.Op, err)
		}
		l.vals[v] = out
	}
	for _, o := range g.Outputs {
		a, err := l.in(o.Value)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", o.Name, err)
		}
		if l.exactFloat[o.Value] {
			return nil, fmt.Errorf("output %q: an int32 MatMulInteger result as graph output is not supported", o.Name)
		}
		l.p.outputs = append(l.p.outputs, a)
	}
	if len(l.p.outputs) == 0 {
		return nil, fmt.Errorf("graph has no outputs")
	}
	return l.p, nil
}

// nodeName names v in errors: source name and ID (the op follows).
func nodeName(v *ir.Value) string {
	if v.Name != "" {
		return fmt.Sprintf("%q (#%d)", v.Name, v.ID)
	}
	return fmt.Sprintf("#%d", v.ID)
}

func allConst(v *ir.Value) bool {
	n := 0
	for _, a := range v.Args() {
		if a == nil {
			continue
		}
		if !a.IsConst() || a.Const.Opaque() {
			return false
		}
		n++
	}
	return n > 0
}

// in returns the operand for v as a tensor of v's IR dtype.
func (l *lowerer) in(v *ir.Value) (operand, error) {
	if v == nil {
		return operand{}, fmt.Errorf("missing argument")
	}
	if v.Op == ir.OpConst {
		if c, ok := l.consts[v]; ok {
			return c, nil
		}
		if v.Const == nil || v.Const.Opaque() {
			return operand{}, fmt.Errorf("constant %s has no data", v)
		}
		if _, ok := storageClass(v.Const.DType); !ok {
			return operand{}, fmt.Errorf("constant %s: dtype %v cannot be stored", v, v.Const.DType)
		}
		c := l.p.addTensor(v.Const)
		l.consts[v] = c
		return c, nil
	}
	a, ok := l.vals[v]
	if !ok {
		return operand{}, fmt.Errorf("value %s used before it is computed", v)
	}
	if l.exactFloat[v] {
		if c, ok := l.asInt[v]; ok {
			return c, nil
		}
		c := l.p.call(opTo, a, intLit(scalarType[ir.I32]))
		l.asInt[v] = c
		return c, nil
	}
	return a, nil
}

// arg is in(v.Arg(i)) with the argument number in errors.
func (l *lowerer) arg(v *ir.Value, i int) (operand, error) {
	a, err := l.in(v.Arg(i))
	if err != nil {
		return operand{}, fmt.Errorf("argument %d: %w", i, err)
	}
	return a, nil
}

// floatOf returns v converted to f32 (a stored f32 copy for constants).
func (l *lowerer) floatOf(v *ir.Value) (operand, error) {
	// Small constants (scales, zero points) get an f32 copy; weights keep
	// their stored dtype (int8 stays int8) and convert in the model.
	if v.IsConst() && v.Const.DType != ir.F32 && v.Const.Len() <= smallConst {
		xs, err := v.Const.AsFloat64s()
		if err != nil {
			return operand{}, fmt.Errorf("constant %s: %w", v, err)
		}
		f := make([]float32, len(xs))
		for i, x := range xs {
			f[i] = float32(x)
		}
		return l.p.addTensor(ir.F32Tensor(v.Const.Shape, f)), nil
	}
	if l.exactFloat[v] {
		return l.vals[v], nil
	}
	a, err := l.in(v)
	if err != nil {
		return operand{}, err
	}
	if v.Type.DType == ir.F32 {
		return a, nil
	}
	return l.p.call(opTo, a, intLit(scalarType[ir.F32])), nil
}

// smallConst is the largest constant floatOf converts at compile time.
const smallConst = 64

// shape returns v's static shape.
func shape(v *ir.Value) []int64 {
	s, _ := v.Type.Shape.Ints()
	return s
}

// scalarType is torch's ScalarType code of each dtype (c10/core/ScalarType.h).
var scalarType = map[ir.DType]int64{
	ir.U8: 0, ir.I8: 1, ir.I32: 3, ir.I64: 4, ir.F16: 5, ir.F32: 6, ir.F64: 7, ir.Bool: 11,
}

// normAxis makes a possibly negative axis non-negative for rank r.
func normAxis(axis int64, r int) (int64, error) {
	if axis < 0 {
		axis += int64(r)
	}
	if axis < 0 || axis >= int64(r) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, r)
	}
	return axis, nil
}
