// Copyright 2026 The pqvc Authors.

package kernels

// SgemmStridedBatched computes batch independent products
//
//	C_i = alpha·op(A_i)·op(B_i) + beta·C_i,  i = 0..batch-1,
//
// where A_i starts at a[i*strideA], B_i at b[i*strideB] and C_i at
// c[i*strideC]; each is laid out as in Sgemm. This is the shape of
// multi-head attention: with Q, K, V of shape [tokens, heads*dh] the heads
// are strided views (stride dh, leading dimension heads*dh).
//
// Work is split across goroutines by batch entry when there are enough
// entries to balance; otherwise each product is split internally. Either
// way results are bitwise identical for every Threads setting.
func SgemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	if batch < 0 {
		panic("kernels: negative batch")
	}
	sub := func(s []float32, i, stride int) []float32 {
		if len(s) == 0 {
			return s
		}
		return s[min(i*stride, len(s)):]
	}
	batchedRun(batch, m*n*k, func(i, t int) {
		sgemm(active.Load().s, t, transA, transB, m, n, k, alpha, sub(a, i, strideA), lda,
			sub(b, i, strideB), ldb, beta, sub(c, i, strideC), ldc)
	})
}

// SgemmBatched computes C[i] = alpha·op(A[i])·op(B[i]) + beta·C[i] for each
// i, with the conventions of Sgemm and shared shapes and strides. It is
// parallelised like SgemmStridedBatched.
func SgemmBatched(transA, transB bool, m, n, k int, alpha float32, a [][]float32, lda int, b [][]float32, ldb int, beta float32, c [][]float32, ldc int) {
	if len(a) != len(c) || len(b) != len(c) {
		panic("kernels: batch slices differ in length")
	}
	batchedRun(len(c), m*n*k, func(i, t int) {
		sgemm(active.Load().s, t, transA, transB, m, n, k, alpha, a[i], lda, b[i], ldb, beta, c[i], ldc)
	})
}

// batchedRun calls f(i, threadsForIt) for every batch entry. With at least
// two entries per goroutine (or an exact multiple) entries are dealt out in
// contiguous ranges and each runs single-threaded; otherwise entries run in
// turn, each using all threads. work is the multiply-adds per entry.
func batchedRun(batch, work int, f func(i, threads int)) {
	t := min(Threads(), batch, max(1, batch*work/parMinWork))
	if t <= 1 || (batch%t != 0 && batch < 2*t) {
		for i := 0; i < batch; i++ {
			f(i, Threads())
		}
		return
	}
	parallelFor(t, func(w int) {
		lo, hi := splitRange(batch, t, w)
		for i := lo; i < hi; i++ {
			f(i, 1)
		}
	})
}
