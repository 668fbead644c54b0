// Copyright 2026 The pqvc Authors.

package gort

import (
	"math"

	"github.com/pqvc/pqvc/runtime/kernels"
)

// MHA is com.microsoft.MultiHeadAttention on q [b,sq,e], k [b,sk,e] and
// v [b,sk,ev] (no mask, bias or past): softmax(scale·QₕKₕᵀ)·Vₕ per batch and
// head, heads side by side in dst [b,sq,ev]. scores holds sq·sk floats.
func MHA(dst, q, k, v, scores []float32, b, sq, sk, e, ev, heads int, scale float32) {
	d, dv := e/heads, ev/heads
	for bi := 0; bi < b; bi++ {
		for h := 0; h < heads; h++ {
			qo, ko, vo := bi*sq*e+h*d, bi*sk*e+h*d, bi*sk*ev+h*dv
			kernels.Sgemm(false, true, sq, sk, d, scale, q[qo:], e, k[ko:], e, 0, scores, sk)
			for r := 0; r < sq; r++ {
				SoftmaxRow(scores[r*sk:(r+1)*sk], scores[r*sk:(r+1)*sk])
			}
			kernels.Sgemm(false, false, sq, dv, sk, 1, scores, sk, v[vo:], ev, 0, dst[bi*sq*ev+h*dv:], ev)
		}
	}
}

// BatchedMatMul computes batch products of m×k by k×n matrices (each
// optionally transposed), operand i of batch entry t at offset t·strideX;
// a stride of 0 broadcasts one matrix over the batch.
func BatchedMatMul(dst, a, b []float32, batch, m, n, k int, transA, transB bool, alpha float32, strideA, strideB int) {
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	kernels.SgemmStridedBatched(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, 0, dst, n, m*n, batch)
}

// Conv2D is a 2-D convolution with group 1: x [b,c,h,w], w
// [o,c,kh,kw], optional bias [o], into dst [b,o,oh,ow], through an im2col
// buffer col of c·kh·kw·oh·ow floats. geo is {h, w, kh, kw, sh, sw, dh, dw,
// padTop, padLeft, oh, ow}.
func Conv2D(dst, x, w, bias, col []float32, b, c, o int, geo []int) {
	h, wd, kh, kw := geo[0], geo[1], geo[2], geo[3]
	sh, sw, dh, dw := geo[4], geo[5], geo[6], geo[7]
	pt, pl, oh, ow := geo[8], geo[9], geo[10], geo[11]
	kk, hw := c*kh*kw, oh*ow
	for bi := 0; bi < b; bi++ {
		img := x[bi*c*h*wd:]
		for ci := 0; ci < c; ci++ {
			for i := 0; i < kh; i++ {
				for j := 0; j < kw; j++ {
					row := col[((ci*kh+i)*kw+j)*hw:][:hw]
					for y := 0; y < oh; y++ {
						iy := y*sh - pt + i*dh
						for xo := 0; xo < ow; xo++ {
							ix := xo*sw - pl + j*dw
							var val float32
							if iy >= 0 && iy < h && ix >= 0 && ix < wd {
								val = img[(ci*h+iy)*wd+ix]
							}
							row[y*ow+xo] = val
						}
					}
				}
			}
		}
		out := dst[bi*o*hw : (bi+1)*o*hw]
		kernels.Sgemm(false, false, o, hw, kk, 1, w, kk, col, hw, 0, out, hw)
		if bias != nil {
			for oc := 0; oc < o; oc++ {
				r := out[oc*hw : (oc+1)*hw]
				for i := range r {
					r[i] += bias[oc]
				}
			}
		}
	}
}

