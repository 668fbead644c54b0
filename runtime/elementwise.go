package runtime

import (
	"errors"
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/kernels"
)

type number interface {
	~float32 | ~float64 | ~int8 | ~uint8 | ~int32 | ~int64
}

func init() {
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod"} {
		register(op, binaryArith)
	}
	for _, op := range []string{"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"} {
		register(op, binaryCompare)
	}
	register("Where", where)
	for _, op := range []string{"Sqrt", "Erf", "Relu", "Neg", "Exp", "Log", "Tanh", "Sigmoid", "Abs", "Reciprocal",
		"Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Gelu", "LeakyRelu", "HardSigmoid", "Identity", "Not"} {
		register(op, unary)
	}
	register("Clip", clip)
	register("Cast", cast)
}

// binaryArith is Add, Sub, Mul, Div, Pow, Max, Min and Mod with numpy
// broadcasting, for every numeric dtype.
func binaryArith(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a, b := args[0], args[1]
	if v.Op == "Pow" && a.DType == ir.F32 && b.DType != ir.F32 {
		// Pow allows a different exponent dtype; compute in f32.
		bf, err := b.AsFloat64s()
		if err != nil {
			return nil, err
		}
		b = toF32(b.Shape, bf)
	}
	if a.DType != b.DType {
		return nil, fmt.Errorf("operands are %v and %v", a.DType, b.DType)
	}
	out, err := broadcastShape(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	res, err := newTensor(a.DType, out)
	if err != nil {
		return nil, err
	}
	op := v.Op
	if op == "Mod" && v.Int("fmod") != 0 {
		op = "fmod"
	}
	switch ad := a.Data.(type) {
	case []float32:
		err = arith(op, ad, b.F32(), res.F32(), a.Shape, b.Shape, out)
	case []float64:
		err = arith(op, ad, b.Data.([]float64), res.Data.([]float64), a.Shape, b.Shape, out)
	case []int64:
		err = arith(op, ad, b.I64(), res.I64(), a.Shape, b.Shape, out)
	case []int32:
		err = arith(op, ad, b.Data.([]int32), res.Data.([]int32), a.Shape, b.Shape, out)
	case []int8:
		err = arith(op, ad, b.Data.([]int8), res.Data.([]int8), a.Shape, b.Shape, out)
	case []uint8:
		err = arith(op, ad, b.Data.([]uint8), res.Data.([]uint8), a.Shape, b.Shape, out)
	default:
		return nil, fmt.Errorf("%s on %v is not supported", v.Op, a.DType)
	}
	return res, err
}

func toF32(shape []int64, xs []float64) *ir.Tensor {
	f := make([]float32, len(xs))
	for i, x := range xs {
		f[i] = float32(x)
	}
	return ir.F32Tensor(shape, f)
}

var errDivZero = errors.New("integer division by zero")

func arith[T number](op string, a, b, c []T, as, bs, out []int64) error {
	if len(c) == 0 {
		return nil
	}
	isInt := T(1)/T(2) == 0
	if isInt && (op == "Div" || op == "Mod" || op == "fmod") {
		for _, y := range b {
			if y == 0 {
				return errDivZero
			}
		}
	}
	// Pow by a scalar constant exponent is common (x², √x); keep it exact.
	if op == "Pow" && len(b) == 1 {
		switch float64(b[0]) {
		case 2:
			op = "square"
		case 1:
			copy(c, a)
			return nil
		}
	}
	strides := [][]int{bstrides(as, out), bstrides(bs, out), nil}
	inner := 1
	if len(out) > 0 {
		inner = int(out[len(out)-1])
	}
	sa, sb := 1, 1
	if len(out) > 0 {
		sa, sb = strides[0][len(out)-1], strides[1][len(out)-1]
	}
	strides[2] = stridesOf(out)
	forRows(out, strides, func(_ int, offs []int) {
		ra, rb, rc := a[offs[0]:], b[offs[1]:], c[offs[2]:offs[2]+inner]
		arithRow(op, rc, ra, sa, rb, sb)
	})
	return nil
}

// arithRow applies op along one row; sa, sb are 0 (broadcast) or 1.
func arithRow[T number](op string, c, a []T, sa int, b []T, sb int) {
	n := len(c)
	switch {
	case sa == 1 && sb == 1:
		a, b = a[:n], b[:n]
		switch op {
		case "Add":
			for i := range c {
				c[i] = a[i] + b[i]
			}
			return
		case "Sub":
			for i := range c {
				c[i] = a[i] - b[i]
			}
			return
		case "Mul":
			for i := range c {
				c[i] = a[i] * b[i]
			}
			return
		case "Div":
			for i := range c {
				c[i] = a[i] / b[i]
			}
			return
		}
	case sa == 1 && sb == 0:
		a, y := a[:n], b[0]
		switch op {
		case "Add":
			for i := range c {
				c[i] = a[i] + y
			}
			return
		case "Sub":
			for i := range c {
				c[i] = a[i] - y
			}
			return
		case "Mul":
			for i := range c {
				c[i] = a[i] * y
			}
			return
		case "Div":
			for i := range c {
				c[i] = a[i] / y
			}
			return
		case "square":
			for i := range c {
				c[i] = a[i] * a[i]
			}
			return
		}
	}
	for i := range c {
		c[i] = scalarArith(op, a[i*sa], b[i*sb])
	}
}

func scalarArith[T number](op string, x, y T) T {
	switch op {
	case "Add":
		return x + y
	case "Sub":
		return x - y
	case "Mul":
		return x * y
	case "Div":
		return x / y
	case "square":
		return x * x
	case "Max":
		return max(x, y)
	case "Min":
		return min(x, y)
	case "Pow":
		return T(math.Pow(float64(x), float64(y)))
	case "fmod":
		return T(math.Mod(float64(x), float64(y)))
	case "Mod":
		if T(1)/T(2) != 0 { // float Mod without fmod is invalid ONNX; follow fmod
			return T(math.Mod(float64(x), float64(y)))
		}
		m := T(math.Mod(float64(x), float64(y)))
		if m != 0 && (m < 0) != (y < 0) {
			m += y
		}
		return m
	}
	panic("runtime: unknown arithmetic op " + op)
}

func binaryCompare(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a, b := args[0], args[1]
	if a.DType != b.DType {
		return nil, fmt.Errorf("operands are %v and %v", a.DType, b.DType)
	}
	out, err := broadcastShape(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	res, err := newTensor(ir.Bool, out)
	if err != nil {
		return nil, err
	}
	c := res.Data.([]bool)
	if ab, ok := a.Data.([]bool); ok {
		bb := b.Data.([]bool)
		eachPair(a.Shape, b.Shape, out, func(i, ia, ib int) {
			switch v.Op {
			case "And":
				c[i] = ab[ia] && bb[ib]
			case "Or":
				c[i] = ab[ia] || bb[ib]
			case "Xor", "Less", "Greater":
				c[i] = ab[ia] != bb[ib] && (v.Op == "Xor" || v.Op == "Greater" == ab[ia])
			case "Equal":
				c[i] = ab[ia] == bb[ib]
			}
		})
		return res, nil
	}
	af, err1 := a.AsFloat64s()
	bf, err2 := b.AsFloat64s()
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%s on %v is not supported", v.Op, a.DType)
	}
	if a.DType == ir.I64 { // exact comparison for large integers
		ai, bi := a.I64(), b.I64()
		eachPair(a.Shape, b.Shape, out, func(i, ia, ib int) { c[i] = cmp(v.Op, ai[ia], bi[ib]) })
		return res, nil
	}
	eachPair(a.Shape, b.Shape, out, func(i, ia, ib int) { c[i] = cmp(v.Op, af[ia], bf[ib]) })
	return res, nil
}

func cmp[T int64 | float64](op string, x, y T) bool {
	switch op {
	case "Equal":
		return x == y
	case "Less":
		return x < y
	case "Greater":
		return x > y
	case "LessOrEqual":
		return x <= y
	case "GreaterOrEqual":
		return x >= y
	}
	return false
}

// eachPair visits every output element of a binary broadcast with the
// operands' flat indices (the slow general path).
func eachPair(as, bs, out []int64, f func(i, ia, ib int)) {
	strides := [][]int{bstrides(as, out), bstrides(bs, out)}
	inner, sa, sb := 1, 0, 0
	if len(out) > 0 {
		inner = int(out[len(out)-1])
		sa, sb = strides[0][len(out)-1], strides[1][len(out)-1]
	}
	forRows(out, strides, func(row int, offs []int) {
		for j := range inner {
			f(row*inner+j, offs[0]+j*sa, offs[1]+j*sb)
		}
	})
}

func where(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	cond, a, b := args[0], args[1], args[2]
	if a.DType != b.DType {
		return nil, fmt.Errorf("branches are %v and %v", a.DType, b.DType)
	}
	out, err := broadcastShape(cond.Shape, a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	res, err := newTensor(a.DType, out)
	if err != nil {
		return nil, err
	}
	cs, asx, bsx := bstrides(cond.Shape, out), bstrides(a.Shape, out), bstrides(b.Shape, out)
	cd := cond.Data.([]bool)
	n := prod(out)
	idx := func(i int, st []int) int {
		off := 0
		for d := len(out) - 1; d >= 0; d-- {
			off += (i % int(out[d])) * st[d]
			i /= int(out[d])
		}
		return off
	}
	pick := func(i int) bool { return cd[idx(i, cs)] }
	switch rd := res.Data.(type) {
	case []float32:
		sel(rd, a.F32(), b.F32(), n, pick, func(i int) (int, int) { return idx(i, asx), idx(i, bsx) })
	case []int64:
		sel(rd, a.I64(), b.I64(), n, pick, func(i int) (int, int) { return idx(i, asx), idx(i, bsx) })
	case []int32:
		sel(rd, a.Data.([]int32), b.Data.([]int32), n, pick, func(i int) (int, int) { return idx(i, asx), idx(i, bsx) })
	case []bool:
		sel(rd, a.Data.([]bool), b.Data.([]bool), n, pick, func(i int) (int, int) { return idx(i, asx), idx(i, bsx) })
	default:
		return nil, fmt.Errorf("Where on %v is not supported", a.DType)
	}
	return res, nil
}

func sel[T any](out, a, b []T, n int, pick func(int) bool, ab func(int) (int, int)) {
	for i := range n {
		ia, ib := ab(i)
		if pick(i) {
			out[i] = a[ia]
		} else {
			out[i] = b[ib]
		}
	}
}

func unary(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	if v.Op == "Identity" {
		return a, nil // tensors are immutable: sharing is safe
	}
	if v.Op == "Not" {
		ad, ok := a.Data.([]bool)
		if !ok {
			return nil, fmt.Errorf("Not on %v", a.DType)
		}
		res, _ := newTensor(ir.Bool, a.Shape)
		for i, b := range ad {
			res.Data.([]bool)[i] = !b
		}
		return res, nil
	}
	switch a.DType {
	case ir.F32:
	case ir.I64, ir.I32:
		return unaryInt(v, a)
	default:
		return nil, fmt.Errorf("%s on %v is not supported", v.Op, a.DType)
	}
	res, err := newTensor(ir.F32, a.Shape)
	if err != nil {
		return nil, err
	}
	src, dst := a.F32(), res.F32()
	if ap := v.Str("approximate"); v.Op == "Gelu" && (ap == "" || ap == "none") {
		parallelFor(len(src), 16384, func(lo, hi int) { geluInto(dst[lo:hi], src[lo:hi], nil, lo) })
		return res, nil
	}
	if vec := vectorUnary[v.Op]; vec != nil {
		parallelFor(len(src), 32768, func(lo, hi int) { vec(dst[lo:hi], src[lo:hi]) })
		return res, nil
	}
	f, err := unaryFunc(v)
	if err != nil {
		return nil, err
	}
	parallelFor(len(src), 32768, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dst[i] = f(src[i])
		}
	})
	return res, nil
}

