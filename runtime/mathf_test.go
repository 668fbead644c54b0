package runtime

import (
	"math"
	"testing"
)

func TestFastMath(t *testing.T) {
	var maxExp, maxErf float64
	for x0 := -30.0; x0 <= 30; x0 += 0.001 {
		x := float64(float32(x0)) // compare on the float32 input itself
		want := math.Exp(x)
		got := float64(expf(float32(x)))
		if rel := math.Abs(got-want) / want; rel > maxExp {
			maxExp = rel
		}
		if x > -6 && x < 6 {
			if d := math.Abs(float64(erff(float32(x))) - math.Erf(x)); d > maxErf {
				maxErf = d
			}
		}
	}
	if maxExp > 5e-7 {
		t.Errorf("expf max relative error %g", maxExp)
	}
	if maxErf > 5e-7 {
		t.Errorf("erff max abs error %g", maxErf)
	}
	if expf(100) != float32(math.Inf(1)) || expf(-200) != 0 {
		t.Error("expf limits")
	}
}
