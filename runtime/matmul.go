package runtime

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/kernels"
)

func init() {
	register("MatMul", matmul)
	register("Gemm", gemm)
}

// matmul is numpy matmul on f32. A constant 2-D right operand (a weight) is
// packed once per Program and every row of A, across all batch dims, goes
// through one packed GEMM. Otherwise batches run as strided GEMMs.
func matmul(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a, b := args[0], args[1]
	if a.DType != ir.F32 || b.DType != ir.F32 {
		return nil, fmt.Errorf("MatMul on %v×%v is not supported", a.DType, b.DType)
	}
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int64{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int64{bs[0], 1}
	}
	m, k, n := int(as[len(as)-2]), int(as[len(as)-1]), int(bs[len(bs)-1])
	if int(bs[len(bs)-2]) != k {
		return nil, fmt.Errorf("inner dims differ: %v × %v", a.Shape, b.Shape)
	}
	batch, err := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	outShape := append(append([]int64{}, batch...), int64(m), int64(n))
	res, err := newTensor(ir.F32, outShape)
	if err != nil {
		return nil, err
	}
	ad, bd, cd := a.F32(), b.F32(), res.F32()
	if len(cd) == 0 {
		return finishMatMulShape(res, a, b), nil
	}
	if len(bs) == 2 && v.Arg(1).IsConst() && len(b.Shape) == 2 {
		gemmConstB(x, v.Arg(1), false, len(ad)/k, k, n, ad, bd, n, cd, nil)
		return finishMatMulShape(res, a, b), nil
	}
	nb := prod(batch)
	sa, sb := bstrides(as[:len(as)-2], batch), bstrides(bs[:len(bs)-2], batch)
	strideA, strideB := m*k, k*n
	if len(batch) == 0 || equalInts(as[:len(as)-2], batch) && equalInts(bs[:len(bs)-2], batch) {
		kernels.SgemmStridedBatched(false, false, m, n, k, 1, ad, k, strideA, bd, n, strideB, 0, cd, n, m*n, nb)
		return finishMatMulShape(res, a, b), nil
	}
	for i := range nb {
		offA, offB, rem := 0, 0, i
		for d := len(batch) - 1; d >= 0; d-- {
			j := rem % int(batch[d])
			rem /= int(batch[d])
			offA += j * sa[d]
			offB += j * sb[d]
		}
		kernels.Sgemm(false, false, m, n, k, 1, ad[offA*strideA:], k, bd[offB*strideB:], n, 0, cd[i*m*n:], n)
	}
	return finishMatMulShape(res, a, b), nil
}

// matmulBias is MatMul with a constant 2-D weight plus a per-column bias,
// added in the packed GEMM's epilogue.
func matmulBias(x *execCtx, v *ir.Value, args []*ir.Tensor, bias *ir.Tensor) (*ir.Tensor, error) {
	a, b := args[0], args[1]
	k, n := int(b.Shape[0]), int(b.Shape[1])
	if a.DType != ir.F32 || int(a.Shape[len(a.Shape)-1]) != k {
		return matmul(x, v, args) // let the general kernel report the problem
	}
	out := append(append([]int64{}, a.Shape[:len(a.Shape)-1]...), int64(n))
	res, err := newTensor(ir.F32, out)
	if err != nil {
		return nil, err
	}
	ad, bd := a.F32(), b.F32()
	if len(ad) == 0 {
		return res, nil
	}
	gemmConstB(x, v.Arg(1), false, len(ad)/k, k, n, ad, bd, n, res.F32(), bias.F32())
	return res, nil
}

// gemmConstB computes c = a·op(b) (+ bias per column) for a constant
// weight w holding b: through the Program's packed copy of b when it keeps
// one or has room for one, else straight from b, which the GEMM packs
// block by block into a pooled workspace. Packing the whole weight per call
// instead would make garbage as large as the model on every run of a model
// past the pack-cache budget. Both paths give the same bits (TestPackCacheBudget).
func gemmConstB(x *execCtx, w *ir.Value, transB bool, m, k, n int, a, b []float32, ldb int, c, bias []float32) {
	if pk := x.packedIfRoom(w, func() any { return kernels.PackB(transB, k, n, b, ldb) }); pk != nil {
		kernels.SgemmPacked(m, a, k, pk.(*kernels.PackedB), c, n, bias)
		return
	}
	beta := float32(0)
	if bias != nil {
		for i := range m {
			copy(c[i*n:i*n+n], bias)
		}
		beta = 1
	}
	kernels.Sgemm(false, transB, m, n, k, 1, a, k, b, ldb, beta, c, n)
}

// finishMatMulShape drops the dims numpy adds for 1-D operands.
func finishMatMulShape(res, a, b *ir.Tensor) *ir.Tensor {
	if len(a.Shape) > 1 && len(b.Shape) > 1 {
		return res
	}
	r := len(res.Shape)
	s := append([]int64{}, res.Shape[:r-2]...)
	if len(a.Shape) > 1 {
		s = append(s, res.Shape[r-2])
	}
	if len(b.Shape) > 1 {
		s = append(s, res.Shape[r-1])
	}
	return res.Reshaped(s)
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func gemm(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a, b := args[0], args[1]
	var c *ir.Tensor
	if len(args) > 2 {
		c = args[2]
	}
	if a.DType != ir.F32 || b.DType != ir.F32 || c != nil && c.DType != ir.F32 {
		return nil, fmt.Errorf("Gemm on %v is not supported", a.DType)
	}
	ta, tb := v.Int("transA") != 0, v.Int("transB") != 0
	alpha, beta := v.Float("alpha"), v.Float("beta")
	m, k := int(a.Shape[0]), int(a.Shape[1])
	if ta {
		m, k = k, m
	}
	k2, n := int(b.Shape[0]), int(b.Shape[1])
	if tb {
		k2, n = n, k2
	}
	if k != k2 {
		return nil, fmt.Errorf("inner dims differ: %v × %v", a.Shape, b.Shape)
	}
	res, err := newTensor(ir.F32, []int64{int64(m), int64(n)})
	if err != nil {
		return nil, err
	}
	cd := res.F32()
	if len(cd) == 0 {
		return res, nil
	}
	// Weight-times-activation with a per-column bias: the packed path with
	// the bias fused in the kernel epilogue.
	if !ta && alpha == 1 && v.Arg(1).IsConst() && (c == nil || beta == 1 && len(c.F32()) == n && c.Shape[len(c.Shape)-1] == int64(n)) {
		bd := b.F32()
		var bias []float32
		if c != nil {
			bias = c.F32()
		}
		gemmConstB(x, v.Arg(1), tb, m, k, n, a.F32(), bd, int(b.Shape[1]), cd, bias)
		return res, nil
	}
	betaEff := float32(0)
	if c != nil && beta != 0 {
		out := []int64{int64(m), int64(n)}
		cs := bstrides(c.Shape, out)
		src := c.F32()
		for i := range m {
			for j := range n {
				cd[i*n+j] = beta * src[i*cs[0]+j*cs[1]]
			}
		}
		betaEff = 1
	}
	kernels.Sgemm(ta, tb, m, n, k, alpha, a.F32(), int(a.Shape[1]), b.F32(), int(b.Shape[1]), betaEff, cd, n)
	return res, nil
}