// vectorUnary are the ops with SIMD kernels.
var vectorUnary = map[string]func(dst, src []float32){"Exp": kernels.Exp, "Erf": kernels.Erf}

func unaryFunc(v *ir.Value) (func(float32) float32, error) {
	switch v.Op {
	case "Sqrt":
		return func(x float32) float32 { return float32(math.Sqrt(float64(x))) }, nil
	case "Erf":
		return erff, nil
	case "Relu":
		return func(x float32) float32 { return max(x, 0) }, nil
	case "Neg":
		return func(x float32) float32 { return -x }, nil
	case "Exp":
		return expf, nil
	case "Log":
		return func(x float32) float32 { return float32(math.Log(float64(x))) }, nil
	case "Tanh":
		return tanhf, nil
	case "Sigmoid":
		return sigmoidf, nil
	case "Abs":
		return func(x float32) float32 { return float32(math.Abs(float64(x))) }, nil
	case "Reciprocal":
		return func(x float32) float32 { return 1 / x }, nil
	case "Floor":
		return func(x float32) float32 { return float32(math.Floor(float64(x))) }, nil
	case "Ceil":
		return func(x float32) float32 { return float32(math.Ceil(float64(x))) }, nil
	case "Round":
		return func(x float32) float32 { return float32(math.RoundToEven(float64(x))) }, nil
	case "Sign":
		return func(x float32) float32 {
			switch {
			case x > 0:
				return 1
			case x < 0:
				return -1
			}
			return x
		}, nil
	case "Sin":
		return func(x float32) float32 { return float32(math.Sin(float64(x))) }, nil
	case "Cos":
		return func(x float32) float32 { return float32(math.Cos(float64(x))) }, nil
	case "Gelu":
		if v.Str("approximate") == "tanh" {
			return func(x float32) float32 {
				return 0.5 * x * (1 + tanhf(0.7978845608028654*(x+0.044715*x*x*x)))
			}, nil
		}
		return nil, fmt.Errorf("Gelu approximate=%q: want none or tanh", v.Str("approximate"))
	case "LeakyRelu":
		alpha := v.Float("alpha")
		return func(x float32) float32 {
			if x < 0 {
				return alpha * x
			}
			return x
		}, nil
	case "HardSigmoid":
		alpha, beta := v.Float("alpha"), v.Float("beta")
		return func(x float32) float32 { return max(0, min(1, alpha*x+beta)) }, nil
	}
	return nil, fmt.Errorf("no f32 kernel for %s", v.Op)
}

