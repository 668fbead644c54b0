// Copyright 2026 The pqvc Authors.

package gort

import (
	"errors"
	"fmt"
	"math"

	"github.com/pqvc/pqvc/runtime/kernels"
)

// Binary operators, numbered for the generated code.
const (
	OpAdd = iota
	OpSub
	OpMul
	OpDiv
	OpPow
	OpMax
	OpMin
)

func errIndex(i, n int) error { return fmt.Errorf("gather index %d out of range [%d, %d)", i, -n, n) }

// ErrNonFinite is returned when a dynamic quantization range is not finite.
var ErrNonFinite = errors.New("activation range is not finite")

func apply(op int, x, y float32) float32 {
	switch op {
	case OpAdd:
		return x + y
	case OpSub:
		return x - y
	case OpMul:
		return x * y
	case OpDiv:
		return x / y
	case OpPow:
		return float32(math.Pow(float64(x), float64(y)))
	case OpMax:
		if x != x || y != y {
			return float32(math.NaN())
		}
		return max(x, y)
	default:
		if x != x || y != y {
			return float32(math.NaN())
		}
		return min(x, y)
	}
}

// BinSame applies op elementwise to equal-shaped a and b.
func BinSame(op int, dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	switch op {
	case OpAdd:
		for i, x := range a {
			dst[i] = x + b[i]
		}
	case OpSub:
		for i, x := range a {
			dst[i] = x - b[i]
		}
	case OpMul:
		for i, x := range a {
			dst[i] = x * b[i]
		}
	case OpDiv:
		for i, x := range a {
			dst[i] = x / b[i]
		}
	default:
		for i, x := range a {
			dst[i] = apply(op, x, b[i])
		}
	}
}

// BinRow applies op to a (rows of len(row) elements) and row, repeated for
// every row; rowFirst puts row on the left of op.
func BinRow(op int, dst, a, row []float32, rowFirst bool) {
	n := len(row)
	if n == 0 {
		return
	}
	for o := 0; o+n <= len(a); o += n {
		src, d := a[o:o+n], dst[o:o+n]
		switch {
		case op == OpAdd:
			for j, x := range src {
				d[j] = x + row[j]
			}
		case op == OpMul:
			for j, x := range src {
				d[j] = x * row[j]
			}
		case rowFirst:
			for j, x := range src {
				d[j] = apply(op, row[j], x)
			}
		default:
			for j, x := range src {
				d[j] = apply(op, x, row[j])
			}
		}
	}
}

// BinScalar applies op to every element of a and the scalar s; sFirst puts
// s on the left of op.
func BinScalar(op int, dst, a []float32, s float32, sFirst bool) {
	dst = dst[:len(a)]
	switch {
	case op == OpAdd:
		for i, x := range a {
			dst[i] = x + s
		}
	case op == OpMul:
		for i, x := range a {
			dst[i] = x * s
		}
	case op == OpDiv && !sFirst:
		for i, x := range a {
			dst[i] = x / s
		}
	case sFirst:
		for i, x := range a {
			dst[i] = apply(op, s, x)
		}
	default:
		for i, x := range a {
			dst[i] = apply(op, x, s)
		}
	}
}

// BinBroadcast applies op with general broadcasting: out is the output
// shape, sa and sb the operands' strides over it (0 on broadcast axes).
func BinBroadcast(op int, dst, a, b []float32, out, sa, sb []int) {
	r := len(out)
	n := 1
	for _, d := range out {
		n *= d
	}
	if n == 0 {
		return
	}
	if r == 0 {
		dst[0] = apply(op, a[0], b[0])
		return
	}
	var idx [8]int
	oa, ob := 0, 0
	last := out[r-1]
	la, lb := sa[r-1], sb[r-1]
	for o := 0; o < n; o += last {
		for j := 0; j < last; j++ {
			dst[o+j] = apply(op, a[oa+j*la], b[ob+j*lb])
		}
		for ax := r - 2; ax >= 0; ax-- {
			idx[ax]++
			oa += sa[ax]
			ob += sb[ax]
			if idx[ax] < out[ax] {
				break
			}
			oa -= sa[ax] * idx[ax]
			ob -= sb[ax] * idx[ax]
			idx[ax] = 0
		}
	}
}

