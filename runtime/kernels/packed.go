// Copyright 2026 The pqvc Authors.

package kernels

// PackedB is a k×n FP32 matrix (a constant weight, typically) stored in the
// panel layout of the micro-kernels, so repeated products with it skip the
// packing step. It is bound to the kernel path active when it was packed
// and is safe for concurrent use by multiple SgemmPacked calls.
type PackedB struct {
	ar   *sgemmArch
	k, n int
	kc   int // k-block depth
	wp   int // padded width (sum of panel widths)
	// data holds the k-blocks one after another; block at row p0 has
	// kcb×wp floats starting at p0*wp, and within it the panel of column
	// j starts at j*kcb.
	data []float32
}

// K returns the inner (row) dimension of the packed matrix.
func (pb *PackedB) K() int { return pb.k }

// N returns the column dimension of the packed matrix.
func (pb *PackedB) N() int { return pb.n }

// PackB packs op(B), a k×n matrix (b is stored n×k with stride ldb when
// transB, k×n otherwise), for use with SgemmPacked. PyTorch/ONNX linear
// weights of shape [out, in] are packed with transB = true.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	if k < 0 || n < 0 {
		panic("kernels: negative dimension")
	}
	if transB {
		checkMatrix("b", n, k, b, ldb)
	} else {
		checkMatrix("b", k, n, b, ldb)
	}
	ar := active.Load().s
	pb := &PackedB{ar: ar, k: k, n: n, kc: kBlock(k), wp: ar.paddedWidth(n)}
	var buf []float32
	pb.data = alignedFloats(&buf, k*pb.wp)
	for p0 := 0; p0 < k; p0 += pb.kc {
		kcb := min(pb.kc, k-p0)
		packB(ar, pb.data[p0*pb.wp:], transB, b, ldb, n, p0, kcb, 0, n)
	}
	return pb
}

// SgemmPacked computes C = A·B + bias, where A is m×k row-major with stride
// lda, B is the prepacked k×n matrix, C is m×n with stride ldc, and bias
// (length n, or nil) is added to every row inside the kernel epilogue. C is
// not read. Results are bitwise identical for every Threads setting.
func SgemmPacked(m int, a []float32, lda int, pb *PackedB, c []float32, ldc int, bias []float32) {
	if m < 0 {
		panic("kernels: negative dimension")
	}
	n, k := pb.n, pb.k
	if m == 0 || n == 0 {
		return
	}
	checkMatrix("c", m, n, c, ldc)
	if bias != nil && len(bias) < n {
		panic("kernels: len(bias) < n")
	}
	if k == 0 {
		scaleC(m, n, 0, c, ldc, bias)
		return
	}
	checkMatrix("a", m, k, a, lda)
	j := &sgemmJob{ar: pb.ar, a: a, lda: lda, pb: pb, m: m, n: n, k: k, kc: pb.kc,
		alpha: 1, c: c, ldc: ldc, bias: bias}
	j.parallel(Threads())
}
