package ir

import "math"

// ConstInts returns the elements of an integer constant, or ok=false.
func ConstInts(v *Value) (vals []int64, ok bool) {
	if v == nil || !v.IsConst() {
		return nil, false
	}
	xs, err := v.Const.AsInt64s()
	return xs, err == nil
}

// ConstFloats returns the elements of a numeric constant as float64.
func ConstFloats(v *Value) ([]float64, bool) {
	if v == nil || !v.IsConst() {
		return nil, false
	}
	xs, err := v.Const.AsFloat64s()
	return xs, err == nil
}

// StaticInts returns the elements of a small integer tensor when they are
// all known before run time (a constant, or a foldable shape computation).
func StaticInts(v *Value) ([]int64, bool) {
	if xs, ok := ConstInts(v); ok {
		return xs, true
	}
	ds, ok := ShapeValue(v)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(ds))
	for i, d := range ds {
		if !d.IsStatic() {
			return nil, false
		}
		out[i] = d.C
	}
	return out, true
}

// ShapeValue returns the elements of a small integer tensor (rank ≤ 1) as dims
// when they can be known before run time: constants, and chains of Shape,
// Gather, Slice, Concat, Unsqueeze, Squeeze, Reshape, Cast and integer
// arithmetic over them. This is how inference follows a dynamic-batch export's
// Shape→Gather→Concat→Reshape chains. A static element may be negative (a
// Reshape target's -1); symbolic elements are products of dim symbols.
func ShapeValue(v *Value) ([]Dim, bool) { return shapeValue(v, 0) }

const maxShapeValueDepth = 64

func shapeValue(v *Value, depth int) ([]Dim, bool) {
	if v == nil || depth > maxShapeValueDepth || v.Type.Rank() > 1 || !(v.Type.DType.IsInt() || v.Type.DType == Bool) {
		return nil, false
	}
	arg := func(i int) ([]Dim, bool) { return shapeValue(v.Arg(i), depth+1) }
	switch v.Op {
	case OpConst:
		xs, ok := ConstInts(v)
		if !ok || len(xs) > 64 {
			return nil, false
		}
		ds := make([]Dim, len(xs))
		for i, x := range xs {
			ds[i] = Dim{C: x}
		}
		return ds, true
	case "Shape":
		s := v.Arg(0).Type.Shape
		lo, hi := shapeRange(v, len(s))
		return s[lo:hi].Clone(), true
	case "Identity", "Cast", "Unsqueeze", "Squeeze", "Reshape", "Flatten":
		return arg(0)
	case "Concat":
		var out []Dim
		for i := range v.NumArgs() {
			ds, ok := arg(i)
			if !ok {
				return nil, false
			}
			out = append(out, ds...)
		}
		return out, true
	case "Gather":
		data, ok1 := arg(0)
		idx, ok2 := arg(1)
		if !ok1 || !ok2 || v.Arg(0).Type.Rank() != 1 {
			return nil, false
		}
		out := make([]Dim, len(idx))
		for i, ix := range idx {
			if !ix.IsStatic() {
				return nil, false
			}
			j := ix.C
			if j < 0 {
				j += int64(len(data))
			}
			if j < 0 || j >= int64(len(data)) {
				return nil, false
			}
			out[i] = data[j]
		}
		return out, true
	case "Slice":
		data, ok := arg(0)
		starts, ok1 := StaticInts(v.Arg(1))
		ends, ok2 := StaticInts(v.Arg(2))
		if !ok || !ok1 || !ok2 || len(starts) != 1 || len(ends) != 1 {
			return nil, false
		}
		step := int64(1)
		if s, ok := StaticInts(v.Arg(4)); ok && len(s) == 1 {
			step = s[0]
		}
		idx := sliceIndices(starts[0], ends[0], step, int64(len(data)))
		out := make([]Dim, len(idx))
		for i, j := range idx {
			out[i] = data[j]
		}
		return out, true
	case "ConstantOfShape":
		n, ok := arg(0)
		if !ok || len(n) != 1 || !n[0].IsStatic() || n[0].C > 64 {
			return nil, false
		}
		fill := int64(0)
		if t, ok := v.Attrs["value"].(*Tensor); ok {
			xs, err := t.AsInt64s()
			if err != nil || len(xs) != 1 {
				return nil, false
			}
			fill = xs[0]
		}
		out := make([]Dim, n[0].C)
		for i := range out {
			out[i] = Dim{C: fill}
		}
		return out, true
	case "Equal":
		a, ok1 := arg(0)
		b, ok2 := arg(1)
		if !ok1 || !ok2 || len(a) != len(b) && len(a) != 1 && len(b) != 1 {
			return nil, false
		}
		n := max(len(a), len(b))
		out := make([]Dim, n)
		for i := range n {
			x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
			switch {
			case x == y:
				out[i] = Dim{C: 1}
			case x.IsStatic() && y.IsStatic(), x.IsStatic() && x.C < 0, y.IsStatic() && y.C < 0:
				out[i] = Dim{C: 0} // a symbolic dim is never negative
			default:
				return nil, false
			}
		}
		return out, true
	case "Where":
		c, ok0 := arg(0)
		a, ok1 := arg(1)
		b, ok2 := arg(2)
		if !ok0 || !ok1 || !ok2 {
			return nil, false
		}
		n := max(len(a), len(b), len(c))
		out := make([]Dim, n)
		for i := range n {
			cc := c[min(i, len(c)-1)]
			if !cc.IsStatic() {
				return nil, false
			}
			if cc.C != 0 {
				out[i] = a[min(i, len(a)-1)]
			} else {
				out[i] = b[min(i, len(b)-1)]
			}
		}
		return out, true
	case "Add", "Sub", "Mul", "Div":
		a, ok1 := arg(0)
		b, ok2 := arg(1)
		if !ok1 || !ok2 || len(a) != len(b) && len(a) != 1 && len(b) != 1 {
			return nil, false
		}
		n := max(len(a), len(b))
		out := make([]Dim, n)
		for i := range n {
			x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
			d, ok := dimArith(v.Op, x, y)
			if !ok {
				return nil, false
			}
			out[i] = d
		}
		return out, true
	}
	return nil, false
}

