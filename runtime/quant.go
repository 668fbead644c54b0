package runtime

// Quantized kernels with ONNX Runtime's arithmetic: x/scale in float32,
// round half to even, saturate; integer products exact in int32;
// requantization as a float32 multiply by a_scale·b_scale/y_scale. Also f16
// for the float kernels an fp16 model touches, computed in f32 and rounded
// back (ORT's CPU provider does the same through InsertCastTransformer).

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/kernels"
)

func init() {
	register("QuantizeLinear", quantizeLinear)
	register("DequantizeLinear", dequantizeLinear)
	register("MatMulInteger", matMulInteger)
	register("QLinearMatMul", qlinearMatMul)
	register("ConvInteger", convInteger)
	register("QLinearConv", qlinearConv)
	// Wrap the float kernels registered so far (conv.go, elementwise.go,
	// matmul.go and norm.go initialise before this file, Go running init
	// functions in file-name order) so that they accept f16. Shape ops in
	// shape.go move f16 data as it is and need no wrapper.
	for _, op := range f16Ops {
		if k := kernelTable[op]; k != nil {
			kernelTable[op] = viaF32(k)
		}
	}
}

// f16Ops are the kernels that compute on floats and so need f16 support.
var f16Ops = strings.Fields(`Add Sub Mul Div Pow Max Min Mod Where Sqrt Erf Relu Neg Exp Log Tanh
	Sigmoid Abs Reciprocal Floor Ceil Round Sign Sin Cos Gelu LeakyRelu HardSigmoid Clip Equal Less
	Greater LessOrEqual GreaterOrEqual MatMul Gemm Conv Softmax LogSoftmax LayerNormalization ReduceMean
	ReduceSum ReduceMax ReduceMin ReduceProd ReduceL2 ReduceSumSquare GlobalAveragePool`)

// viaF32 runs k on f32 copies of f16 arguments, rounding an f32 result back
// to f16 when the graph says so. f32 graphs go straight through, at no cost.
func viaF32(k kernel) kernel {
	return func(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
		half := false
		for _, a := range args {
			half = half || a != nil && a.DType == ir.F16
		}
		if !half {
			return k(x, v, args)
		}
		wide := make([]*ir.Tensor, len(args))
		for i, a := range args {
			wide[i] = a
			if a != nil && a.DType == ir.F16 {
				wide[i] = f16ToF32(a)
			}
		}
		res, err := k(x, v, wide)
		if err != nil || res.DType != ir.F32 || v.Type.DType != ir.F16 {
			return res, err
		}
		return f32ToF16(res), nil
	}
}

func f16ToF32(a *ir.Tensor) *ir.Tensor {
	d := a.Data.([]uint16)
	return ir.F32Tensor(a.Shape, genPar(len(d), func(i int) float32 { return ir.F16ToF32(d[i]) }))
}

func f32ToF16(a *ir.Tensor) *ir.Tensor {
	d := a.F32()
	return &ir.Tensor{DType: ir.F16, Shape: a.Shape, Data: genPar(len(d), func(i int) uint16 { return ir.F32ToF16(d[i]) })}
}

// genPar returns [f(0), …, f(n−1)], computed in parallel chunks.
func genPar[B any](n int, f func(int) B) []B {
	dst := make([]B, n)
	parallelFor(n, 32768, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dst[i] = f(i)
		}
	})
	return dst
}

// floats returns float data as f32 (decoding f16).
func floats(t *ir.Tensor) ([]float32, error) {
	switch d := t.Data.(type) {
	case []float32:
		return d, nil
	case []uint16:
		return f16ToF32(t).F32(), nil
	}
	return nil, fmt.Errorf("want float data, have %v", t.DType)
}

// ints32 returns integer data widened to int32.
func ints32(t *ir.Tensor) ([]int32, error) {
	switch d := t.Data.(type) {
	case []int32:
		return d, nil
	case []int8:
		return widen(d), nil
	case []uint8:
		return widen(d), nil
	}
	return nil, fmt.Errorf("want 8- or 32-bit integer data, have %v", t.DType)
}

func widen[T int8 | uint8](d []T) []int32 {
	out := make([]int32, len(d))
	for i, x := range d {
		out[i] = int32(x)
	}
	return out
}

