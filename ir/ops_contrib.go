package ir

import (
	"fmt"
	"strings"
)

// MSDomain is ONNX Runtime's contrib-op domain. The IR names an op of a
// non-default domain by its domain and op type joined with a dot
// ("com.microsoft.Attention"): op names stay plain strings, so the op table,
// the matcher, the printer and the parser need no domain field, and an ONNX
// op type never contains a dot, so the split is unambiguous.
const MSDomain = "com.microsoft"

// SplitDomain splits an IR op name into its ONNX domain and op type: "" and
// the name itself for a default-domain op.
func SplitDomain(op string) (domain, opType string) {
	if rest, ok := strings.CutPrefix(op, MSDomain+"."); ok {
		return MSDomain, rest
	}
	return "", op
}

// ContribOps lists the IR's com.microsoft ops, by IR name.
var ContribOps = []string{
	MSDomain + ".Gelu", MSDomain + ".BiasGelu", MSDomain + ".MultiHeadAttention", MSDomain + ".Attention",
	MSDomain + ".DynamicQuantizeMatMul", MSDomain + ".MatMulIntegerToFloat",
}

func init() {
	RegisterOp(&OpDef{Name: MSDomain + ".Gelu", MinArgs: 1, MaxArgs: 1, Pure: true, Elementwise: true,
		Doc: "ONNX Runtime's exact (erf) GELU; unlike ONNX Gelu it needs no opset 20", Infer: inferSame})
	RegisterOp(&OpDef{Name: MSDomain + ".BiasGelu", MinArgs: 2, MaxArgs: 2, Pure: true,
		Doc: "ONNX Runtime's Gelu(a + bias), bias 1-D over the last dim", Infer: inferBroadcast(Invalid, true)})
	attnAttrs := []AttrDef{{Name: "num_heads", Kind: AttrInt, Required: true}, floatAttr("scale", 0)}
	RegisterOp(&OpDef{Name: MSDomain + ".MultiHeadAttention", MinArgs: 3, MaxArgs: 3, Pure: true, Attrs: attnAttrs,
		Doc: "ONNX Runtime's softmax(scale·Q·Kᵀ)·V per head on [B,S,E] q, k, v (scale 0: 1/√head_dim)",
		Infer: func(v *Value) (Type, error) {
			return inferAttention(v, 0, 2)
		}})
	RegisterOp(&OpDef{Name: MSDomain + ".Attention", MinArgs: 3, MaxArgs: 3, Pure: true, Attrs: attnAttrs,
		Doc: "ONNX Runtime's multi-head self-attention with the QKV projection: x [B,S,H], weights [H,3E], bias [3E]",
		Infer: func(v *Value) (Type, error) {
			return inferAttention(v, 1, -1)
		}})
	RegisterOp(&OpDef{Name: MSDomain + ".DynamicQuantizeMatMul", MinArgs: 3, MaxArgs: 5, Pure: true, Quantized: true,
		Doc:   "ONNX Runtime's MatMul of A (f32, quantized to u8 at run time as DynamicQuantizeLinear does) by int8 B: A, B, b_scale, b_zero_point, bias",
		Infer: func(v *Value) (Type, error) { return inferIntToFloat(v, 2, 3, 4) }})
	RegisterOp(&OpDef{Name: MSDomain + ".MatMulIntegerToFloat", MinArgs: 4, MaxArgs: 7, Pure: true, Quantized: true,
		Doc:   "ONNX Runtime's (A − a_zero_point)·(B − b_zero_point)·a_scale·b_scale + bias in f32: A, B, a_scale, b_scale, a_zero_point, b_zero_point, bias",
		Infer: func(v *Value) (Type, error) { return inferIntToFloat(v, 3, 5, 6) }})
}

// inferIntToFloat types DynamicQuantizeMatMul and MatMulIntegerToFloat: the
// numpy-matmul shape of A and a 2-D 8-bit B, in f32. The B scale (argument
// si) and zero point (zi) are scalars or one per column; the bias (bi) is
// one per column.
func inferIntToFloat(v *Value, si, zi, bi int) (Type, error) {
	a, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	b, err := argType(v, 1)
	if err != nil {
		return Type{}, err
	}
	if b.Rank() != 2 || (b.DType != I8 && b.DType != U8) {
		return Type{}, fmt.Errorf("B is %v, want a 2-D i8 or u8 matrix", b)
	}
	s, err := MatMulShape(a.Shape, b.Shape)
	if err != nil {
		return Type{}, err
	}
	n := b.Shape[1]
	for _, i := range []int{si, zi, bi} {
		p := v.Arg(i)
		if p == nil {
			continue
		}
		if p.Type.Rank() > 1 || (p.Type.Rank() == 1 && p.Type.Shape[0] != n && p.Type.Shape[0] != Static(1)) {
			return Type{}, fmt.Errorf("argument %d is %v, want a scalar or [%v]", i, p.Type, n)
		}
		if i == bi && p.Type.DType != F32 {
			return Type{}, fmt.Errorf("bias is %v, want f32", p.Type.DType)
		}
		if i == zi && p.Type.DType != b.DType {
			return Type{}, fmt.Errorf("B zero point is %v, B is %v", p.Type.DType, b.DType)
		}
	}
	return Type{F32, s}, nil
}

// inferAttention types MultiHeadAttention (value arg vi, whose last dim is
// the output width) and Attention (vi < 0: the width is a third of the
// weights' columns, from argument wi).
func inferAttention(v *Value, wi, vi int) (Type, error) {
	x, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	if x.Rank() != 3 {
		return Type{}, fmt.Errorf("input is %v, want rank 3 [batch, seq, hidden]", x)
	}
	h := v.Int("num_heads")
	if h <= 0 {
		return Type{}, fmt.Errorf("num_heads is %d", h)
	}
	var width Dim
	if vi >= 0 {
		vt, err := argType(v, vi)
		if err != nil {
			return Type{}, err
		}
		kt, err := argType(v, 1)
		if err != nil {
			return Type{}, err
		}
		if vt.Rank() != 3 || kt.Rank() != 3 {
			return Type{}, fmt.Errorf("key %v and value %v must be rank 3", kt, vt)
		}
		width = vt.Shape[2]
	} else {
		w, err := argType(v, wi)
		if err != nil {
			return Type{}, err
		}
		if w.Rank() != 2 || !w.Shape[1].IsStatic() || w.Shape[1].C%3 != 0 {
			return Type{}, fmt.Errorf("weights are %v, want [hidden, 3·E]", w)
		}
		width = Static(w.Shape[1].C / 3)
	}
	if width.IsStatic() && width.C%h != 0 {
		return Type{}, fmt.Errorf("width %d is not a multiple of num_heads %d", width.C, h)
	}
	return Type{x.DType, Shape{x.Shape[0], x.Shape[1], width}}, nil
}