// Unary operators, numbered for the generated code.
const (
	OpNeg = iota
	OpSqrt
	OpExp
	OpErf
	OpRelu
	OpTanh
	OpSigmoid
	OpAbs
	OpReciprocal
	OpRound
	OpFloor
	OpCeil
	OpLog
	OpGelu
	OpGeluTanh
)

// Unary applies op to every element of src.
func Unary(op int, dst, src []float32) {
	dst = dst[:len(src)]
	switch op {
	case OpExp:
		kernels.Exp(dst, src)
		return
	case OpErf:
		kernels.Erf(dst, src)
		return
	case OpGelu:
		Gelu(dst, src)
		return
	}
	for i, x := range src {
		var y float32
		switch op {
		case OpNeg:
			y = -x
		case OpSqrt:
			y = float32(math.Sqrt(float64(x)))
		case OpRelu:
			y = max(x, 0)
		case OpTanh:
			y = float32(math.Tanh(float64(x)))
		case OpSigmoid:
			y = 1 / (1 + kernels.ExpScalar(-x))
		case OpAbs:
			y = float32(math.Abs(float64(x)))
		case OpReciprocal:
			y = 1 / x
		case OpRound:
			y = float32(math.RoundToEven(float64(x)))
		case OpFloor:
			y = float32(math.Floor(float64(x)))
		case OpCeil:
			y = float32(math.Ceil(float64(x)))
		case OpLog:
			y = float32(math.Log(float64(x)))
		case OpGeluTanh:
			const c = 0.7978845608028654 // sqrt(2/π)
			y = 0.5 * x * (1 + float32(math.Tanh(float64(c*(x+0.044715*x*x*x)))))
		}
		dst[i] = y
	}
}

// Gelu is the exact GELU, 0.5·x·(1+erf(x/√2)), with the vector erf.
func Gelu(dst, src []float32) {
	dst = dst[:len(src)]
	const chunk = 256
	var tmp [chunk]float32
	for o := 0; o < len(src); o += chunk {
		s := src[o:min(o+chunk, len(src))]
		t := tmp[:len(s)]
		for i, x := range s {
			t[i] = x * 0.7071067811865476
		}
		kernels.Erf(t, t)
		d := dst[o : o+len(s)]
		for i, x := range s {
			d[i] = 0.5 * x * (1 + t[i])
		}
	}
}

// Clip bounds every element of src to [lo, hi]; NaN stays NaN.
func Clip(dst, src []float32, lo, hi float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		if x < lo {
			x = lo
		}
		if x > hi {
			x = hi
		}
		dst[i] = x
	}
}

// Reduce operators, numbered for the generated code.
const (
	RedSum = iota
	RedMean
	RedMax
	RedMin
)

// Reduce reduces src, viewed as [outer, n, inner], over its middle axis.
func Reduce(op int, dst, src []float32, outer, n, inner int) {
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*n*inner + i
			var acc float32
			switch op {
			case RedMax:
				acc = float32(math.Inf(-1))
			case RedMin:
				acc = float32(math.Inf(1))
			}
			for j := 0; j < n; j++ {
				x := src[base+j*inner]
				switch op {
				case RedSum, RedMean:
					acc += x
				case RedMax:
					if x > acc || x != x {
						acc = x
					}
				case RedMin:
					if x < acc || x != x {
						acc = x
					}
				}
			}
			if op == RedMean {
				acc /= float32(n)
			}
			dst[o*inner+i] = acc
		}
	}
}

// Softmax normalises src, viewed as [outer, n, inner], over its middle
// axis.
func Softmax(dst, src []float32, outer, n, inner int) {
	if inner == 1 {
		for r := 0; r < outer; r++ {
			SoftmaxRow(dst[r*n:(r+1)*n], src[r*n:(r+1)*n])
		}
		return
	}
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*n*inner + i
			m := float32(math.Inf(-1))
			for j := 0; j < n; j++ {
				m = max(m, src[base+j*inner])
			}
			var sum float32
			for j := 0; j < n; j++ {
				e := kernels.ExpScalar(src[base+j*inner] - m)
				dst[base+j*inner] = e
				sum += e
			}
			inv := 1 / sum
			for j := 0; j < n; j++ {
				dst[base+j*inner] *= inv
			}
		}
	}
}