// qRange is the saturation range of a quantized dtype.
func qRange(dt ir.DType) (lo, hi float32, err error) {
	switch dt {
	case ir.U8:
		return 0, 255, nil
	case ir.I8:
		return -128, 127, nil
	}
	return 0, 0, fmt.Errorf("quantized type %v is not u8 or i8", dt)
}

// QuantizeValue is ONNX QuantizeLinear on one element: saturate(round half to
// even(x/scale) + zp), the division in float32 as ONNX Runtime does it.
// NaN maps to zp. Exported for the quantization passes, which must fold
// weights bit-identically to this kernel.
func QuantizeValue(x, scale float32, zp int32, lo, hi float32) int32 {
	q := float32(math.RoundToEven(float64(x / scale)))
	q += float32(zp)
	if !(q >= lo) { // also NaN
		if q != q {
			return zp
		}
		return int32(lo)
	}
	if q > hi {
		return int32(hi)
	}
	return int32(q)
}

// channels describes how a per-tensor or per-axis parameter vector maps onto
// a tensor: element i uses entry (i/inner)%n (n == 1: per tensor).
type channels struct{ inner, n int }

func (c channels) of(i int) int {
	if c.n == 1 {
		return 0
	}
	return (i / c.inner) % c.n
}

// axisChannels resolves a Q/DQ's axis for a parameter tensor of p entries.
func axisChannels(v *ir.Value, shape []int64, p *ir.Tensor) (channels, error) {
	if len(p.Shape) == 0 || p.Len() == 1 && len(p.Shape) <= 1 && (len(shape) == 0 || p.Shape[0] == 1) {
		return channels{1, 1}, nil
	}
	ax := int(v.Int("axis"))
	if ax < 0 {
		ax += len(shape)
	}
	if ax < 0 || ax >= len(shape) || shape[ax] != int64(p.Len()) {
		return channels{}, fmt.Errorf("per-axis parameters of %d entries do not fit axis %d of %v", p.Len(), v.Int("axis"), shape)
	}
	return channels{prod(shape[ax+1:]), p.Len()}, nil
}

// qParams reads a Q/DQ's scale and optional zero point against input shape.
func qParams(v *ir.Value, shape []int64, sc, zpT *ir.Tensor) ([]float32, []int32, channels, error) {
	scales, err := floats(sc)
	if err != nil {
		return nil, nil, channels{}, err
	}
	ch, err := axisChannels(v, shape, sc)
	if err != nil {
		return nil, nil, channels{}, err
	}
	zps := make([]int32, len(scales))
	if zpT != nil {
		zps, err = ints32(zpT)
	}
	return scales, zps, ch, err
}

func quantizeLinear(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	in := args[0]
	xs, err := floats(in)
	if err != nil {
		return nil, err
	}
	scales, zps, ch, err := qParams(v, in.Shape, args[1], optArg(args, 2))
	if err != nil {
		return nil, err
	}
	lo, hi, err := qRange(v.Type.DType)
	if err != nil {
		return nil, err
	}
	q := func(i int) int32 { c := ch.of(i); return QuantizeValue(xs[i], scales[c], zps[c], lo, hi) }
	if v.Type.DType == ir.U8 {
		return &ir.Tensor{DType: ir.U8, Shape: in.Shape, Data: genPar(len(xs), func(i int) uint8 { return uint8(q(i)) })}, nil
	}
	return &ir.Tensor{DType: ir.I8, Shape: in.Shape, Data: genPar(len(xs), func(i int) int8 { return int8(q(i)) })}, nil
}

// dequantizeLinear subtracts the zero point in integers, then multiplies in
// float32, as ORT does.
func dequantizeLinear(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	if constArgs(v) { // a stored int8 weight: dequantize once per Program
		type dq struct {
			t   *ir.Tensor
			err error
		}
		r := x.packedFor(v, func() any { t, err := dequantize(v, args); return dq{t, err} }).(dq)
		return r.t, r.err
	}
	return dequantize(v, args)
}

func constArgs(v *ir.Value) bool {
	for _, a := range v.Args() {
		if a != nil && !a.IsConst() {
			return false
		}
	}
	return true
}

func dequantize(v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	in := args[0]
	q, err := ints32(in)
	if err != nil {
		return nil, err
	}
	scales, zps, ch, err := qParams(v, in.Shape, args[1], optArg(args, 2))
	if err != nil {
		return nil, err
	}
	res := ir.F32Tensor(in.Shape, genPar(len(q), func(i int) float32 { c := ch.of(i); return float32(q[i]-zps[c]) * scales[c] }))
	if v.Type.DType == ir.F16 {
		return f32ToF16(res), nil
	}
	return res, nil
}

