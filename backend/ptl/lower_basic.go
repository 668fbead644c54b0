package ptl

import (
	"fmt"
	"slices"

	"github.com/pqvc/pqvc/ir"
)

// Elementwise, shape and reduction lowerings.

func init() {
	for name, op := range unaryOps {
		lowerings[name] = func(l *lowerer, v *ir.Value) (operand, error) {
			x, err := l.arg(v, 0)
			if err != nil {
				return operand{}, err
			}
			return l.p.call(op, x), nil
		}
	}
	for name, op := range binaryOps {
		lowerings[name] = func(l *lowerer, v *ir.Value) (operand, error) {
			return l.binary(op, v)
		}
	}
	lowerings["Div"] = func(l *lowerer, v *ir.Value) (operand, error) {
		if v.Type.DType.IsInt() {
			// ONNX integer division truncates; torch's "/" is true division.
			a, b, err := l.twoArgs(v)
			if err != nil {
				return operand{}, err
			}
			return l.p.call(opDivMode, a, b, strLit("trunc")), nil
		}
		return l.binary(opDiv, v)
	}
	lowerings["Mod"] = func(l *lowerer, v *ir.Value) (operand, error) {
		if v.Int("fmod") == 1 {
			return l.binary(opFmod, v)
		}
		return l.binary(opRemainder, v)
	}
	lowerings["Where"] = func(l *lowerer, v *ir.Value) (operand, error) {
		c, err := l.arg(v, 0)
		if err != nil {
			return operand{}, err
		}
		a, b, err := l.argsFrom(v, 1)
		if err != nil {
			return operand{}, err
		}
		return l.p.call(opWhere, c, a, b), nil
	}
	lowerings["Identity"] = func(l *lowerer, v *ir.Value) (operand, error) { return l.arg(v, 0) }
	lowerings["Cast"] = lowerCast
	lowerings["Clip"] = lowerClip
	lowerings["Gelu"] = func(l *lowerer, v *ir.Value) (operand, error) {
		x, err := l.arg(v, 0)
		if err != nil {
			return operand{}, err
		}
		if a := v.Str("approximate"); a != "none" {
			return l.p.call(opGelu, x, strLit(a)), nil
		}
		return l.p.call(opGelu, x), nil
	}
	lowerings["LeakyRelu"] = func(l *lowerer, v *ir.Value) (operand, error) {
		x, err := l.arg(v, 0)
		if err != nil {
			return operand{}, err
		}
		return l.p.call(opLeakyRelu, x, floatLit(float64(v.Float("alpha")))), nil
	}
	for _, name := range []string{"Reshape", "Flatten", "Squeeze", "Unsqueeze"} {
		lowerings[name] = lowerReshape
	}
	lowerings["Expand"] = func(l *lowerer, v *ir.Value) (operand, error) {
		x, err := l.arg(v, 0)
		if err != nil {
			return operand{}, err
		}
		if v.Arg(0).Type.Shape.Equal(v.Type.Shape) {
			return x, nil
		}
		return l.p.call(opExpand, x, intsLit(shape(v))), nil
	}
	lowerings["Transpose"] = func(l *lowerer, v *ir.Value) (operand, error) {
		x, err := l.arg(v, 0)
		if err != nil {
			return operand{}, err
		}
		perm := v.Ints("perm")
		if perm == nil {
			r := len(v.Type.Shape)
			for i := range r {
				perm = append(perm, int64(r-1-i))
			}
		}
		return l.p.call(opPermute, x, intsLit(perm)), nil
	}
	lowerings["Concat"] = func(l *lowerer, v *ir.Value) (operand, error) {
		var xs []operand
		for i := range v.NumArgs() {
			x, err := l.arg(v, i)
			if err != nil {
				return operand{}, err
			}
			xs = append(xs, x)
		}
		return l.p.call(opCat, tensorList(xs), intLit(v.Int("axis"))), nil
	}
	lowerings["Slice"] = lowerSlice
	lowerings["Gather"] = lowerGather
	lowerings["Shape"] = func(l *lowerer, v *ir.Value) (operand, error) {
		// Shapes are static here, so Shape is a constant.
		s := shape(v.Arg(0))
		r := int64(len(s))
		start, end := v.Int("start"), r
		if v.HasAttr("end") {
			end = v.Int("end")
		}
		if start < 0 {
			start += r
		}
		if end < 0 {
			end += r
		}
		start, end = max(0, min(start, r)), max(0, min(end, r))
		end = max(start, end)
		return l.p.addTensor(ir.I64Tensor([]int64{end - start}, append([]int64(nil), s[start:end]...))), nil
	}
	lowerings["Tile"] = func(l *lowerer, v *ir.Value) (operand, error) {
		x, err := l.arg(v, 0)
		if err != nil {
			return operand{}, err
		}
		reps, ok := ir.ConstInts(v.Arg(1))
		if !ok {
			return operand{}, fmt.Errorf("repeats must be constant")
		}
		return l.p.call(opRepeat, x, intsLit(reps)), nil
	}
	reductions := map[string]*atenOp{"ReduceMean": opMean, "ReduceSum": opSum, "ReduceMax": opAmax, "ReduceMin": opAmin, "ReduceSumSquare": opSum}
	for name, op := range reductions {
		lowerings[name] = func(l *lowerer, v *ir.Value) (operand, error) {
			x, err := l.arg(v, 0)
			if err != nil {
				return operand{}, err
			}
			r := len(v.Arg(0).Type.Shape)
			axes := v.Ints("axes")
			if len(axes) == 0 {
				if v.Int("noop_with_empty_axes") == 1 {
					return x, nil
				}
				for i := range r {
					axes = append(axes, int64(i))
				}
			}
			if name == "ReduceSumSquare" {
				x = l.p.call(opMul, x, x)
			}
			return l.p.call(op, x, intsLit(axes), boolLit(v.Int("keepdims") == 1)), nil
		}
	}
	lowerings["GlobalAveragePool"] = func(l *lowerer, v *ir.Value) (operand, error) {
		x, err := l.arg(v, 0)
		if err != nil {
			return operand{}, err
		}
		var axes []int64
		for i := 2; i < len(v.Type.Shape); i++ {
			axes = append(axes, int64(i))
		}
		return l.p.call(opMean, x, intsLit(axes), boolLit(true)), nil
	}
}