func dimArith(op string, x, y Dim) (Dim, bool) {
	if x.IsStatic() && y.IsStatic() {
		switch op {
		case "Add":
			return Dim{C: x.C + y.C}, true
		case "Sub":
			return Dim{C: x.C - y.C}, true
		case "Mul":
			return Dim{C: x.C * y.C}, true
		case "Div":
			if y.C == 0 {
				return Dim{}, false
			}
			// ONNX integer Div truncates, like Go's.
			return Dim{C: x.C / y.C}, true
		}
	}
	switch op {
	case "Mul":
		if x.C < 0 || y.C < 0 {
			return Dim{}, false
		}
		return x.Mul(y), true
	case "Div":
		return x.Div(y)
	}
	return Dim{}, false
}

// shapeRange applies Shape's start/end attributes (opset 15).
func shapeRange(v *Value, rank int) (int, int) {
	clamp := func(x int64) int {
		if x < 0 {
			x += int64(rank)
		}
		return int(min(max(x, 0), int64(rank)))
	}
	lo := clamp(v.Int("start"))
	hi := rank
	if v.HasAttr("end") {
		hi = clamp(v.Int("end"))
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// sliceIndices lists the indices ONNX Slice selects along an axis of size n.
func sliceIndices(start, end, step, n int64) []int64 {
	if step == 0 {
		return nil
	}
	lo, hi := sliceBounds(start, end, step, n)
	var idx []int64
	if step > 0 {
		for i := lo; i < hi; i += step {
			idx = append(idx, i)
		}
	} else {
		for i := lo; i > hi; i += step {
			idx = append(idx, i)
		}
	}
	return idx
}

// sliceBounds clamps start and end as the ONNX Slice spec says.
func sliceBounds(start, end, step, n int64) (int64, int64) {
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if step > 0 {
		start = min(max(start, 0), n)
		end = min(max(end, 0), n)
	} else {
		start = min(max(start, 0), n-1)
		end = min(max(end, -1), n-1)
	}
	return start, end
}

// SliceLen is the number of elements Slice selects on an axis of size n.
func SliceLen(start, end, step, n int64) int64 {
	lo, hi := sliceBounds(start, end, step, n)
	if step > 0 && hi > lo {
		return (hi - lo + step - 1) / step
	}
	if step < 0 && lo > hi {
		return (lo - hi - step - 1) / -step
	}
	return 0
}

// IntMax is ONNX's "to the end" sentinel for Slice ends.
const IntMax = math.MaxInt64
