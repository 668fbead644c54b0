// Copyright 2026 The pqvc Authors.

package kernels

import (
	"math"
	"testing"
)

// TestVectorMathMatchesScalar holds the AVX-512 exp and erf to the scalar
// versions (and to float64 math) over a dense sweep plus the edge values.
func TestVectorMathMatchesScalar(t *testing.T) {
	var src []float32
	for x := -120.0; x <= 100; x += 0.0137 {
		src = append(src, float32(x))
	}
	inf := float32(math.Inf(1))
	src = append(src, 0, -0, inf, -inf, float32(math.NaN()), 88.72283, 88.8, -103.9, -104, 1e-30, -1e-30)
	for len(src)%16 != 3 { // leave a ragged tail for the scalar path
		src = append(src, 0.5)
	}
	dst := make([]float32, len(src))
	for _, tc := range []struct {
		name   string
		vec    func(dst, src []float32)
		scalar func(float32) float32
		ref    func(float64) float64
	}{
		{"exp", Exp, ExpScalar, math.Exp},
		{"erf", Erf, ErfScalar, math.Erf},
	} {
		tc.vec(dst, src)
		var worst float64
		for i, x := range src {
			got, want := dst[i], tc.scalar(x)
			if x != x {
				if got == got {
					t.Errorf("%s(NaN) = %v", tc.name, got)
				}
				continue
			}
			ref := tc.ref(float64(x))
			if math.IsInf(ref, 0) || math.IsInf(float64(want), 0) {
				if got != want {
					t.Errorf("%s(%v) = %v, want %v", tc.name, x, got, want)
				}
				continue
			}
			// Relative to the exact value (absolute near zero).
			e := math.Abs(float64(got)-ref) / math.Max(math.Abs(ref), 1e-30)
			if tc.name == "erf" || math.Abs(ref) < 1e-37 {
				e = math.Abs(float64(got) - ref)
			}
			worst = math.Max(worst, e)
			if math.Abs(float64(got-want)) > 4e-7*math.Max(1, math.Abs(float64(want))) && math.Abs(ref) > 1e-37 {
				t.Errorf("%s(%v): vector %v, scalar %v", tc.name, x, got, want)
			}
		}
		if worst > 1e-6 {
			t.Errorf("%s: worst error %g vs float64", tc.name, worst)
		}
		t.Logf("%s (%s path): worst error %.3g vs float64", tc.name, KernelPath(), worst)
	}
}

func BenchmarkExp(b *testing.B) {
	src := make([]float32, 197*197*3)
	for i := range src {
		src[i] = float32(i%100) * -0.1
	}
	dst := make([]float32, len(src))
	b.SetBytes(int64(4 * len(src)))
	for range b.N {
		Exp(dst, src)
	}
}

func BenchmarkErf(b *testing.B) {
	src := make([]float32, 197*768)
	for i := range src {
		src[i] = float32(i%100)*0.08 - 4
	}
	dst := make([]float32, len(src))
	b.SetBytes(int64(4 * len(src)))
	for range b.N {
		Erf(dst, src)
	}
}
