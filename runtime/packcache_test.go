package runtime

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/pqvc/pqvc/ir"
)

// TestPackCacheBudget: a Program keeps packed weights only within its
// budget, multiplies by the rest unpacked, and computes the same bits
// either way;
// KeepOnly keeps just the values asked for.
func TestPackCacheBudget(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	rnd := func(shape ...int64) *ir.Tensor {
		x := ir.MustTensor(ir.F32, shape...)
		for i := range x.F32() {
			x.F32()[i] = float32(rng.NormFloat64())
		}
		return x
	}
	g := ir.NewGraph("mlp")
	x := g.AddInput("x", ir.Type{DType: ir.F32, Shape: ir.Shape{ir.Sym("N"), ir.Static(16)}})
	h, err := g.Add("MatMul", "h", nil, x, g.AddConst("w1", rnd(16, 32)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Add("Relu", "r", nil, h)
	if err != nil {
		t.Fatal(err)
	}
	y, err := g.Add("MatMul", "y", nil, r, g.AddConst("w2", rnd(32, 8)))
	if err != nil {
		t.Fatal(err)
	}
	g.SetOutput("y", y)
	in := map[string]*ir.Tensor{"x": rnd(5, 16)}

	var want []float32
	for _, budget := range []int64{-1, 0, 16 * 32 * 4, 1} {
		p, err := CompileWith(g, CompileOptions{PackCacheBytes: budget})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			out, err := p.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = slices.Clone(out["y"].F32())
			} else if !slices.Equal(out["y"].F32(), want) {
				t.Fatalf("budget %d: outputs differ from the unbounded cache", budget)
			}
		}
		wantKept := map[int64]int{-1: 2, 0: 0, 16 * 32 * 4: 1, 1: 0}[budget]
		if len(p.packed) != wantKept || (budget >= 0 && p.packBytes > budget) {
			t.Errorf("budget %d: %d packed weights (%d bytes) kept, want %d", budget, len(p.packed), p.packBytes, wantKept)
		}
	}

	p, err := Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.RunWith(in, RunOptions{KeepOnly: map[*ir.Value]bool{r: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Values) != 1 || res.Values[r] == nil || !slices.Equal(res.Outputs["y"].F32(), want) {
		t.Errorf("KeepOnly: kept %d values, output same: %v", len(res.Values), slices.Equal(res.Outputs["y"].F32(), want))
	}
	hv, err := p.Eval(h, []*ir.Tensor{in["x"], h.Arg(1).Const})
	if err != nil {
		t.Fatal(err)
	}
	rv, err := p.Eval(r, []*ir.Tensor{hv})
	if err != nil || !slices.Equal(rv.F32(), res.Values[r].F32()) {
		t.Errorf("Eval recomputes r differently: %v", err)
	}
}