func unaryInt(v *ir.Value, a *ir.Tensor) (*ir.Tensor, error) {
	xs, _ := a.AsInt64s()
	out := make([]int64, len(xs))
	for i, x := range xs {
		switch v.Op {
		case "Neg":
			out[i] = -x
		case "Abs":
			out[i] = max(x, -x)
		case "Sign":
			out[i] = int64(min(max(x, -1), 1))
		case "Relu":
			out[i] = max(x, 0)
		default:
			return nil, fmt.Errorf("%s on %v is not supported", v.Op, a.DType)
		}
	}
	t := ir.I64Tensor(a.Shape, out)
	if a.DType == ir.I32 {
		return castTo(t, ir.I32)
	}
	return t, nil
}

func clip(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	lo, hi := math.Inf(-1), math.Inf(1)
	for i, p := range []*float64{&lo, &hi} {
		if t := args[1+i:]; len(t) > 0 && t[0] != nil {
			f, err := t[0].AsFloat64s()
			if err != nil || len(f) != 1 {
				return nil, errors.New("clip bounds must be scalars")
			}
			*p = f[0]
		}
	}
	switch d := a.Data.(type) {
	case []float32:
		res, _ := newTensor(ir.F32, a.Shape)
		l, h := float32(lo), float32(hi)
		for i, x := range d {
			res.F32()[i] = min(max(x, l), h)
		}
		return res, nil
	default:
		xs, err := a.AsInt64s()
		if err != nil {
			return nil, fmt.Errorf("Clip on %v is not supported", a.DType)
		}
		out := make([]int64, len(xs))
		for i, x := range xs {
			out[i] = int64(min(max(float64(x), lo), hi))
		}
		return castTo(ir.I64Tensor(a.Shape, out), a.DType)
	}
}

