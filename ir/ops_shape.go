package ir

import (
	"fmt"
	"math"
	"slices"
)

func init() {
	RegisterOp(&OpDef{Name: "Reshape", MinArgs: 2, MaxArgs: 2, Pure: true, Attrs: []AttrDef{intAttr("allowzero", 0)},
		Doc: "reshape x to the shape held in the second argument (0 copies a dim, -1 is inferred)", Infer: inferReshape})
	RegisterOp(&OpDef{Name: "Transpose", MinArgs: 1, MaxArgs: 1, Pure: true, Attrs: []AttrDef{intsAttr("perm")},
		Doc: "permute dims (default: reverse)", Infer: inferTranspose})
	RegisterOp(&OpDef{Name: "Flatten", MinArgs: 1, MaxArgs: 1, Pure: true, Attrs: []AttrDef{intAttr("axis", 1)},
		Doc: "flatten to 2-D at axis", Infer: inferFlatten})
	RegisterOp(&OpDef{Name: "Concat", MinArgs: 1, MaxArgs: -1, Pure: true, Attrs: []AttrDef{{Name: "axis", Kind: AttrInt, Required: true}},
		Doc: "concatenate along axis", Infer: inferConcat})
	RegisterOp(&OpDef{Name: "Slice", MinArgs: 3, MaxArgs: 5, Pure: true,
		Doc: "slice x with starts, ends, axes, steps (ONNX 13 form)", Infer: inferSlice})
	RegisterOp(&OpDef{Name: "Squeeze", MinArgs: 1, MaxArgs: 2, Pure: true,
		Doc: "remove size-1 dims listed in axes (all if none)", Infer: inferSqueeze})
	RegisterOp(&OpDef{Name: "Unsqueeze", MinArgs: 2, MaxArgs: 2, Pure: true,
		Doc: "insert size-1 dims at axes", Infer: inferUnsqueeze})
	RegisterOp(&OpDef{Name: "Gather", MinArgs: 2, MaxArgs: 2, Pure: true, Attrs: []AttrDef{intAttr("axis", 0)},
		Doc: "take entries along axis by integer indices", Infer: inferGather})
	RegisterOp(&OpDef{Name: "Expand", MinArgs: 2, MaxArgs: 2, Pure: true,
		Doc: "broadcast x to a shape", Infer: inferExpand})
	RegisterOp(&OpDef{Name: "Shape", MinArgs: 1, MaxArgs: 1, Pure: true, Attrs: []AttrDef{intAttr("start", 0), {Name: "end", Kind: AttrInt}},
		Doc: "the shape of x as an i64 vector", Infer: func(v *Value) (Type, error) {
			t, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			lo, hi := shapeRange(v, t.Rank())
			return Type{I64, StaticShape(int64(hi - lo))}, nil
		}})
	RegisterOp(&OpDef{Name: "ConstantOfShape", MinArgs: 1, MaxArgs: 1, Pure: true, Attrs: []AttrDef{{Name: "value", Kind: AttrTensor}},
		Doc: "a tensor of the given shape filled with value (default f32 0)", Infer: func(v *Value) (Type, error) {
			dt := F32
			if t, ok := v.Attrs["value"].(*Tensor); ok {
				dt = t.DType
			}
			s, err := shapeArg(v, 1)
			if err != nil {
				return Type{}, err
			}
			return Type{dt, s}, nil
		}})
	RegisterOp(&OpDef{Name: "Range", MinArgs: 3, MaxArgs: 3, Pure: true,
		Doc: "start, start+delta, … up to limit", Infer: func(v *Value) (Type, error) {
			t, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			s, ok1 := ConstFloats(v.Arg(0))
			l, ok2 := ConstFloats(v.Arg(1))
			d, ok3 := ConstFloats(v.Arg(2))
			if ok1 && ok2 && ok3 && len(s) == 1 && len(l) == 1 && len(d) == 1 && d[0] != 0 {
				n := int64(max(0, math.Ceil((l[0]-s[0])/d[0])))
				return Type{t.DType, StaticShape(n)}, nil
			}
			return Type{t.DType, Shape{Unknown}}, nil
		}})
	RegisterOp(&OpDef{Name: "Tile", MinArgs: 2, MaxArgs: 2, Pure: true,
		Doc: "repeat x along each axis", Infer: func(v *Value) (Type, error) {
			t, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			reps, ok := ShapeValue(v.Arg(1))
			out := t.Shape.Clone()
			for i := range out {
				if ok && i < len(reps) && reps[i].C >= 0 {
					out[i] = out[i].Mul(reps[i])
				} else {
					out[i] = Unknown
				}
			}
			return Type{t.DType, out}, nil
		}})
}