func (l *lowerer) twoArgs(v *ir.Value) (operand, operand, error) { return l.argsFrom(v, 0) }

func (l *lowerer) argsFrom(v *ir.Value, i int) (operand, operand, error) {
	a, err := l.arg(v, i)
	if err != nil {
		return operand{}, operand{}, err
	}
	b, err := l.arg(v, i+1)
	if err != nil {
		return operand{}, operand{}, err
	}
	return a, b, nil
}

func (l *lowerer) binary(op *atenOp, v *ir.Value) (operand, error) {
	a, b, err := l.twoArgs(v)
	if err != nil {
		return operand{}, err
	}
	return l.p.call(op, a, b), nil
}

func lowerCast(l *lowerer, v *ir.Value) (operand, error) {
	x := v.Arg(0)
	to := v.Type.DType
	if l.exactFloat[x] && to == ir.F32 {
		return l.vals[x], nil // the integer sums are already exact floats
	}
	a, err := l.arg(v, 0)
	if err != nil {
		return operand{}, err
	}
	if x.Type.DType == to {
		return a, nil
	}
	code, ok := scalarType[to]
	if !ok {
		return operand{}, fmt.Errorf("cast to %v is not supported", to)
	}
	return l.p.call(opTo, a, intLit(code)), nil
}

