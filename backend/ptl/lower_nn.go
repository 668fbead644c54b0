package ptl

import (
	"fmt"
	"math"
	"slices"

	"github.com/pqvc/pqvc/ir"
)

// Linear algebra, normalisation, attention and quantization lowerings.

func init() {
	lowerings["MatMul"] = func(l *lowerer, v *ir.Value) (operand, error) { return l.binary(opMatmul, v) }
	lowerings["Gemm"] = lowerGemm
	lowerings["Conv"] = lowerConv
	lowerings["Softmax"] = func(l *lowerer, v *ir.Value) (operand, error) { return l.axisOp(opSoftmax, v) }
	lowerings["LogSoftmax"] = func(l *lowerer, v *ir.Value) (operand, error) { return l.axisOp(opLogSoftmax, v) }
	lowerings["LayerNormalization"] = lowerLayerNorm
	lowerings[ir.MSDomain+".Gelu"] = func(l *lowerer, v *ir.Value) (operand, error) {
		x, err := l.arg(v, 0)
		if err != nil {
			return operand{}, err
		}
		return l.p.call(opGelu, x), nil
	}
	lowerings[ir.MSDomain+".BiasGelu"] = func(l *lowerer, v *ir.Value) (operand, error) {
		x, err := l.binary(opAdd, v)
		if err != nil {
			return operand{}, err
		}
		return l.p.call(opGelu, x), nil
	}
	lowerings[ir.MSDomain+".MultiHeadAttention"] = func(l *lowerer, v *ir.Value) (operand, error) {
		q, err := l.arg(v, 0)
		if err != nil {
			return operand{}, err
		}
		k, vv, err := l.argsFrom(v, 1)
		if err != nil {
			return operand{}, err
		}
		return l.attention(v, q, k, vv, shape(v.Arg(0)), shape(v.Arg(1)), shape(v.Arg(2))[2])
	}
	lowerings[ir.MSDomain+".Attention"] = func(l *lowerer, v *ir.Value) (operand, error) {
		x, w, err := l.twoArgs(v)
		if err != nil {
			return operand{}, err
		}
		qkv := l.p.call(opMatmul, x, w)
		if v.Arg(2) != nil {
			b, err := l.arg(v, 2)
			if err != nil {
				return operand{}, err
			}
			qkv = l.p.call(opAdd, qkv, b)
		}
		xs := shape(v.Arg(0))
		e := shape(v.Arg(1))[1] / 3
		part := func(i int64) operand {
			return l.p.call(opSlice, qkv, intLit(2), intLit(i*e), intLit((i+1)*e), intLit(1))
		}
		qs := []int64{xs[0], xs[1], e}
		return l.attention(v, part(0), part(1), part(2), qs, qs, e)
	}
	lowerings["QuantizeLinear"] = lowerQuantize
	lowerings["DequantizeLinear"] = lowerDequantize
	lowerings["MatMulInteger"] = lowerMatMulInteger
	lowerings[ir.MSDomain+".MatMulIntegerToFloat"] = lowerMatMulIntegerToFloat
	lowerings[ir.MSDomain+".DynamicQuantizeMatMul"] = lowerDynamicQuantizeMatMul
}

func (l *lowerer) axisOp(op *atenOp, v *ir.Value) (operand, error) {
	x, err := l.arg(v, 0)
	if err != nil {
		return operand{}, err
	}
	return l.p.call(op, x, intLit(v.Int("axis"))), nil
}

// scalarConst stores a 0-d f32 tensor.
func (l *lowerer) scalarConst(f float64) operand {
	return l.p.addTensor(ir.ScalarF32(float32(f)))
}

func lowerGemm(l *lowerer, v *ir.Value) (operand, error) {
	a, b, err := l.twoArgs(v)
	if err != nil {
		return operand{}, err
	}
	alpha, beta := float64(v.Float("alpha")), float64(v.Float("beta"))
	transA, transB := v.Int("transA") == 1, v.Int("transB") == 1
	var c operand
	if v.Arg(2) != nil {
		if c, err = l.arg(v, 2); err != nil {
			return operand{}, err
		}
	}
	if transB && !transA && alpha == 1 && (v.Arg(2) == nil || beta == 1) {
		// The nn.Linear form: B is [out, in] as linear wants its weight.
		if v.Arg(2) == nil {
			c = noneLit()
		}
		return l.p.call(opLinear, a, b, c), nil
	}
	if transA {
		a = l.p.call(opTranspose, a, intLit(0), intLit(1))
	}
	if transB {
		b = l.p.call(opTranspose, b, intLit(0), intLit(1))
	}
	y := l.p.call(opMatmul, a, b)
	if alpha != 1 {
		y = l.p.call(opMul, y, l.scalarConst(alpha))
	}
	if v.Arg(2) != nil && beta != 0 {
		if beta != 1 {
			c = l.p.call(opMul, c, l.scalarConst(beta))
		}
		y = l.p.call(opAdd, y, c)
	}
	return y, nil
}