// shapeArg reads a shape-valued argument (arg index i-1… kept 1-based in
// messages) as dims, or Unknown dims of the right rank when only the length
// is known.
func shapeArg(v *Value, argNo int) (Shape, error) {
	a := v.Arg(argNo - 1)
	if a == nil {
		return nil, fmt.Errorf("argument %d is missing", argNo-1)
	}
	if a.Type.Rank() != 1 {
		return nil, fmt.Errorf("shape argument has rank %d, want 1", a.Type.Rank())
	}
	if ds, ok := ShapeValue(a); ok {
		for _, d := range ds {
			if d.IsStatic() && d.C < 0 {
				return nil, fmt.Errorf("negative dim %d in shape", d.C)
			}
		}
		return ds, nil
	}
	n := a.Type.Shape[0]
	if !n.IsStatic() {
		return nil, fmt.Errorf("shape argument of unknown length")
	}
	s := make(Shape, n.C)
	for i := range s {
		s[i] = Unknown
	}
	return s, nil
}

func inferReshape(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	a := v.Arg(1)
	if a == nil || a.Type.Rank() != 1 || !a.Type.Shape[0].IsStatic() {
		return Type{}, fmt.Errorf("reshape target must be a 1-D tensor of known length")
	}
	target, ok := ShapeValue(a)
	if !ok {
		s := make(Shape, a.Type.Shape[0].C)
		for i := range s {
			s[i] = Unknown
		}
		return Type{t.DType, s}, nil
	}
	out := make(Shape, len(target))
	infer := -1
	known := Static(1)
	for i, d := range target {
		switch {
		case d.IsStatic() && d.C == -1:
			if infer >= 0 {
				return Type{}, fmt.Errorf("reshape target %v has more than one -1", target)
			}
			infer = i
			continue
		case d.IsStatic() && d.C == 0 && v.Int("allowzero") == 0:
			if i >= t.Rank() {
				return Type{}, fmt.Errorf("reshape target %v copies dim %d of a rank-%d input", target, i, t.Rank())
			}
			d = t.Shape[i]
		case d.IsStatic() && d.C < 0:
			return Type{}, fmt.Errorf("reshape target %v has negative dim %d", target, d.C)
		}
		out[i] = d
		known = known.Mul(d)
	}
	total := t.Shape.NumElements()
	if infer >= 0 {
		q, ok := total.Div(known)
		switch {
		case ok:
			out[infer] = q
		case total.IsStatic() && known.IsStatic():
			return Type{}, fmt.Errorf("cannot reshape %v to %v", t, target)
		default:
			out[infer] = Unknown
		}
	} else if total.IsStatic() && known.IsStatic() && total.C != known.C {
		return Type{}, fmt.Errorf("cannot reshape %v (%d elements) to %v (%d elements)", t, total.C, out, known.C)
	}
	return Type{t.DType, out}, nil
}

// unify picks the more informative of two dims known to be equal: static
// over symbolic, a named symbol over an unknown.
func unify(a, b Dim) Dim {
	switch {
	case a.IsStatic():
		return a
	case b.IsStatic():
		return b
	case a.IsUnknown():
		return b
	}
	return a
}

