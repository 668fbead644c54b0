package ptl

import (
	"fmt"
	"slices"

	"github.com/pqvc/pqvc/ir"
)

// Dynamic int8 linear layers as PyTorch Mobile runs them.
//
// quantize int8 mode=dynamic leaves, per weight, the subgraph
//
//	s, z = dynamic range of x   (ReduceMin/ReduceMax, Sub, Div, Round, Clip, Cast ...)
//	Mul(Cast(MatMulInteger(QuantizeLinear(x, s, z), W, z [, wz]), f32), Mul(s, ws))
//
// which is exactly quantized::linear_dynamic(x, packed(W, ws, wz)): u8
// activations quantized per tensor at run time, int8 weights. The packed
// form stores W as a qint8 tensor and runs QNNPACK's (or oneDNN's) int8
// GEMM instead of converting W to float on every call.

var opLinearDynamic = &atenOp{Name: "quantized::linear_dynamic", Fn: "ops.quantized.linear_dynamic"}

// packedLinear is a LinearPackedParamsBase constant: weight [out, in] int8
// with a per-tensor scale and zero point.
type packedLinear struct {
	weight *ir.Tensor
	scale  float64
	zero   int64
	bias   *ir.Tensor // f32 [out], or nil
}

// pickle is the TorchBind object as torch pickles it: the class, then
// __setstate__'s (qweight, bias) tuple; bias is the pickled bias tensor or
// None.
func (w *packedLinear) pickle(storage pyPersistent, bias any) any {
	shape, stride := shapeStride(w.weight.Shape)
	qweight := pyReduce{
		Func: pyGlobal{"torch._utils", "_rebuild_qtensor"},
		Args: pyTuple{storage, 0, shape, stride,
			pyTuple{pyGlobal{"torch", "per_tensor_affine"}, w.scale, w.zero},
			false, pyReduce{Func: pyGlobal{"collections", "OrderedDict"}, Args: pyTuple{}}},
	}
	return pyObject{Class: pyGlobal{"__torch__.torch.classes.quantized", "LinearPackedParamsBase"}, State: pyTuple{qweight, bias}}
}

// dynLinear is one matched dynamic int8 linear layer.
type dynLinear struct {
	x      *ir.Value // f32 activations
	packed *packedLinear
}

// matchDynLinear recognises the dynamic int8 linear pattern rooted at the
// rescaling Mul v.
func matchDynLinear(v *ir.Value) (*dynLinear, bool) {
	if v.Op != "Mul" || v.Type.DType != ir.F32 {
		return nil, false
	}
	for i := range 2 {
		cast, scale := v.Arg(i), v.Arg(1-i)
		if cast == nil || scale == nil || cast.Op != "Cast" || cast.Type.DType != ir.F32 {
			continue
		}
		mm := cast.Arg(0)
		if mm == nil || mm.Op != "MatMulInteger" {
			continue
		}
		q := mm.Arg(0)
		if q == nil || q.Op != "QuantizeLinear" || q.Type.DType != ir.U8 || q.Arg(2) == nil || mm.Arg(2) != q.Arg(2) {
			continue
		}
		x, s, z := q.Arg(0), q.Arg(1), q.Arg(2)
		if x.Type.DType != ir.F32 || len(shape(s)) != 0 || !dynamicRangeOf(s, x, 16) || !dynamicRangeOf(z, x, 16) {
			continue
		}
		w := mm.Arg(1)
		if !w.IsConst() || w.Const.DType != ir.I8 || len(w.Const.Shape) != 2 {
			continue
		}
		var wz int64
		if bz := mm.Arg(3); bz != nil {
			zs, ok := ir.ConstInts(bz)
			if !ok || len(zs) != 1 {
				continue
			}
			wz = zs[0]
		}
		ws, ok := weightScale(scale, s)
		if !ok {
			continue
		}
		return &dynLinear{x: x, packed: &packedLinear{weight: transpose2D[int8](w.Const), scale: ws, zero: wz}}, true
	}
	return nil, false
}

// weightScale returns ws when m is Mul(s, ws) with ws a constant scalar.
func weightScale(m, s *ir.Value) (float64, bool) {
	if m.Op != "Mul" {
		return 0, false
	}
	for i := range 2 {
		if m.Arg(i) != s {
			continue
		}
		fs, ok := ir.ConstFloats(m.Arg(1 - i))
		if ok && len(fs) == 1 && fs[0] > 0 {
			return fs[0], true
		}
	}
	return 0, false
}

// dynamicRangeOf reports whether v is computed from constants and full
// ReduceMin/ReduceMax of x only: a run-time per-tensor quantization
// parameter of x.
func dynamicRangeOf(v, x *ir.Value, depth int) bool {
	if v.IsConst() {
		return true
	}
	if depth == 0 {
		return false
	}
	switch v.Op {
	case "ReduceMin", "ReduceMax":
		return v.Arg(0) == x && len(v.Ints("axes")) == 0 && v.Int("keepdims") == 0
	case "Max", "Min", "Sub", "Div", "Neg", "Clip", "Round", "Cast", "Mul", "Add":
		for _, a := range v.Args() {
			if a != nil && !dynamicRangeOf(a, x, depth-1) {
				return false
			}
		}
		return v.NumArgs() > 0
	}
	return false
}

