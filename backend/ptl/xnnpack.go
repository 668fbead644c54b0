package ptl

import (
	"github.com/pqvc/pqvc/ir"
)

// f32 linear layers as optimize_for_mobile writes them: the weight (and
// bias) prepacked for XNNPACK in a LinearOpContext, run by
// prepacked::linear_clamp_run. The Lite interpreter then skips the BLAS
// call (and the separate bias Add) that aten::matmul would make.

var opLinearClampRun = &atenOp{Name: "prepacked::linear_clamp_run", Fn: "ops.prepacked.linear_clamp_run"}

// xnnpackLinear is a LinearOpContext constant: weight [out, in] f32 and an
// optional [out] bias.
type xnnpackLinear struct {
	weight, bias *ir.Tensor
}

// pickle is the TorchBind object: the class, then __setstate__'s
// (weight, bias, output_min, output_max) tuple; no clamping.
func (c *xnnpackLinear) pickle(weight, bias any) any {
	return pyObject{Class: pyGlobal{"__torch__.torch.classes.xnnpack", "LinearOpContext"}, State: pyTuple{weight, bias, pyNone{}, pyNone{}}}
}

// f32Linear is one matched f32 linear layer.
type f32Linear struct {
	x   *ir.Value
	ctx *xnnpackLinear
}

// matchF32Linear recognises MatMul(x, W) and Add(MatMul(x, W), b) with W a
// constant [K, N] f32 weight and b a constant [N] f32 bias, the MatMul used
// only by the Add.
func matchF32Linear(v *ir.Value) (*f32Linear, bool) {
	switch v.Op {
	case "MatMul":
		w := v.Arg(1)
		if !isF32Const(w, 2) || v.Arg(0).IsConst() || len(shape(v.Arg(0))) < 2 {
			return nil, false
		}
		return &f32Linear{x: v.Arg(0), ctx: &xnnpackLinear{weight: transpose2D[float32](w.Const)}}, true
	case "Add":
		for i := range 2 {
			mm, b := v.Arg(i), v.Arg(1-i)
			if mm.Op != "MatMul" || len(mm.Uses()) != 1 || !isF32Const(b, 1) {
				continue
			}
			m, ok := matchF32Linear(mm)
			if !ok || b.Const.Shape[0] != m.ctx.weight.Shape[0] || !v.Type.Shape.Equal(mm.Type.Shape) {
				continue
			}
			m.ctx.bias = b.Const
			return m, true
		}
	}
	return nil, false
}

func isF32Const(v *ir.Value, rank int) bool {
	return v != nil && v.IsConst() && !v.Const.Opaque() && v.Const.DType == ir.F32 && len(v.Const.Shape) == rank
}

// transpose2D returns the [N, K] transpose of a [K, N] tensor: ONNX MatMul
// weights are [in, out], torch's linear weights [out, in].
func transpose2D[T int8 | float32](t *ir.Tensor) *ir.Tensor {
	k, n := int(t.Shape[0]), int(t.Shape[1])
	src := t.Data.([]T)
	out := ir.MustTensor(t.DType, int64(n), int64(k))
	dst := out.Data.([]T)
	for i := range k {
		for j := range n {
			dst[j*k+i] = src[i*n+j]
		}
	}
	return out
}
