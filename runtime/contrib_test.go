package runtime_test

import (
	"math"
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// contribGraph computes multi-head self-attention three ways on a batch of
// two (the fuse goldens cover batch 1): decomposed as timm exports it
// ("ref"), as com.microsoft.Attention with the projection ("attn"), and as
// MultiHeadAttention on column slices ("mha"); and GELU of a biased value
// as Gelu(Add) and as BiasGelu and com.microsoft.Gelu.
const contribGraph = `graph "g" opset=17
input %0 : f32[2,5,8] "x"
input %1 : f32[8,24] "w"
input %2 : f32[24] "b"
%3 = MatMul %0, %1 : f32[2,5,24]
%4 = Add %3, %2 : f32[2,5,24] "qkv"
%5 = Const dense<i64[5] [2, 5, 3, 2, 4]> : i64[5]
%6 = Reshape %4, %5 : f32[2,5,3,2,4]
%7 = Transpose %6 {perm=[2, 0, 3, 1, 4]} : f32[3,2,2,5,4]
%8 = Const dense<i64[] [0]> : i64[]
%9 = Gather %7, %8 {axis=0} : f32[2,2,5,4]
%10 = Const dense<i64[] [1]> : i64[]
%11 = Gather %7, %10 {axis=0} : f32[2,2,5,4]
%12 = Transpose %11 {perm=[0, 1, 3, 2]} : f32[2,2,4,5]
%13 = MatMul %9, %12 : f32[2,2,5,5]
%14 = Const dense<f32[] [0.5]> : f32[]
%15 = Mul %13, %14 : f32[2,2,5,5]
%16 = Softmax %15 {axis=-1} : f32[2,2,5,5]
%17 = Const dense<i64[] [2]> : i64[]
%18 = Gather %7, %17 {axis=0} : f32[2,2,5,4]
%19 = MatMul %16, %18 : f32[2,2,5,4]
%20 = Transpose %19 {perm=[0, 2, 1, 3]} : f32[2,5,2,4]
%21 = Const dense<i64[3] [2, 5, 8]> : i64[3]
%22 = Reshape %20, %21 : f32[2,5,8] "ref"
%23 = com.microsoft.Attention %0, %1, %2 {num_heads=2, scale=0.5} : f32[2,5,8] "attn"
%24 = Const dense<i64[1] [0]> : i64[1]
%25 = Const dense<i64[1] [8]> : i64[1]
%26 = Const dense<i64[1] [16]> : i64[1]
%27 = Const dense<i64[1] [24]> : i64[1]
%28 = Const dense<i64[1] [-1]> : i64[1]
%29 = Slice %4, %24, %25, %28 : f32[2,5,8]
%30 = Slice %4, %25, %26, %28 : f32[2,5,8]
%31 = Slice %4, %26, %27, %28 : f32[2,5,8]
%32 = com.microsoft.MultiHeadAttention %29, %30, %31 {num_heads=2, scale=0.5} : f32[2,5,8] "mha"
%33 = Add %4, %2 : f32[2,5,24]
%34 = Gelu %33 : f32[2,5,24] "gelu"
%35 = com.microsoft.BiasGelu %4, %2 : f32[2,5,24] "bias_gelu"
%36 = com.microsoft.Gelu %33 : f32[2,5,24] "ms_gelu"
output "ref" = %22
output "attn" = %23
output "mha" = %32
output "gelu" = %34
output "bias_gelu" = %35
output "ms_gelu" = %36
`

func TestContribKernels(t *testing.T) {
	g, err := ir.Parse(contribGraph)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(g); err != nil {
		t.Fatal(err)
	}
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*ir.Tensor{}
	for i, v := range g.Inputs {
		dims, _ := v.Type.Shape.Ints()
		x := ir.MustTensor(ir.F32, dims...)
		for j := range x.F32() {
			x.F32()[j] = float32(math.Sin(float64(j)*0.37+float64(i))) * 0.8
		}
		in[v.Name] = x
	}
	out, err := p.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"ref", "attn"}, {"ref", "mha"}, {"gelu", "bias_gelu"}, {"gelu", "ms_gelu"}} {
		a, b := out[c[0]].F32(), out[c[1]].F32()
		d := 0.0
		for i := range a {
			d = max(d, math.Abs(float64(a[i]-b[i])))
		}
		if !(d <= 1e-5) {
			t.Errorf("%s differs from %s by %g", c[1], c[0], d)
		}
	}
}