// liveValues returns the values the outputs need, given that each matched
// linear layer (a key of matches) reads only its activations (the value).
func liveValues(g *ir.Graph, matches map[*ir.Value]*ir.Value) map[*ir.Value]bool {
	live := map[*ir.Value]bool{}
	var stack []*ir.Value
	for _, o := range g.Outputs {
		stack = append(stack, o.Value)
	}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if v == nil || live[v] {
			continue
		}
		live[v] = true
		if x := matches[v]; x != nil {
			stack = append(stack, x)
			continue
		}
		stack = append(stack, slices.Clone(v.Args())...)
	}
	return live
}

// lowerDynamicQuantizeMatMul lowers ONNX Runtime's fused form of the same
// pattern: packed when the weight is a constant with per-tensor parameters,
// otherwise spelled out as the graph would compute it.
func lowerDynamicQuantizeMatMul(l *lowerer, v *ir.Value) (operand, error) {
	a, b, bs, bz, bias := v.Arg(0), v.Arg(1), v.Arg(2), v.Arg(3), v.Arg(4)
	if l.packed {
		if w, ok := packedFrom(b, bs, bz, bias); ok {
			x, err := l.in(a)
			if err != nil {
				return operand{}, fmt.Errorf("A: %w", err)
			}
			y := l.p.call(opLinearDynamic, x, l.p.addPacked(w), boolLit(false))
			if bias != nil && w.bias == nil {
				bo, err := l.in(bias)
				if err != nil {
					return operand{}, fmt.Errorf("bias: %w", err)
				}
				y = l.p.call(opAdd, y, bo)
			}
			return y, nil
		}
	}
	x, err := l.in(a)
	if err != nil {
		return operand{}, fmt.Errorf("A: %w", err)
	}
	// DynamicQuantizeLinear: u8, per tensor, range widened to include 0.
	all := make([]int64, len(shape(a)))
	for i := range all {
		all[i] = int64(i)
	}
	zero := l.scalarConst(0)
	lo := l.p.call(opMinimum, l.p.call(opAmin, x, intsLit(all), boolLit(false)), zero)
	hi := l.p.call(opMaximum, l.p.call(opAmax, x, intsLit(all), boolLit(false)), zero)
	scale := l.p.call(opDiv, l.p.call(opSub, hi, lo), l.scalarConst(255))
	scale = l.p.call(opMaximum, scale, l.scalarConst(1e-30))
	zp := l.p.call(opRound, l.p.call(opClamp, l.p.call(opNeg, l.p.call(opDiv, lo, scale)), floatLit(0), floatLit(255)))
	q := l.p.call(opClamp, l.p.call(opAdd, l.p.call(opRound, l.p.call(opDiv, x, scale)), zp), floatLit(0), floatLit(255))
	af := l.p.call(opSub, q, zp) // exact small integers in f32
	bf, err := l.floatOf(b)
	if err != nil {
		return operand{}, fmt.Errorf("B: %w", err)
	}
	if bz != nil && !isZero(bz) {
		z, err := l.floatOf(bz)
		if err != nil {
			return operand{}, fmt.Errorf("b_zero_point: %w", err)
		}
		bf = l.p.call(opSub, bf, z)
	}
	bso, err := l.floatOf(bs)
	if err != nil {
		return operand{}, fmt.Errorf("b_scale: %w", err)
	}
	y := l.p.call(opMul, l.p.call(opMatmul, af, bf), l.p.call(opMul, scale, bso))
	if bias != nil {
		bo, err := l.in(bias)
		if err != nil {
			return operand{}, fmt.Errorf("bias: %w", err)
		}
		y = l.p.call(opAdd, y, bo)
	}
	return y, nil
}

// packedFrom builds packed weights from a constant [K, N] int8 weight with
// a per-tensor scale and zero point; a constant [N] f32 bias goes in too.
func packedFrom(b, bs, bz, bias *ir.Value) (*packedLinear, bool) {
	if !b.IsConst() || b.Const.DType != ir.I8 || len(b.Const.Shape) != 2 {
		return nil, false
	}
	scale, ok := ir.ConstFloats(bs)
	if !ok || len(scale) != 1 || scale[0] <= 0 {
		return nil, false
	}
	w := &packedLinear{weight: transpose2D[int8](b.Const), scale: scale[0]}
	if bz != nil {
		zs, ok := ir.ConstInts(bz)
		if !ok || len(zs) != 1 {
			return nil, false
		}
		w.zero = zs[0]
	}
	if bias != nil && bias.IsConst() && bias.Const.DType == ir.F32 && len(bias.Const.Shape) == 1 && bias.Const.Shape[0] == b.Const.Shape[1] {
		w.bias = bias.Const
	}
	return w, true
}
