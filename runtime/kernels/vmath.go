// Copyright 2026 The pqvc Authors.

package kernels

import "math"

// Vectorised float32 transcendentals for the runtime's elementwise hot
// spots (Softmax's exp, GELU's erf). Both use the same range reduction and
// polynomials as the scalar versions in the runtime package, so every path
// agrees to a few ulps; the AVX-512 path does 16 lanes per instruction.

// Exp writes e^x for each x in src to dst (len(dst) >= len(src)).
func Exp(dst, src []float32) {
	n := len(src)
	dst = dst[:n]
	i := 0
	if cpu.avx512 && activePathIs("avx512") && n >= 16 {
		i = n &^ 15
		expAVX512(dst[:i], src[:i])
	}
	for ; i < n; i++ {
		dst[i] = ExpScalar(src[i])
	}
}

// Erf writes erf(x) for each x in src to dst.
func Erf(dst, src []float32) {
	n := len(src)
	dst = dst[:n]
	i := 0
	if cpu.avx512 && activePathIs("avx512") && n >= 16 {
		i = n &^ 15
		erfAVX512(dst[:i], src[:i])
	}
	for ; i < n; i++ {
		dst[i] = ErfScalar(src[i])
	}
}

func activePathIs(name string) bool { return active.Load().name == name }

// ExpScalar is e^x: x = n·ln2 + r, |r| ≤ ln2/2, a degree-6 polynomial for
// e^r, then scaling by 2^n.
func ExpScalar(x float32) float32 {
	switch {
	case x > 89: // beyond float32 even before rounding; below, the scaling overflows by itself
		return float32(math.Inf(1))
	case x < -103.97208:
		return 0
	case x != x:
		return x
	}
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	n := float32(math.RoundToEven(float64(x * log2e)))
	r := x - n*ln2hi - n*ln2lo
	p := float32(1.0 / 720)
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	ni := int32(n)
	if ni > 127 { // 2^128 is not a float32, but p·2^128 may still be finite
		return p * 2 * math.Float32frombits(uint32(ni-1+127)<<23)
	}
	if ni < -126 { // subnormal result: scale in two steps
		return p * math.Float32frombits(uint32(ni+126+127)<<23) * math.Float32frombits(1<<23)
	}
	return p * math.Float32frombits(uint32(ni+127)<<23)
}

// ErfScalar is erf(x) by a rational approximation on [-4, 4]; outside, erf
// is ±1 to float32 precision.
func ErfScalar(x float32) float32 {
	if x != x {
		return x
	}
	x = max(-4, min(4, x))
	x2 := x * x
	p := float32(-2.72614225801306e-10)
	p = p*x2 + 2.77068142495902e-08
	p = p*x2 + -2.10102402082508e-06
	p = p*x2 + -5.69250639462346e-05
	p = p*x2 + -7.34990630326855e-04
	p = p*x2 + -2.95459980854025e-03
	p = p*x2 + -1.60960333262415e-02
	p *= x
	q := float32(-1.45660718464996e-05)
	q = q*x2 + -2.13374055278905e-04
	q = q*x2 + -1.68282697438203e-03
	q = q*x2 + -7.37332916720468e-03
	q = q*x2 + -1.42647390514189e-02
	return p / q
}
