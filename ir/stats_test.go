package ir

import "testing"

// TestMACsAttention: fused attention ops count the products they replace,
// so fusing leaves a model's MAC count unchanged.
func TestMACsAttention(t *testing.T) {
	g := NewGraph("t")
	f32 := func(dims ...int64) Type { return TensorType(F32, StaticShape(dims...)) }
	q := g.AddInput("q", f32(2, 10, 8))
	k := g.AddInput("k", f32(2, 12, 8))
	v := g.AddInput("v", f32(2, 12, 6))
	mha, err := g.Add(MSDomain+".MultiHeadAttention", "mha", Attrs{"num_heads": int64(2)}, q, k, v)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := MACs(mha), int64(2*10*12*8+2*10*12*6); got != want {
		t.Errorf("MultiHeadAttention: %d MACs, want %d", got, want)
	}
	x := g.AddInput("x", f32(2, 10, 16))
	w := g.AddConst("w", MustTensor(F32, 16, 24))
	b := g.AddConst("b", MustTensor(F32, 24))
	att, err := g.Add(MSDomain+".Attention", "att", Attrs{"num_heads": int64(2)}, x, w, b)
	if err != nil {
		t.Fatal(err)
	}
	// projection 2·10·16·24, then scores and mix 2·(2·10·10·8).
	if got, want := MACs(att), int64(2*10*16*24+2*2*10*10*8); got != want {
		t.Errorf("Attention: %d MACs, want %d", got, want)
	}
}