func optArg(args []*ir.Tensor, i int) *ir.Tensor {
	if i < len(args) {
		return args[i]
	}
	return nil
}

// scalarZP reads an optional scalar (or one-element) zero point.
func scalarZP(t *ir.Tensor) (int32, error) {
	z, err := columnZP(t, 1)
	if err != nil {
		return 0, err
	}
	return z[0], nil
}

// columnZP reads B's zero point: scalar or one per column of n.
func columnZP(t *ir.Tensor, n int) ([]int32, error) {
	if t == nil {
		return []int32{0}, nil
	}
	z, err := ints32(t)
	if err != nil {
		return nil, err
	}
	if len(z) != 1 && len(z) != n {
		return nil, fmt.Errorf("zero point has %d entries, want 1 or %d", len(z), n)
	}
	return z, nil
}

// intProduct computes the i32 numpy-matmul of (a - az) and (b - bz), with bz
// scalar or per column. A constant 2-D B is packed once per Program.
func intProduct(x *execCtx, bv *ir.Value, a, b *ir.Tensor, az int32, bz []int32) (*ir.Tensor, error) {
	as, bs := a.Shape, b.Shape
	if len(as) < 2 || len(bs) < 2 {
		return nil, fmt.Errorf("integer matmul of %v × %v: 1-D operands are not supported", as, bs)
	}
	m, k, n := int(as[len(as)-2]), int(as[len(as)-1]), int(bs[len(bs)-1])
	if int(bs[len(bs)-2]) != k {
		return nil, fmt.Errorf("inner dims differ: %v × %v", as, bs)
	}
	batch, err := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	res, err := newTensor(ir.I32, append(append([]int64{}, batch...), int64(m), int64(n)))
	if err != nil {
		return nil, err
	}
	cd := res.Data.([]int32)
	if len(cd) == 0 {
		return res, nil
	}
	bd, bS8 := b.Data.([]int8)
	if len(bs) == 2 && bS8 {
		rows := a.Len() / k
		var pb *kernels.PackedBS8
		if bv != nil && bv.IsConst() {
			pb = x.packedFor(bv, func() any { return kernels.PackBS8(false, k, n, bd, n) }).(*kernels.PackedBS8)
		} else {
			pb = kernels.PackBS8(false, k, n, bd, n)
		}
		if err := gemmS8(rows, k, a, az, pb, bz, cd); err != nil {
			return nil, err
		}
		return res, nil
	}
	// Batched or u8 B: a plain loop, exact in int32; ViTs reach it only for
	// activation×activation products, which the passes leave in float.
	ad, err := ints32(a)
	if err != nil {
		return nil, err
	}
	bi, err := ints32(b)
	if err != nil {
		return nil, err
	}
	sa, sb := bstrides(as[:len(as)-2], batch), bstrides(bs[:len(bs)-2], batch)
	for bi0 := range prod(batch) {
		offA, offB, rem := 0, 0, bi0
		for d := len(batch) - 1; d >= 0; d-- {
			j := rem % int(batch[d])
			rem /= int(batch[d])
			offA += j * sa[d]
			offB += j * sb[d]
		}
		A, B, C := ad[offA*m*k:], bi[offB*k*n:], cd[bi0*m*n:]
		parallelFor(m, 4, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := C[i*n : i*n+n]
				for kk := range k {
					av := A[i*k+kk] - az
					if av == 0 {
						continue
					}
					brow := B[kk*n : kk*n+n]
					for j := range row {
						row[j] += av * (brow[j] - bz[min(j, len(bz)-1)])
					}
				}
			}
		})
	}
	return res, nil
}

// gemmS8 runs the int8 kernels for an m×k A (u8 or i8) against packed int8
// B. A per-column B zero point is applied afterwards as −bz[j]·Σ_k(a−az),
// since the kernels take one B zero point at most.
func gemmS8(m, k int, a *ir.Tensor, az int32, pb *kernels.PackedBS8, bz []int32, c []int32) error {
	n := pb.N()
	switch ad := a.Data.(type) {
	case []uint8:
		kernels.GemmU8S8Packed(m, ad, k, uint8(az), pb, c, n)
	case []int8:
		if len(bz) == 1 {
			kernels.GemmS8S8Packed(m, ad, k, int8(az), pb, int8(bz[0]), c, n)
			return nil
		}
		kernels.GemmS8S8Packed(m, ad, k, int8(az), pb, 0, c, n)
	default:
		return fmt.Errorf("integer matmul of %v", a.DType)
	}
	if len(bz) == 1 && bz[0] == 0 {
		return nil
	}
	ai, _ := ints32(a)
	parallelFor(m, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			s := int32(0)
			for _, x := range ai[i*k : i*k+k] {
				s += x - az
			}
			row := c[i*n : i*n+n]
			for j := range row {
				row[j] -= bz[min(j, len(bz)-1)] * s
			}
		}
	})
	return nil
}

