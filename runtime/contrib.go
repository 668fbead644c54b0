package runtime

import (
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/kernels"
)

// Kernels for the com.microsoft ops the fuse pass emits for ONNX Runtime.
// pqvc must evaluate every graph it writes: the fuse tests compare a fused
// graph's outputs with the unfused graph's here before ONNX Runtime sees it.

func init() {
	register(ir.MSDomain+".Gelu", msGelu)
	register(ir.MSDomain+".BiasGelu", msGelu)
	register(ir.MSDomain+".MultiHeadAttention", multiHeadAttention)
	register(ir.MSDomain+".Attention", attention)
}

// geluInto writes the exact GELU of src[i] (+ bias[i mod len(bias)] when
// bias is not nil) to dst, with the vector erf: dst holds x/√2 first, so
// erf runs 16 lanes at a time. The default-domain Gelu kernel uses it too,
// so fusing changes no bits there, and so does the Go backend.
func geluInto(dst, src, bias []float32, off int) {
	at := func(i int) float32 {
		if bias == nil {
			return src[i]
		}
		return src[i] + bias[(off+i)%len(bias)]
	}
	for i := range dst {
		dst[i] = at(i) * 0.7071067811865476
	}
	kernels.Erf(dst, dst)
	for i := range dst {
		dst[i] = 0.5 * at(i) * (1 + dst[i])
	}
}

// msGelu computes Gelu(a) or, with a second argument, Gelu(a + bias).
func msGelu(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	if a.DType != ir.F32 {
		return nil, fmt.Errorf("%s on %v is not supported", v.Op, a.DType)
	}
	res, _ := newTensor(ir.F32, a.Shape)
	src, dst := a.F32(), res.F32()
	var bias []float32
	if len(args) > 1 && args[1] != nil {
		b := args[1]
		n := len(a.Shape)
		if b.DType != ir.F32 || len(b.Shape) != 1 || n == 0 || b.Shape[0] != a.Shape[n-1] {
			return nil, fmt.Errorf("bias %v does not match input %v", b.Shape, a.Shape)
		}
		bias = b.F32()
	}
	parallelFor(len(src), 16384, func(lo, hi int) { geluInto(dst[lo:hi], src[lo:hi], bias, lo) })
	return res, nil
}

// multiHeadAttention is com.microsoft.MultiHeadAttention for q, k, v of
// shape [B,S,E] (no mask, no past state, no bias): the default q/k/v
// format of ONNX Runtime's CPU kernel.
func multiHeadAttention(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	q, k, val := args[0], args[1], args[2]
	for _, t := range args[:3] {
		if t == nil || t.DType != ir.F32 || len(t.Shape) != 3 {
			return nil, fmt.Errorf("%s wants f32 [B,S,E] query, key and value", v.Op)
		}
	}
	b, sq, e := int(q.Shape[0]), int(q.Shape[1]), int(q.Shape[2])
	sk, ev := int(k.Shape[1]), int(val.Shape[2])
	if int(k.Shape[0]) != b || int(val.Shape[0]) != b || int(k.Shape[2]) != e || int(val.Shape[1]) != sk {
		return nil, fmt.Errorf("query %v, key %v and value %v disagree", q.Shape, k.Shape, val.Shape)
	}
	return attend(v, b, sq, sk, e, ev, q.F32(), e, k.F32(), e, val.F32(), ev)
}

// attention is com.microsoft.Attention without mask or past state: it
// projects x through weights and bias to [q|k|v] and attends.
func attention(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	in, w, bias := args[0], args[1], args[2]
	if in == nil || w == nil || bias == nil || in.DType != ir.F32 || w.DType != ir.F32 || bias.DType != ir.F32 ||
		len(in.Shape) != 3 || len(w.Shape) != 2 || len(bias.Shape) != 1 {
		return nil, fmt.Errorf("%s wants f32 input [B,S,H], weights [H,3E] and bias [3E]", v.Op)
	}
	b, s, h, n := int(in.Shape[0]), int(in.Shape[1]), int(in.Shape[2]), int(w.Shape[1])
	if int(w.Shape[0]) != h || int(bias.Shape[0]) != n || n%3 != 0 {
		return nil, fmt.Errorf("input %v, weights %v and bias %v disagree", in.Shape, w.Shape, bias.Shape)
	}
	// Start C from the bias and accumulate (beta=1): the bias add is free.
	qkv := make([]float32, b*s*n)
	bd := bias.F32()
	for r := 0; r < b*s; r++ {
		copy(qkv[r*n:(r+1)*n], bd)
	}
	kernels.Sgemm(false, false, b*s, n, h, 1, in.F32(), h, w.F32(), n, 1, qkv, n)
	e := n / 3
	return attend(v, b, s, s, e, e, qkv, n, qkv[e:], n, qkv[2*e:], n)
}

// attend computes softmax(scale·QₕKₕᵀ)·Vₕ for every batch b and head h. q, k
// and val hold rows of length ldq, ldk, ldv whose first e (e for k, ev for v)
// columns are the heads side by side, so one kernel serves a separate q, k
// and v as well as a packed [q|k|v] projection.
func attend(v *ir.Value, b, sq, sk, e, ev int, q []float32, ldq int, k []float32, ldk int, val []float32, ldv int) (*ir.Tensor, error) {
	heads := int(v.Int("num_heads"))
	if heads <= 0 || e%heads != 0 || ev%heads != 0 {
		return nil, fmt.Errorf("widths %d and %d are not multiples of num_heads %d", e, ev, heads)
	}
	d, dv := e/heads, ev/heads
	scale := v.Float("scale")
	if scale == 0 {
		scale = float32(1 / math.Sqrt(float64(d)))
	}
	res, _ := newTensor(ir.F32, []int64{int64(b), int64(sq), int64(ev)})
	out := res.F32()
	scores := make([]float32, sq*sk)
	for bi := range b {
		for h := range heads {
			qo, ko, vo := bi*sq*ldq+h*d, bi*sk*ldk+h*d, bi*sk*ldv+h*dv
			kernels.Sgemm(false, true, sq, sk, d, scale, q[qo:], ldq, k[ko:], ldk, 0, scores, sk)
			softmaxRows(scores, sk)
			kernels.Sgemm(false, false, sq, dv, sk, 1, scores, sk, val[vo:], ldv, 0, out[bi*sq*ev+h*dv:], ev)
		}
	}
	return res, nil
}

// softmaxRows normalises each row of n elements in place, as the Softmax
// kernel does (the same vector exp, so fusing attention changes no bits).
func softmaxRows(s []float32, n int) {
	parallelFor(len(s)/n, max(1, 4096/max(n, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := s[r*n : (r+1)*n]
			softmaxRow(row, row, false)
		}
	})
}
