package runtime

// Reductions over float32 slices with four independent accumulators, so
// the adds and compares overlap instead of waiting on one another (Go does
// not vectorise loops). Min and max are exact whatever the order; the sum
// rounds differently from a left-to-right sum, but the same way every run.

// minMax returns the smallest and largest element (NaN if any is NaN, as
// the min and max builtins do); +Inf and -Inf for an empty slice.
func minMax(xs []float32) (lo, hi float32) {
	inf := float32(1) / zero32
	l0, l1, l2, l3 := inf, inf, inf, inf
	h0, h1, h2, h3 := -inf, -inf, -inf, -inf
	i := 0
	for ; i+4 <= len(xs); i += 4 {
		x := xs[i : i+4 : i+4]
		l0, h0 = min(l0, x[0]), max(h0, x[0])
		l1, h1 = min(l1, x[1]), max(h1, x[1])
		l2, h2 = min(l2, x[2]), max(h2, x[2])
		l3, h3 = min(l3, x[3]), max(h3, x[3])
	}
	for ; i < len(xs); i++ {
		l0, h0 = min(l0, xs[i]), max(h0, xs[i])
	}
	return min(l0, l1, l2, l3), max(h0, h1, h2, h3)
}

// maxOf returns the largest element (-Inf for an empty slice).
func maxOf(xs []float32) float32 {
	_, hi := minMax(xs)
	return hi
}

// sum4 adds the elements in four interleaved partial sums.
func sum4(xs []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(xs); i += 4 {
		x := xs[i : i+4 : i+4]
		s0 += x[0]
		s1 += x[1]
		s2 += x[2]
		s3 += x[3]
	}
	for ; i < len(xs); i++ {
		s0 += xs[i]
	}
	return (s0 + s1) + (s2 + s3)
}

var zero32 float32
