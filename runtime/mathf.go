package runtime

import "math"

// Fast float32 transcendental functions. Softmax and GELU call these millions
// of times per image; math.Exp and math.Erf in float64 would dominate run
// time. Both are accurate to a few float32 ulps, well inside the 1e-4 logit
// agreement with ONNX Runtime the tests demand.

// expf computes e^x in float32 by range reduction x = n·ln2 + r, |r| ≤ ln2/2,
// and a degree-6 polynomial for e^r.
func expf(x float32) float32 {
	switch {
	case x > 88.72283:
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
	n := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - n*ln2hi - n*ln2lo
	p := float32(1.0 / 720)
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	ni := int32(n)
	if ni < -126 { // subnormal result: scale in two steps
		return p * math.Float32frombits(uint32(ni+126+127)<<23) * math.Float32frombits(1<<23)
	}
	return p * math.Float32frombits(uint32(ni+127)<<23)
}

// erff computes erf(x) in float32 with a rational approximation on [-4, 4]
// (outside, erf is ±1 to float32 precision).
func erff(x float32) float32 {
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

// tanhf via expf; used by the tanh-approximate GELU.
func tanhf(x float32) float32 {
	if x > 9 {
		return 1
	}
	if x < -9 {
		return -1
	}
	e := expf(2 * x)
	return (e - 1) / (e + 1)
}

func sigmoidf(x float32) float32 { return 1 / (1 + expf(-x)) }
