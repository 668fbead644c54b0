package runtime

import (
	"math"
	"math/rand"
	"testing"
)

// TestReduce4: the unrolled reductions agree with plain loops (min and max
// exactly, NaN included; the sum to float32 rounding) at every length
// around the unroll width.
func TestReduce4(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for n := range 40 {
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(rng.NormFloat64() * 100)
		}
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		var sum float64
		for _, x := range xs {
			lo, hi, sum = min(lo, x), max(hi, x), sum+float64(x)
		}
		if l, h := minMax(xs); l != lo || h != hi {
			t.Errorf("n=%d: minMax %v %v, want %v %v", n, l, h, lo, hi)
		}
		if s := sum4(xs); math.Abs(float64(s)-sum) > 1e-4*float64(n)*100 {
			t.Errorf("n=%d: sum4 %v, want %v", n, s, sum)
		}
		if n > 0 {
			xs[rng.Intn(n)] = float32(math.NaN())
			if l, h := minMax(xs); l == l || h == h {
				t.Errorf("n=%d: minMax with a NaN gives %v %v, want NaN", n, l, h)
			}
		}
	}
}
