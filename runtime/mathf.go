package runtime

import "github.com/pqvc/pqvc/runtime/kernels"

// The scalar transcendentals live in runtime/kernels next to their AVX-512
// versions, so the vector and scalar paths share one set of polynomials.
var (
	expf = kernels.ExpScalar
	erff = kernels.ErfScalar
)

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
