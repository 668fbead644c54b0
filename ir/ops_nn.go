package ir

import (
	"fmt"
)

func init() {
	RegisterOp(&OpDef{Name: "MatMul", MinArgs: 2, MaxArgs: 2, Pure: true,
		Doc: "numpy matmul (batched, broadcasting)", Infer: inferMatMul})
	RegisterOp(&OpDef{Name: "Gemm", MinArgs: 2, MaxArgs: 3, Pure: true,
		Attrs: []AttrDef{floatAttr("alpha", 1), floatAttr("beta", 1), intAttr("transA", 0), intAttr("transB", 0)},
		Doc:   "alpha·op(A)·op(B) + beta·C on 2-D A and B", Infer: inferGemm})
	RegisterOp(&OpDef{Name: "Conv", MinArgs: 2, MaxArgs: 3, Pure: true,
		Attrs: convAttrs(), Doc: "N-D convolution, NCHW", Infer: inferConv})
	for _, name := range []string{"Softmax", "LogSoftmax"} {
		RegisterOp(&OpDef{Name: name, MinArgs: 1, MaxArgs: 1, Pure: true, Attrs: []AttrDef{intAttr("axis", -1)},
			Doc: name + " along axis", Infer: inferSame})
	}
	RegisterOp(&OpDef{Name: "LayerNormalization", MinArgs: 2, MaxArgs: 3, Pure: true,
		Attrs: []AttrDef{intAttr("axis", -1), floatAttr("epsilon", 1e-5), intAttr("stash_type", 1)},
		Doc:   "normalise over the dims from axis on, then scale and shift", Infer: inferLayerNorm})
	for _, name := range []string{"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare"} {
		RegisterOp(&OpDef{Name: name, MinArgs: 1, MaxArgs: 1, Pure: true,
			Attrs: []AttrDef{intsAttr("axes"), intAttr("keepdims", 1), intAttr("noop_with_empty_axes", 0)},
			Doc:   name + " over axes (an attribute here for every reduction, whatever the opset)", Infer: inferReduce})
	}
	RegisterOp(&OpDef{Name: "GlobalAveragePool", MinArgs: 1, MaxArgs: 1, Pure: true,
		Doc: "mean over spatial dims, NCHW", Infer: func(v *Value) (Type, error) {
			t, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			out := t.Shape.Clone()
			for i := 2; i < len(out); i++ {
				out[i] = Static(1)
			}
			return Type{t.DType, out}, nil
		}})
}

// inferLayerNorm is the input's type; scale and bias must share its dtype,
// or the kernels would meet, say, int32 weights where they read float32.
func inferLayerNorm(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	for i := 1; i < v.NumArgs(); i++ {
		if a := v.Arg(i); a != nil && a.Type.DType != t.DType {
			return Type{}, fmt.Errorf("argument %d is %v, want %v like the input", i, a.Type, t.DType)
		}
	}
	return Type{t.DType, t.Shape.Clone()}, nil
}

func convAttrs() []AttrDef {
	return []AttrDef{strAttr("auto_pad", "NOTSET"), intsAttr("dilations"), intAttr("group", 1),
		intsAttr("kernel_shape"), intsAttr("pads"), intsAttr("strides")}
}

// MatMulShape infers numpy matmul's result shape.
func MatMulShape(a, b Shape) (Shape, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("matmul of a scalar")
	}
	a1, b1 := len(a) == 1, len(b) == 1
	if a1 {
		a = Shape{Static(1), a[0]}
	}
	if b1 {
		b = Shape{b[0], Static(1)}
	}
	k1, k2 := a[len(a)-1], b[len(b)-2]
	if k1 != k2 && k1.IsStatic() && k2.IsStatic() {
		return nil, fmt.Errorf("matmul inner dims differ: %v × %v", Type{F32, a}, Type{F32, b})
	}
	batch, err := Broadcast(a[:len(a)-2], b[:len(b)-2])
	if err != nil {
		return nil, err
	}
	out := append(batch, a[len(a)-2], b[len(b)-1])
	if a1 {
		out = append(out[:len(out)-2], out[len(out)-1])
	}
	if b1 {
		out = out[:len(out)-1]
	}
	return out, nil
}

func inferMatMul(v *Value) (Type, error) {
	a, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	b, err := argType(v, 1)
	if err != nil {
		return Type{}, err
	}
	if a.DType != b.DType {
		return Type{}, fmt.Errorf("matmul of %v and %v", a.DType, b.DType)
	}
	s, err := MatMulShape(a.Shape, b.Shape)
	if err != nil {
		return Type{}, err
	}
	return Type{a.DType, s}, nil
}

func inferGemm(v *Value) (Type, error) {
	a, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	b, err := argType(v, 1)
	if err != nil {
		return Type{}, err
	}
	if a.Rank() != 2 || b.Rank() != 2 {
		return Type{}, fmt.Errorf("gemm needs 2-D operands, have %v and %v", a, b)
	}
	m, k1 := a.Shape[0], a.Shape[1]
	if v.Int("transA") != 0 {
		m, k1 = k1, m
	}
	k2, n := b.Shape[0], b.Shape[1]
	if v.Int("transB") != 0 {
		k2, n = n, k2
	}
	if k1 != k2 && k1.IsStatic() && k2.IsStatic() {
		return Type{}, fmt.Errorf("gemm inner dims differ: %v × %v", a, b)
	}
	out := Shape{m, n}
	if c := v.Arg(2); c != nil {
		if _, err := Broadcast(out, c.Type.Shape); err != nil {
			return Type{}, fmt.Errorf("gemm bias: %w", err)
		}
	}
	return Type{a.DType, out}, nil
}