// quantize is QuantizeValue of pqvc's runtime: round half to even of
// x/scale (in float32), plus zp, saturated; NaN maps to zp.
func quantize(x, scale float32, zp int32, lo, hi float32) int32 {
	q := float32(math.RoundToEven(float64(x/scale))) + float32(zp)
	if !(q >= lo) {
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

// QuantizeU8 is QuantizeLinear to uint8: scale and zp hold one entry (per
// tensor) or one per channel, channel of element i being (i/inner)%len.
// zp may be nil (zero).
func QuantizeU8(dst []uint8, src, scale []float32, zp []uint8, inner int) {
	if len(scale) == 1 {
		var z uint8
		if zp != nil {
			z = zp[0]
		}
		quantizeU8Tensor(dst, src, scale[0], z)
		return
	}
	for i, x := range src {
		c := (i / inner) % len(scale)
		var z int32
		if zp != nil {
			z = int32(zp[c])
		}
		dst[i] = uint8(quantize(x, scale[c], z, 0, 255))
	}
}

// quantizeU8Tensor is the per-tensor loop of QuantizeU8, kept free of
// per-element channel arithmetic: it runs on every dynamic activation.
// Rounding half to even uses the float32 magic-number trick, adding and
// subtracting 1.5·2²³, exact for |v| < 2²² (larger values saturate anyway);
// it equals math.RoundToEven there without the float64 round trip.
func quantizeU8Tensor(dst []uint8, src []float32, scale float32, zp uint8) {
	dst = dst[:len(src)]
	zf := float32(zp)
	const magic = 12582912 // 1.5·2²³
	for i, x := range src {
		v := x / scale
		if v > -4194304 && v < 4194304 {
			v = (v + magic) - magic
		}
		q := v + zf
		switch {
		case q >= 0 && q <= 255:
			dst[i] = uint8(q)
		case q > 255:
			dst[i] = 255
		case q < 0:
			dst[i] = 0
		default: // NaN
			dst[i] = zp
		}
	}
}

// MinMax writes the minimum and maximum of src (ReduceMin and ReduceMax
// over all elements, as a dynamic quantizer asks for both) in one pass, in
// two lanes each. A NaN anywhere makes both NaN, as in Reduce.
func MinMax(lo, hi []float32, src []float32) {
	n := len(src)
	if n == 0 {
		lo[0], hi[0] = float32(math.Inf(1)), float32(math.Inf(-1))
		return
	}
	mn0, mn1, mx0, mx1 := src[0], src[0], src[0], src[0]
	var probe float32 // x−x is NaN exactly for NaN and ±Inf
	i := 0
	for ; i+2 <= n; i += 2 {
		a, b := src[i], src[i+1]
		if a < mn0 {
			mn0 = a
		}
		if a > mx0 {
			mx0 = a
		}
		if b < mn1 {
			mn1 = b
		}
		if b > mx1 {
			mx1 = b
		}
		probe += (a - a) + (b - b)
	}
	for ; i < n; i++ {
		a := src[i]
		mn0, mx0 = min(mn0, a), max(mx0, a)
		probe += a - a
	}
	if probe != probe {
		for _, x := range src {
			if x != x {
				lo[0], hi[0] = x, x
				return
			}
		}
	}
	lo[0], hi[0] = min(mn0, mn1), max(mx0, mx1)
}

// QuantizeS8 is QuantizeLinear to int8 (see QuantizeU8).
func QuantizeS8(dst []int8, src, scale []float32, zp []int8, inner int) {
	for i, x := range src {
		c := 0
		if len(scale) > 1 {
			c = (i / inner) % len(scale)
		}
		var z int32
		if zp != nil {
			z = int32(zp[c])
		}
		dst[i] = int8(quantize(x, scale[c], z, -128, 127))
	}
}

// Dequantize is DequantizeLinear: (x − zp)·scale, per tensor or per
// channel as in QuantizeU8. zp may be nil.
func Dequantize[T ~int8 | ~uint8 | ~int32](dst []float32, src []T, scale []float32, zp []T, inner int) {
	for i, x := range src {
		c := 0
		if len(scale) > 1 {
			c = (i / inner) % len(scale)
		}
		var z int32
		if zp != nil {
			z = int32(zp[c])
		}
		dst[i] = float32(int32(x)-z) * scale[c]
	}
}

// Rescale writes dst[i] = float32(acc[i])·scale (+ bias[i%len(bias)] when
// bias is not nil): the dequantizing epilogue of an int8 product.
func Rescale(dst []float32, acc []int32, scale float32, bias []float32) {
	dst = dst[:len(acc)]
	if bias == nil {
		for i, x := range acc {
			dst[i] = float32(x) * scale
		}
		return
	}
	n := len(bias)
	for o := 0; o+n <= len(acc); o += n {
		a, d := acc[o:o+n], dst[o:o+n]
		for j, x := range a {
			d[j] = float32(x)*scale + bias[j]
		}
	}
}

// DynQuantU8 is ONNX DynamicQuantizeLinear as pqvc's quantize pass writes
// it (ReduceMin/ReduceMax, scale = (max(x,0) − min(x,0))/255 floored at
// 1e-30, zp = saturate(round(−min/scale))), quantizing src into dst. It
// returns the scale and zero point.
func DynQuantU8(dst []uint8, src []float32) (float32, uint8) {
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, x := range src {
		lo = min(lo, x)
		hi = max(hi, x)
	}
	hi = max(hi, 0)
	lo = min(lo, 0)
	scale := max((hi-lo)/255, 1e-30)
	z := min(max(-(lo/scale), 0), 255)
	zp := uint8(float32(math.RoundToEven(float64(z))))
	QuantizeU8(dst, src, []float32{scale}, []uint8{zp}, 1)
	return scale, zp
}