func matMulInteger(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a, b := args[0], args[1]
	az, err := scalarZP(optArg(args, 2))
	if err != nil {
		return nil, fmt.Errorf("a_zero_point: %w", err)
	}
	bz, err := columnZP(optArg(args, 3), int(b.Shape[len(b.Shape)-1]))
	if err != nil {
		return nil, fmt.Errorf("b_zero_point: %w", err)
	}
	return intProduct(x, v.Arg(1), a, b, az, bz)
}

// requantize maps i32 accumulators (columns innermost, n per row) to the
// output type: saturate(round(acc·mult[j]) + yz), mult = a_s·b_s[j]/y_s in
// float32, with an optional i32 bias per column added first.
func requantize(acc []int32, n int, mult []float32, bias []int32, yz int32, dt ir.DType, shape []int64, colOf func(i int) int) (*ir.Tensor, error) {
	lo, hi, err := qRange(dt)
	if err != nil {
		return nil, err
	}
	q := func(i int) int32 {
		j, s := colOf(i), acc[i]
		if bias != nil {
			s += bias[j]
		}
		return QuantizeValue(float32(s)*mult[min(j, len(mult)-1)], 1, yz, lo, hi)
	}
	if dt == ir.U8 {
		return &ir.Tensor{DType: dt, Shape: shape, Data: genPar(len(acc), func(i int) uint8 { return uint8(q(i)) })}, nil
	}
	return &ir.Tensor{DType: dt, Shape: shape, Data: genPar(len(acc), func(i int) int8 { return int8(q(i)) })}, nil
}

// multipliers computes a_s·b_s[j]/y_s in float32, as ORT does.
func multipliers(as, bs, ys *ir.Tensor) ([]float32, error) {
	af, err1 := floats(as)
	bf, err2 := floats(bs)
	yf, err3 := floats(ys)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	if len(af) != 1 || len(yf) != 1 {
		return nil, fmt.Errorf("input and output scales must be scalars")
	}
	out := make([]float32, len(bf))
	for j, s := range bf {
		out[j] = af[0] * s / yf[0]
	}
	return out, nil
}

// qlinearParams reads a QLinear op's zero points (a and y scalar, b
// scalar or per column of n) and its requantization multipliers; the
// operands come at args[0] and args[3] with scale and zero point after each.
func qlinearParams(args []*ir.Tensor, n int) (az, yz int32, bz []int32, mult []float32, err error) {
	var e [4]error
	az, e[0] = scalarZP(args[2])
	bz, e[1] = columnZP(args[5], n)
	yz, e[2] = scalarZP(args[7])
	mult, e[3] = multipliers(args[1], args[4], args[6])
	return az, yz, bz, mult, errors.Join(e[:]...)
}

func qlinearMatMul(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	n := int(args[3].Shape[len(args[3].Shape)-1])
	az, yz, bz, mult, err := qlinearParams(args, n)
	if err != nil {
		return nil, err
	}
	acc, err := intProduct(x, v.Arg(3), args[0], args[3], az, bz)
	if err != nil {
		return nil, err
	}
	return requantize(acc.Data.([]int32), n, mult, nil, yz, v.Type.DType, acc.Shape, func(i int) int { return i % n })
}