func inferTranspose(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	perm := v.Ints("perm")
	if perm == nil {
		for i := t.Rank() - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != t.Rank() {
		return Type{}, fmt.Errorf("perm %v has %d entries for rank %d", perm, len(perm), t.Rank())
	}
	seen := make([]bool, len(perm))
	out := make(Shape, len(perm))
	for i, p := range perm {
		if p < 0 || p >= int64(len(perm)) || seen[p] {
			return Type{}, fmt.Errorf("perm %v is not a permutation", perm)
		}
		seen[p] = true
		out[i] = t.Shape[p]
	}
	return Type{t.DType, out}, nil
}

func inferFlatten(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	axis := v.Int("axis")
	if axis < 0 {
		axis += int64(t.Rank())
	}
	if axis < 0 || axis > int64(t.Rank()) {
		return Type{}, fmt.Errorf("axis %d out of range for rank %d", v.Int("axis"), t.Rank())
	}
	return Type{t.DType, Shape{t.Shape[:axis].NumElements(), t.Shape[axis:].NumElements()}}, nil
}

func inferConcat(v *Value) (Type, error) {
	t0, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	axis, err := normAxis(v.Int("axis"), t0.Rank())
	if err != nil {
		return Type{}, err
	}
	out := t0.Shape.Clone()
	for i := 1; i < v.NumArgs(); i++ {
		t, err := argType(v, i)
		if err != nil {
			return Type{}, err
		}
		if t.Rank() != t0.Rank() || t.DType != t0.DType {
			return Type{}, fmt.Errorf("argument %d is %v, incompatible with %v", i, t, t0)
		}
		for j := range out {
			if j == axis {
				if out[j].IsStatic() && t.Shape[j].IsStatic() {
					out[j] = Static(out[j].C + t.Shape[j].C)
				} else {
					out[j] = Unknown
				}
			} else if out[j] != t.Shape[j] {
				if out[j].IsStatic() && t.Shape[j].IsStatic() {
					return Type{}, fmt.Errorf("argument %d is %v, incompatible with %v off axis %d", i, t, t0, axis)
				}
				out[j] = unify(out[j], t.Shape[j])
			}
		}
	}
	return Type{t0.DType, out}, nil
}

// SliceParams returns a Slice's constant starts, ends, axes (normalised) and
// steps, or ok=false when any is not constant.
func SliceParams(v *Value) (starts, ends, axes, steps []int64, ok bool) {
	rank := v.Arg(0).Type.Rank()
	if starts, ok = StaticInts(v.Arg(1)); !ok {
		return
	}
	if ends, ok = StaticInts(v.Arg(2)); !ok || len(ends) != len(starts) {
		return nil, nil, nil, nil, false
	}
	if a := v.Arg(3); a != nil {
		if axes, ok = StaticInts(a); !ok || len(axes) != len(starts) {
			return nil, nil, nil, nil, false
		}
		axes = slices.Clone(axes)
		for i, ax := range axes {
			n, err := normAxis(ax, rank)
			if err != nil {
				return nil, nil, nil, nil, false
			}
			axes[i] = int64(n)
		}
	} else {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if a := v.Arg(4); a != nil {
		if steps, ok = StaticInts(a); !ok || len(steps) != len(starts) {
			return nil, nil, nil, nil, false
		}
	} else {
		steps = make([]int64, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	return starts, ends, axes, steps, true
}

func inferSlice(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	out := t.Shape.Clone()
	starts, ends, axes, steps, ok := SliceParams(v)
	if !ok {
		// Parameters only known at run time: the sliced axes are unknown.
		if a, ok2 := ConstInts(v.Arg(3)); ok2 {
			for _, ax := range a {
				if n, err := normAxis(ax, t.Rank()); err == nil {
					out[n] = Unknown
				}
			}
			return Type{t.DType, out}, nil
		}
		for i := range out {
			out[i] = Unknown
		}
		return Type{t.DType, out}, nil
	}
	for i, ax := range axes {
		if steps[i] == 0 {
			return Type{}, fmt.Errorf("slice step is 0 on axis %d", ax)
		}
		d := t.Shape[ax]
		switch {
		case d.IsStatic():
			out[ax] = Static(SliceLen(starts[i], ends[i], steps[i], d.C))
		case starts[i] == 0 && ends[i] >= 1<<31-1 && steps[i] == 1:
			// Whole axis of a symbolic dim.
		default:
			out[ax] = Unknown
		}
	}
	return Type{t.DType, out}, nil
}

func inferSqueeze(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	drop := make([]bool, t.Rank())
	if a := v.Arg(1); a != nil {
		axes, ok := ConstInts(a)
		if !ok {
			return Type{}, fmt.Errorf("squeeze axes must be constant")
		}
		for _, ax := range axes {
			n, err := normAxis(ax, t.Rank())
			if err != nil {
				return Type{}, err
			}
			if d := t.Shape[n]; d.IsStatic() && d.C != 1 {
				return Type{}, fmt.Errorf("cannot squeeze axis %d of size %d", ax, d.C)
			}
			drop[n] = true
		}
	} else {
		for i, d := range t.Shape {
			drop[i] = d.IsStatic() && d.C == 1
		}
	}
	out := Shape{}
	for i, d := range t.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return Type{t.DType, out}, nil
}

func inferUnsqueeze(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	axes, ok := ConstInts(v.Arg(1))
	if !ok {
		return Type{}, fmt.Errorf("unsqueeze axes must be constant")
	}
	rank := t.Rank() + len(axes)
	ins := make([]bool, rank)
	for _, ax := range axes {
		n, err := normAxis(ax, rank)
		if err != nil {
			return Type{}, err
		}
		if ins[n] {
			return Type{}, fmt.Errorf("duplicate unsqueeze axis %d", ax)
		}
		ins[n] = true
	}
	out := make(Shape, 0, rank)
	j := 0
	for i := range rank {
		if ins[i] {
			out = append(out, Static(1))
		} else {
			out = append(out, t.Shape[j])
			j++
		}
	}
	return Type{t.DType, out}, nil
}

func inferGather(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	it, err := argType(v, 1)
	if err != nil {
		return Type{}, err
	}
	if it.DType != I64 && it.DType != I32 {
		return Type{}, fmt.Errorf("indices are %v, want i64 or i32", it.DType)
	}
	axis, err := normAxis(v.Int("axis"), t.Rank())
	if err != nil {
		return Type{}, err
	}
	if idx, ok := ConstInts(v.Arg(1)); ok && t.Shape[axis].IsStatic() {
		n := t.Shape[axis].C
		for _, i := range idx {
			if i < -n || i >= n {
				return Type{}, fmt.Errorf("index %d out of range for axis %d of size %d", i, axis, n)
			}
		}
	}
	out := append(append(t.Shape[:axis].Clone(), it.Shape...), t.Shape[axis+1:]...)
	return Type{t.DType, out}, nil
}

func inferExpand(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	s, err := shapeArg(v, 2)
	if err != nil {
		return Type{}, err
	}
	out, err := Broadcast(t.Shape, s)
	if err != nil {
		return Type{}, err
	}
	return Type{t.DType, out}, nil
}