func lowerClip(l *lowerer, v *ir.Value) (operand, error) {
	x, err := l.arg(v, 0)
	if err != nil {
		return operand{}, err
	}
	lo, hi := v.Arg(1), v.Arg(2)
	if lo == nil && hi == nil {
		return x, nil
	}
	// Constant float bounds become scalars: clamp's Scalar overload.
	scalar := func(b *ir.Value) (operand, bool) {
		if b == nil {
			return noneLit(), true
		}
		fs, ok := ir.ConstFloats(b)
		if !ok || len(fs) != 1 || !v.Type.DType.IsFloat() {
			return operand{}, false
		}
		if _, err := floatSource(fs[0]); err != nil {
			return operand{}, false
		}
		return floatLit(fs[0]), true
	}
	ls, lok := scalar(lo)
	hs, hok := scalar(hi)
	if lok && hok {
		return l.p.call(opClamp, x, ls, hs), nil
	}
	bound := func(b *ir.Value) (operand, error) {
		if b == nil {
			return noneLit(), nil
		}
		return l.in(b)
	}
	lt, err := bound(lo)
	if err != nil {
		return operand{}, fmt.Errorf("min: %w", err)
	}
	ht, err := bound(hi)
	if err != nil {
		return operand{}, fmt.Errorf("max: %w", err)
	}
	return l.p.call(opClampT, x, lt, ht), nil
}

func lowerReshape(l *lowerer, v *ir.Value) (operand, error) {
	x, err := l.arg(v, 0)
	if err != nil {
		return operand{}, err
	}
	if v.Arg(0).Type.Shape.Equal(v.Type.Shape) {
		return x, nil
	}
	// Shapes are static, so the inferred result shape is the target.
	return l.p.call(opReshape, x, intsLit(shape(v))), nil
}

func lowerSlice(l *lowerer, v *ir.Value) (operand, error) {
	x, err := l.arg(v, 0)
	if err != nil {
		return operand{}, err
	}
	starts, ends, axes, steps, ok := ir.SliceParams(v)
	if !ok {
		return operand{}, fmt.Errorf("starts, ends, axes and steps must be constant")
	}
	in := shape(v.Arg(0))
	for i, ax := range axes {
		n := in[ax]
		s, e, st := starts[i], ends[i], int64(1)
		if steps != nil {
			st = steps[i]
		}
		if st <= 0 {
			return operand{}, fmt.Errorf("step %d on axis %d: only positive steps are supported", st, ax)
		}
		if s < 0 {
			s += n
		}
		if e < 0 {
			e += n
		}
		s, e = max(0, min(s, n)), max(0, min(e, n))
		e = max(s, e)
		if s == 0 && e == n && st == 1 {
			continue
		}
		x = l.p.call(opSlice, x, intLit(ax), intLit(s), intLit(e), intLit(st))
	}
	return x, nil
}

func lowerGather(l *lowerer, v *ir.Value) (operand, error) {
	x, err := l.arg(v, 0)
	if err != nil {
		return operand{}, err
	}
	in := shape(v.Arg(0))
	axis, err := normAxis(v.Int("axis"), len(in))
	if err != nil {
		return operand{}, err
	}
	n := in[axis]
	idx := v.Arg(1)
	if ids, ok := ir.ConstInts(idx); ok {
		ids = slices.Clone(ids) // the constant's data is shared
		for i, id := range ids {
			if id < -n || id >= n {
				return operand{}, fmt.Errorf("index %d out of range for dim %d", id, n)
			}
			if id < 0 {
				ids[i] = id + n
			}
		}
		if len(idx.Type.Shape) == 0 {
			return l.p.call(opSelect, x, intLit(axis), intLit(ids[0])), nil
		}
		t := l.p.addTensor(ir.I64Tensor([]int64{int64(len(ids))}, ids))
		y := l.p.call(opIndexSelect, x, intLit(axis), t)
		if len(idx.Type.Shape) != 1 {
			y = l.p.call(opReshape, y, intsLit(shape(v)))
		}
		return y, nil
	}
	t, err := l.arg(v, 1)
	if err != nil {
		return operand{}, err
	}
	// Run-time indices: flatten, wrap negatives (remainder takes the
	// divisor's sign), select, then restore the result's shape.
	t = l.p.call(opReshape, t, intsLit([]int64{-1}))
	t = l.p.call(opRemainderS, t, intLit(n))
	y := l.p.call(opIndexSelect, x, intLit(axis), t)
	return l.p.call(opReshape, y, intsLit(shape(v))), nil
}