// SoftmaxRow normalises one contiguous row (dst may be src). Max and sum
// run in four independent lanes so the loops are not one long dependency
// chain.
func SoftmaxRow(dst, src []float32) {
	n := len(src)
	dst = dst[:n]
	if n == 0 {
		return
	}
	m0, m1, m2, m3 := src[0], src[0], src[0], src[0]
	i := 0
	for ; i+4 <= n; i += 4 {
		s := src[i : i+4 : i+4]
		if s[0] > m0 {
			m0 = s[0]
		}
		if s[1] > m1 {
			m1 = s[1]
		}
		if s[2] > m2 {
			m2 = s[2]
		}
		if s[3] > m3 {
			m3 = s[3]
		}
	}
	for ; i < n; i++ {
		if src[i] > m0 {
			m0 = src[i]
		}
	}
	m := max(m0, m1, m2, m3)
	for i, x := range src {
		dst[i] = x - m
	}
	kernels.Exp(dst, dst)
	var s0, s1, s2, s3 float32
	i = 0
	for ; i+4 <= n; i += 4 {
		d := dst[i : i+4 : i+4]
		s0 += d[0]
		s1 += d[1]
		s2 += d[2]
		s3 += d[3]
	}
	for ; i < n; i++ {
		s0 += dst[i]
	}
	inv := 1 / ((s0 + s1) + (s2 + s3))
	for i := range dst {
		dst[i] *= inv
	}
}

// LayerNorm normalises each of rows rows of n elements: (x−mean)/√(var+eps)
// times gamma plus beta (beta may be nil). The statistics are two passes
// in float64, exactly as pqvc's runtime computes them, so that quantized
// models downstream round the same way.
func LayerNorm(dst, src, gamma, beta []float32, rows, n int, eps float32) {
	gamma = gamma[:n]
	for r := 0; r < rows; r++ {
		row, out := src[r*n:(r+1)*n], dst[r*n:(r+1)*n]
		var mean float64
		for _, x := range row {
			mean += float64(x)
		}
		mean /= float64(n)
		var variance float64
		for _, x := range row {
			d := float64(x) - mean
			variance += d * d
		}
		variance /= float64(n)
		inv := float32(1 / math.Sqrt(variance+float64(eps)))
		m := float32(mean)
		if beta == nil {
			for j, x := range row {
				out[j] = (x - m) * inv * gamma[j]
			}
			continue
		}
		beta := beta[:n]
		for j, x := range row {
			out[j] = (x-m)*inv*gamma[j] + beta[j]
		}
	}
}

// LayerNormFast is LayerNorm with float32 statistics summed in four lanes:
// faster, and within float32 rounding of LayerNorm. Float graphs use it;
// quantized graphs use LayerNorm, whose bits match pqvc's runtime so that
// the quantizer downstream rounds the same way.
func LayerNormFast(dst, src, gamma, beta []float32, rows, n int, eps float32) {
	gamma = gamma[:n]
	for r := 0; r < rows; r++ {
		row, out := src[r*n:(r+1)*n], dst[r*n:(r+1)*n]
		var s0, s1, s2, s3 float32
		j := 0
		for ; j+4 <= n; j += 4 {
			x := row[j : j+4 : j+4]
			s0 += x[0]
			s1 += x[1]
			s2 += x[2]
			s3 += x[3]
		}
		for ; j < n; j++ {
			s0 += row[j]
		}
		mean := ((s0 + s1) + (s2 + s3)) / float32(n)
		s0, s1, s2, s3 = 0, 0, 0, 0
		j = 0
		for ; j+4 <= n; j += 4 {
			x := row[j : j+4 : j+4]
			d0, d1, d2, d3 := x[0]-mean, x[1]-mean, x[2]-mean, x[3]-mean
			s0 += d0 * d0
			s1 += d1 * d1
			s2 += d2 * d2
			s3 += d3 * d3
		}
		for ; j < n; j++ {
			d := row[j] - mean
			s0 += d * d
		}
		variance := ((s0 + s1) + (s2 + s3)) / float32(n)
		inv := float32(1 / math.Sqrt(float64(variance)+float64(eps)))
		if beta == nil {
			for j, x := range row {
				out[j] = (x - mean) * inv * gamma[j]
			}
			continue
		}
		beta := beta[:n]
		for j, x := range row {
			out[j] = (x-mean)*inv*gamma[j] + beta[j]
		}
	}
}