func lowerConv(l *lowerer, v *ir.Value) (operand, error) {
	x, w, err := l.twoArgs(v)
	if err != nil {
		return operand{}, err
	}
	geo, err := ir.ConvParams(v, v.Arg(0).Type.Shape, v.Arg(1).Type.Shape)
	if err != nil {
		return operand{}, err
	}
	nsp := len(geo.Strides)
	op := map[int]*atenOp{1: opConv1d, 2: opConv2d}[nsp]
	if op == nil {
		return operand{}, fmt.Errorf("%d-D convolution is not supported", nsp)
	}
	pads := geo.Pads
	if !slices.Equal(pads[:nsp], pads[nsp:]) {
		// Asymmetric padding: pad explicitly (constant_pad_nd lists the
		// last dim first), then convolve unpadded.
		var pp []int64
		for d := nsp - 1; d >= 0; d-- {
			pp = append(pp, pads[d], pads[nsp+d])
		}
		x = l.p.call(opPad, x, intsLit(pp), floatLit(0))
		pads = make([]int64, 2*nsp)
	}
	b := noneLit()
	if v.Arg(2) != nil {
		if b, err = l.arg(v, 2); err != nil {
			return operand{}, err
		}
	}
	return l.p.call(op, x, w, b, intsLit(geo.Strides), intsLit(pads[:nsp]), intsLit(geo.Dilations), intLit(geo.Group)), nil
}

func lowerLayerNorm(l *lowerer, v *ir.Value) (operand, error) {
	x, err := l.arg(v, 0)
	if err != nil {
		return operand{}, err
	}
	xs := shape(v.Arg(0))
	axis, err := normAxis(v.Int("axis"), len(xs))
	if err != nil {
		return operand{}, err
	}
	norm := xs[axis:]
	fits := func(p *ir.Value) bool { return p == nil || slices.Equal(shape(p), norm) }
	scale, bias := v.Arg(1), v.Arg(2)
	eps := floatLit(float64(v.Float("epsilon")))
	opt := func(p *ir.Value) (operand, error) {
		if p == nil {
			return noneLit(), nil
		}
		return l.in(p)
	}
	if fits(scale) && fits(bias) {
		s, err := opt(scale)
		if err != nil {
			return operand{}, fmt.Errorf("scale: %w", err)
		}
		b, err := opt(bias)
		if err != nil {
			return operand{}, fmt.Errorf("bias: %w", err)
		}
		return l.p.call(opLayerNorm, x, intsLit(norm), s, b, eps), nil
	}
	// Broadcast scale or bias: normalise, then scale and shift by hand.
	y := l.p.call(opLayerNorm, x, intsLit(norm), noneLit(), noneLit(), eps)
	s, err := l.in(scale)
	if err != nil {
		return operand{}, fmt.Errorf("scale: %w", err)
	}
	y = l.p.call(opMul, y, s)
	if bias != nil {
		b, err := l.in(bias)
		if err != nil {
			return operand{}, fmt.Errorf("bias: %w", err)
		}
		y = l.p.call(opAdd, y, b)
	}
	return y, nil
}

// attention is softmax(scale·Q·Kᵀ)·V over heads for [B,S,E] q, k and v.
func (l *lowerer) attention(v *ir.Value, q, k, vv operand, qs, ks []int64, ve int64) (operand, error) {
	h := v.Int("num_heads")
	if h <= 0 || qs[2]%h != 0 || ve%h != 0 {
		return operand{}, fmt.Errorf("num_heads %d does not divide widths %d and %d", h, qs[2], ve)
	}
	b, s, e := qs[0], qs[1], qs[2]
	d := e / h
	scale := float64(v.Float("scale"))
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(d))
	}
	heads := func(x operand, seq, width int64, perm []int64) operand {
		x = l.p.call(opReshape, x, intsLit([]int64{b, seq, h, width / h}))
		return l.p.call(opPermute, x, intsLit(perm))
	}
	qh := heads(q, s, e, []int64{0, 2, 1, 3})     // [B,H,S,D]
	kh := heads(k, ks[1], e, []int64{0, 2, 3, 1}) // [B,H,D,T]
	vh := heads(vv, ks[1], ve, []int64{0, 2, 1, 3})
	scores := l.p.call(opMatmul, qh, kh)
	scores = l.p.call(opMul, scores, l.scalarConst(scale))
	probs := l.p.call(opSoftmax, scores, intLit(-1))
	out := l.p.call(opMatmul, probs, vh) // [B,H,S,Dv]
	out = l.p.call(opPermute, out, intsLit([]int64{0, 2, 1, 3}))
	return l.p.call(opReshape, out, intsLit([]int64{b, s, ve})), nil
}