func cast(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	return castTo(args[0], v.Type.DType)
}

// castTo converts element types as ONNX Cast does: float to integer
// truncates toward zero; to bool is "non-zero".
func castTo(a *ir.Tensor, dt ir.DType) (*ir.Tensor, error) {
	if a.DType == dt {
		return a, nil
	}
	res, err := newTensor(dt, a.Shape)
	if err != nil {
		return nil, err
	}
	if src, ok := a.Data.([]bool); ok {
		f := make([]float64, len(src))
		for i, b := range src {
			if b {
				f[i] = 1
			}
		}
		a = &ir.Tensor{DType: ir.F64, Shape: a.Shape, Data: f}
	}
	// Integer to integer goes through int64 to stay exact.
	if a.DType.IsInt() && dt.IsInt() {
		xs, _ := a.AsInt64s()
		for i, x := range xs {
			switch d := res.Data.(type) {
			case []int8:
				d[i] = int8(x)
			case []uint8:
				d[i] = uint8(x)
			case []int32:
				d[i] = int32(x)
			case []int64:
				d[i] = x
			}
		}
		return res, nil
	}
	xs, err := a.AsFloat64s()
	if err != nil {
		return nil, err
	}
	for i, x := range xs {
		switch d := res.Data.(type) {
		case []float32:
			d[i] = float32(x)
		case []float64:
			d[i] = x
		case []uint16:
			d[i] = ir.F32ToF16(float32(x))
		case []int8:
			d[i] = int8(x)
		case []uint8:
			d[i] = uint8(x)
		case []int32:
			d[i] = int32(x)
		case []int64:
			d[i] = int64(x)
		case []bool:
			d[i] = x != 0
		}
	}
	return res, nil
}