// convAcc is an integer 2-D (or 1-D) convolution of (x − xz) and (w − wz[m])
// into i32, by direct loops: ViTs run one, the patch embedding, whose input
// is small next to the transformer's matmuls.
func convAcc(v *ir.Value, xt, wt *ir.Tensor, xz int32, wz []int32) ([]int32, []int64, error) {
	if len(xt.Shape) != 4 && len(xt.Shape) != 3 {
		return nil, nil, fmt.Errorf("%d-D integer convolution is not supported", len(xt.Shape)-2)
	}
	g, err := ir.ConvParams(v, ir.StaticShape(xt.Shape...), ir.StaticShape(wt.Shape...))
	if err != nil {
		return nil, nil, err
	}
	xs, ws := xt.Shape, wt.Shape
	kh, kw, sh, sw, dh, dw := int64(1), g.Kernel[0], int64(1), g.Strides[0], int64(1), g.Dilations[0]
	pt, pl, pb, pr := int64(0), g.Pads[0], int64(0), g.Pads[1]
	if len(xs) == 3 {
		xs, ws = []int64{xs[0], xs[1], 1, xs[2]}, []int64{ws[0], ws[1], 1, ws[2]}
	} else {
		kh, kw, sh, sw, dh, dw = g.Kernel[0], g.Kernel[1], g.Strides[0], g.Strides[1], g.Dilations[0], g.Dilations[1]
		pt, pl, pb, pr = g.Pads[0], g.Pads[1], g.Pads[2], g.Pads[3]
	}
	n, c, h, wd, m, grp := xs[0], xs[1], xs[2], xs[3], ws[0], g.Group
	if c%grp != 0 || m%grp != 0 || ws[1]*grp != c {
		return nil, nil, fmt.Errorf("channels %d and filters %d do not fit %d groups", c, m, grp)
	}
	if len(wz) != 1 && int64(len(wz)) != m {
		return nil, nil, fmt.Errorf("w_zero_point has %d entries, want 1 or %d", len(wz), m)
	}
	oh := (h+pt+pb-((kh-1)*dh+1))/sh + 1
	ow := (wd+pl+pr-((kw-1)*dw+1))/sw + 1
	if oh <= 0 || ow <= 0 {
		return nil, nil, fmt.Errorf("output size %dx%d", oh, ow)
	}
	xi, err := ints32(xt)
	if err != nil {
		return nil, nil, err
	}
	wi, err := ints32(wt)
	if err != nil {
		return nil, nil, err
	}
	cg, mg := c/grp, m/grp
	out := make([]int32, n*m*oh*ow)
	parallelFor(int(n*m), 1, func(lo, hi int) {
		for nm := int64(lo); nm < int64(hi); nm++ {
			b, oc := nm/m, nm%m
			z := wz[min(int(oc), len(wz)-1)]
			g0 := oc / mg * cg
			for oy := range oh {
				for ox := range ow {
					s := int32(0)
					for ci := range cg {
						plane := xi[(b*c+g0+ci)*h*wd:]
						wk := wi[(oc*cg+ci)*kh*kw:]
						for ki := range kh {
							iy := oy*sh - pt + ki*dh
							if iy < 0 || iy >= h {
								continue // padding holds the zero point: (xz − xz) = 0
							}
							for kj := range kw {
								ix := ox*sw - pl + kj*dw
								if ix >= 0 && ix < wd {
									s += (plane[iy*wd+ix] - xz) * (wk[ki*kw+kj] - z)
								}
							}
						}
					}
					out[(nm*oh+oy)*ow+ox] = s
				}
			}
		}
	})
	shape := []int64{n, m, oh, ow}
	if len(xt.Shape) == 3 {
		shape = []int64{n, m, ow}
	}
	return out, shape, nil
}

func convInteger(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	xz, err := scalarZP(optArg(args, 2))
	if err != nil {
		return nil, fmt.Errorf("x_zero_point: %w", err)
	}
	wz, err := columnZP(optArg(args, 3), int(args[1].Shape[0]))
	if err != nil {
		return nil, fmt.Errorf("w_zero_point: %w", err)
	}
	acc, shape, err := convAcc(v, args[0], args[1], xz, wz)
	if err != nil {
		return nil, err
	}
	return &ir.Tensor{DType: ir.I32, Shape: shape, Data: acc}, nil
}

func qlinearConv(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	m := int(args[3].Shape[0])
	xz, yz, wz, mult, err := qlinearParams(args, m)
	if err != nil {
		return nil, err
	}
	var bias []int32
	if bt := optArg(args, 8); bt != nil {
		if bias, err = ints32(bt); err != nil {
			return nil, err
		}
	}
	acc, shape, err := convAcc(v, args[0], args[3], xz, wz)
	if err != nil {
		return nil, err
	}
	spatial := prod(shape[2:])
	return requantize(acc, m, mult, bias, yz, v.Type.DType, shape, func(i int) int { return i / spatial % m })
}