// axisParam returns a quantization scale or zero point as f32, shaped to
// broadcast along axis when it is per-axis (1-D with more than one entry).
func (l *lowerer) axisParam(p *ir.Value, axis int64, rank int) (operand, error) {
	ps := shape(p)
	if len(ps) == 0 || (len(ps) == 1 && ps[0] == 1) || rank <= 1 {
		return l.floatOf(p)
	}
	ax, err := normAxis(axis, rank)
	if err != nil {
		return operand{}, err
	}
	bs := make([]int64, rank)
	for i := range bs {
		bs[i] = 1
	}
	bs[ax] = ps[0]
	f, err := l.floatOf(p)
	if err != nil {
		return operand{}, err
	}
	return l.p.call(opReshape, f, intsLit(bs)), nil
}

func lowerQuantize(l *lowerer, v *ir.Value) (operand, error) {
	x, err := l.floatOf(v.Arg(0))
	if err != nil {
		return operand{}, err
	}
	rank := len(v.Type.Shape)
	s, err := l.axisParam(v.Arg(1), v.Int("axis"), rank)
	if err != nil {
		return operand{}, fmt.Errorf("scale: %w", err)
	}
	// ONNX: saturate(round_half_even(x / scale) + zero_point).
	y := l.p.call(opRound, l.p.call(opDiv, x, s))
	if zp := v.Arg(2); zp != nil {
		z, err := l.axisParam(zp, v.Int("axis"), rank)
		if err != nil {
			return operand{}, fmt.Errorf("zero point: %w", err)
		}
		y = l.p.call(opAdd, y, z)
	}
	lo, hi := 0.0, 255.0
	if v.Type.DType == ir.I8 {
		lo, hi = -128, 127
	} else if v.Type.DType != ir.U8 {
		return operand{}, fmt.Errorf("quantizing to %v is not supported", v.Type.DType)
	}
	y = l.p.call(opClamp, y, floatLit(lo), floatLit(hi))
	return l.p.call(opTo, y, intLit(scalarType[v.Type.DType])), nil
}

func lowerDequantize(l *lowerer, v *ir.Value) (operand, error) {
	// A constant int8 weight stays int8 in the archive; the conversion runs
	// in the model.
	x, err := l.floatOf(v.Arg(0))
	if err != nil {
		return operand{}, err
	}
	rank := len(v.Type.Shape)
	if zp := v.Arg(2); zp != nil && !isZero(zp) {
		z, err := l.axisParam(zp, v.Int("axis"), rank)
		if err != nil {
			return operand{}, fmt.Errorf("zero point: %w", err)
		}
		x = l.p.call(opSub, x, z)
	}
	s, err := l.axisParam(v.Arg(1), v.Int("axis"), rank)
	if err != nil {
		return operand{}, fmt.Errorf("scale: %w", err)
	}
	return l.p.call(opMul, x, s), nil
}

// isZero reports whether v is a constant of zeros.
func isZero(v *ir.Value) bool {
	fs, ok := ir.ConstFloats(v)
	if !ok {
		return false
	}
	for _, f := range fs {
		if f != 0 {
			return false
		}
	}
	return true
}

// intMatMul is (a − azp)·(b − bzp) in f32. Products of 8-bit values summed
// in f32 are exact up to 2²⁴, so the result equals the int32 sums for the
// widths vision transformers use.
func (l *lowerer) intMatMul(v *ir.Value, a, b, azp, bzp *ir.Value) (operand, error) {
	af, err := l.floatOf(a)
	if err != nil {
		return operand{}, fmt.Errorf("A: %w", err)
	}
	if azp != nil && !isZero(azp) {
		if s := shape(azp); len(s) > 0 && s[0] != 1 {
			return operand{}, fmt.Errorf("per-row a_zero_point is not supported")
		}
		z, err := l.floatOf(azp)
		if err != nil {
			return operand{}, fmt.Errorf("a_zero_point: %w", err)
		}
		af = l.p.call(opSub, af, z)
	}
	bf, err := l.floatOf(b)
	if err != nil {
		return operand{}, fmt.Errorf("B: %w", err)
	}
	if bzp != nil && !isZero(bzp) {
		z, err := l.floatOf(bzp)
		if err != nil {
			return operand{}, fmt.Errorf("b_zero_point: %w", err)
		}
		bf = l.p.call(opSub, bf, z)
	}
	return l.p.call(opMatmul, af, bf), nil
}

func lowerMatMulInteger(l *lowerer, v *ir.Value) (operand, error) {
	y, err := l.intMatMul(v, v.Arg(0), v.Arg(1), v.Arg(2), v.Arg(3))
	if err != nil {
		return operand{}, err
	}
	l.exactFloat[v] = true
	return y, nil
}

func lowerMatMulIntegerToFloat(l *lowerer, v *ir.Value) (operand, error) {
	y, err := l.intMatMul(v, v.Arg(0), v.Arg(1), v.Arg(4), v.Arg(5))
	if err != nil {
		return operand{}, err
	}
	as, bs, err := l.argsFrom(v, 2)
	if err != nil {
		return operand{}, err
	}
	y = l.p.call(opMul, y, l.p.call(opMul, as, bs))
	if v.Arg(6) != nil {
		bias, err := l.arg(v, 6)
		if err != nil {
			return operand{}, err
		}
		y = l.p.call(opAdd, y, bias)
	}
	return y, nil
}