// ConvGeometry is a convolution's resolved kernel, strides, pads and dilations.
type ConvGeometry struct {
	Kernel, Strides, Dilations []int64
	Pads                       []int64 // begin pads then end pads, one per spatial dim
	Group                      int64
}

// ConvParams resolves a Conv-like value's attributes against the weight shape
// and (for auto_pad) the input's spatial dims.
func ConvParams(v *Value, x, w Shape) (ConvGeometry, error) {
	nsp := len(x) - 2
	if nsp < 1 || len(w) != len(x) {
		return ConvGeometry{}, fmt.Errorf("conv input %v and weight %v ranks disagree", Type{F32, x}, Type{F32, w})
	}
	g := ConvGeometry{Group: v.Int("group")}
	if g.Group <= 0 {
		return g, fmt.Errorf("group %d must be positive", g.Group)
	}
	g.Kernel = v.Ints("kernel_shape")
	if g.Kernel == nil {
		for _, d := range w[2:] {
			if !d.IsStatic() {
				return g, fmt.Errorf("conv weight has symbolic spatial dims")
			}
			g.Kernel = append(g.Kernel, d.C)
		}
	}
	fill := func(xs []int64, n int, def int64) ([]int64, error) {
		if xs == nil {
			xs = make([]int64, n)
			for i := range xs {
				xs[i] = def
			}
		}
		if len(xs) != n {
			return nil, fmt.Errorf("has %d entries, want %d", len(xs), n)
		}
		return xs, nil
	}
	var err error
	if g.Strides, err = fill(v.Ints("strides"), nsp, 1); err != nil {
		return g, fmt.Errorf("strides %w", err)
	}
	if g.Dilations, err = fill(v.Ints("dilations"), nsp, 1); err != nil {
		return g, fmt.Errorf("dilations %w", err)
	}
	if g.Pads, err = fill(v.Ints("pads"), 2*nsp, 0); err != nil {
		return g, fmt.Errorf("pads %w", err)
	}
	if len(g.Kernel) != nsp {
		return g, fmt.Errorf("kernel_shape %v for %d spatial dims", g.Kernel, nsp)
	}
	for i := range nsp {
		if g.Kernel[i] <= 0 || g.Strides[i] <= 0 || g.Dilations[i] <= 0 || g.Pads[i] < 0 || g.Pads[i+nsp] < 0 {
			return g, fmt.Errorf("bad conv geometry kernel=%v strides=%v dilations=%v pads=%v", g.Kernel, g.Strides, g.Dilations, g.Pads)
		}
	}
	switch ap := v.Str("auto_pad"); ap {
	case "NOTSET", "VALID", "":
		if ap == "VALID" {
			g.Pads = make([]int64, 2*nsp)
		}
	case "SAME_UPPER", "SAME_LOWER":
		for i := range nsp {
			d := x[2+i]
			if !d.IsStatic() {
				return g, fmt.Errorf("auto_pad %s needs static spatial dims", ap)
			}
			out := (d.C + g.Strides[i] - 1) / g.Strides[i]
			total := max(0, (out-1)*g.Strides[i]+(g.Kernel[i]-1)*g.Dilations[i]+1-d.C)
			lo := total / 2
			if ap == "SAME_LOWER" {
				lo = total - total/2
			}
			g.Pads[i], g.Pads[i+nsp] = lo, total-lo
		}
	default:
		return g, fmt.Errorf("unknown auto_pad %q", ap)
	}
	return g, nil
}

// OutSize is the spatial output size of a conv along axis i for input size n.
func (g ConvGeometry) OutSize(i int, n int64) int64 {
	nsp := len(g.Kernel)
	eff := (g.Kernel[i]-1)*g.Dilations[i] + 1
	return (n+g.Pads[i]+g.Pads[i+nsp]-eff)/g.Strides[i] + 1
}

func inferConv(v *Value) (Type, error) {
	x, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	w, err := argType(v, 1)
	if err != nil {
		return Type{}, err
	}
	g, err := ConvParams(v, x.Shape, w.Shape)
	if err != nil {
		return Type{}, err
	}
	if c, cw := x.Shape[1], w.Shape[1]; c.IsStatic() && cw.IsStatic() && c.C != cw.C*g.Group {
		return Type{}, fmt.Errorf("conv input has %d channels, weight expects %d×%d groups", c.C, cw.C, g.Group)
	}
	out := Shape{x.Shape[0], w.Shape[0]}
	for i, d := range x.Shape[2:] {
		if !d.IsStatic() {
			out = append(out, Unknown)
			continue
		}
		n := g.OutSize(i, d.C)
		if n <= 0 {
			return Type{}, fmt.Errorf("conv output size %d on spatial axis %d", n, i)
		}
		out = append(out, Static(n))
	}
	outDT := x.DType
	if v.Op == "ConvInteger" {
		outDT = I32
	}
	return Type{outDT, out}, nil
}

// ReduceAxes returns the normalised axes a reduction reduces.
func ReduceAxes(v *Value, rank int) ([]int, error) {
	axes := v.Ints("axes")
	if len(axes) == 0 {
		if v.Int("noop_with_empty_axes") != 0 {
			return nil, nil
		}
		all := make([]int, rank)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	out := make([]int, len(axes))
	for i, a := range axes {
		n, err := normAxis(a, rank)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func inferReduce(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	axes, err := ReduceAxes(v, t.Rank())
	if err != nil {
		return Type{}, err
	}
	red := make([]bool, t.Rank())
	for _, a := range axes {
		red[a] = true
	}
	out := Shape{}
	for i, d := range t.Shape {
		switch {
		case !red[i]:
			out = append(out, d)
		case v.Int("keepdims") != 0:
			out = append(out, Static(1))
		}
	}
	return Type{t.DType, out}, nil
}
