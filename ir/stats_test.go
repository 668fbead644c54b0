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

// TestBindInputs: symbolic input dims take the batch (products of symbols
// its power), types downstream become static, and unknown dims are refused.
func TestBindInputs(t *testing.T) {
	g := NewGraph("t")
	x := g.AddInput("x", TensorType(F32, Shape{Sym("batch"), Static(4)}))
	y, err := g.Add("Relu", "y", nil, x)
	if err != nil {
		t.Fatal(err)
	}
	g.SetOutput("y", y)
	c := g.Clone()
	if err := c.BindInputs(3); err != nil {
		t.Fatal(err)
	}
	if got := c.Outputs[0].Value.Type.Shape; !got.Equal(StaticShape(3, 4)) {
		t.Errorf("bound output shape %v, want [3,4]", got)
	}
	if x.Type.Shape[0] != Sym("batch") {
		t.Errorf("binding a clone changed the original input to %v", x.Type)
	}
	if d, err := (Dim{C: 2, Syms: "a*b"}).Bind(3); err != nil || d != Static(18) {
		t.Errorf("2·a·b bound to 3 = %v, %v; want 18", d, err)
	}
	if _, err := Unknown.Bind(3); err == nil {
		t.Error("an unknown dim was bound")
	}
}
