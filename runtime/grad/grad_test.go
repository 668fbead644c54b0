package grad

import (
	"math"
	"math/rand"
	"testing"

	"github.com/pqvc/pqvc/ir"
)

// mlp builds x[N,4] → MatMul W1 → +b1 → Gelu → MatMul W2 → logits[N,3],
// with a symbolic batch so single samples can run.
func mlp(t *testing.T, seed int64) (*ir.Graph, []*ir.Value) {
	b := &builder{t: t, g: ir.NewGraph("mlp"), rng: rand.New(rand.NewSource(seed))}
	x := b.g.AddInput("x", ir.Type{DType: ir.F32, Shape: ir.Shape{ir.Sym("N"), ir.Static(4)}})
	h := b.op("MatMul", nil, x, b.w(4, 5))
	h = b.op("Gelu", nil, b.op("Add", nil, h, b.w(5)))
	y := b.op("MatMul", nil, h, b.w(5, 3))
	b.g.SetOutput("logits", y)
	return b.g, b.wrt
}

func randInput(rng *rand.Rand, shape ...int64) *ir.Tensor {
	t := ir.MustTensor(ir.F32, shape...)
	for i := range t.F32() {
		t.F32()[i] = float32(rng.NormFloat64())
	}
	return t
}

func TestCrossEntropyByHand(t *testing.T) {
	g := ir.NewGraph("ce")
	z := g.AddConst("z", ir.F32Tensor([]int64{2, 3}, []float32{1, 2, 3, 0, 0, 0}))
	y, _ := g.Add("Identity", "y", nil, z)
	g.SetOutput("logits", y)
	r, err := Gradients(g, nil, Loss{Kind: "ce", Labels: []int64{2, 1}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := []float64{math.E, math.E * math.E, math.E * math.E * math.E}
	s := e[0] + e[1] + e[2]
	want := (math.Log(s) - 3 + math.Log(3)) / 2
	if math.Abs(r.Loss-want) > 1e-6 {
		t.Errorf("loss %v, want %v", r.Loss, want)
	}
	wantG := []float64{e[0] / s / 2, e[1] / s / 2, (e[2]/s - 1) / 2, 1.0 / 6, (1.0/3 - 1) / 2, 1.0 / 6}
	for i, gi := range r.Grads[z].F32() {
		if math.Abs(float64(gi)-wantG[i]) > 1e-6 {
			t.Errorf("grad[%d] = %v, want %v", i, gi, wantG[i])
		}
	}
	if r.Samples != 2 {
		t.Errorf("samples %d", r.Samples)
	}
}

func TestKLByHand(t *testing.T) {
	g := ir.NewGraph("kl")
	z := g.AddConst("z", ir.F32Tensor([]int64{1, 2}, []float32{0, 0}))
	y, _ := g.Add("Identity", "y", nil, z)
	g.SetOutput("logits", y)
	teacher := ir.F32Tensor([]int64{1, 2}, []float32{float32(math.Log(3)), 0}) // q = (3/4, 1/4)
	r, err := Gradients(g, nil, Loss{Kind: "kl", Teacher: teacher}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := 0.75*math.Log(0.75/0.5) + 0.25*math.Log(0.25/0.5)
	if math.Abs(r.Loss-want) > 1e-6 {
		t.Errorf("KL %v, want %v", r.Loss, want)
	}
	for i, w := range []float64{0.5 - 0.75, 0.5 - 0.25} {
		if got := float64(r.Grads[z].F32()[i]); math.Abs(got-w) > 1e-6 {
			t.Errorf("grad[%d] = %v, want %v", i, got, w)
		}
	}
}

// TestKLSelfTeacher: a model distilled from itself has zero loss and zero
// gradient.
func TestKLSelfTeacher(t *testing.T) {
	g, _ := mlp(t, 3)
	rng := rand.New(rand.NewSource(4))
	x := randInput(rng, 3, 4)
	logits := evalWith(t, g, map[string]*ir.Tensor{"x": x})
	r, err := Gradients(g, map[string]*ir.Tensor{"x": x}, Loss{Kind: "kl", Teacher: logits}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Loss) > 1e-6 {
		t.Errorf("KL to itself = %v", r.Loss)
	}
	for w, gw := range r.Grads {
		for _, x := range gw.F32() {
			if x != 0 {
				t.Fatalf("%s: non-zero gradient %v", w, x)
			}
		}
	}
}

// TestMLPLossGradients checks CE and KL gradients of a batch against
// finite differences of the mean loss.
func TestMLPLossGradients(t *testing.T) {
	g, wrt := mlp(t, 5)
	rng := rand.New(rand.NewSource(6))
	in := map[string]*ir.Tensor{"x": randInput(rng, 4, 4)}
	for _, loss := range []Loss{
		{Kind: "ce", Labels: []int64{0, 2, 1, 2}},
		{Kind: "kl", Teacher: randInput(rng, 4, 3)},
	} {
		r, err := Gradients(g, in, loss, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wrt {
			d := w.Const.F32()
			for j := range d {
				orig := d[j]
				d[j] = orig + 1e-2
				lp := lossOf(t, g, in, loss)
				d[j] = orig - 1e-2
				lm := lossOf(t, g, in, loss)
				d[j] = orig
				fd := (lp - lm) / 2e-2
				if got := float64(r.Grads[w].F32()[j]); math.Abs(got-fd) > 1e-3+1e-2*math.Abs(fd) {
					t.Errorf("%s %s[%d]: analytic %v, fd %v", loss.Kind, w, j, got, fd)
				}
			}
		}
	}
}

func lossOf(t *testing.T, g *ir.Graph, in map[string]*ir.Tensor, loss Loss) float64 {
	l, _, _, err := lossGrad(evalWith(t, g, in), loss)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSampleSquares: SqGrads is Σ_i g_i² of per-sample gradients (each
// computed on its own), not the square of the batch gradient, and Grads
// still equal the batch gradient. Torch-Pruning's Hessian importance keeps
// only the last sample; this pins that every sample counts.
func TestSampleSquares(t *testing.T) {
	g, wrt := mlp(t, 7)
	rng := rand.New(rand.NewSource(8))
	const n = 5
	x := randInput(rng, n, 4)
	labels := []int64{0, 1, 2, 1, 0}
	in := map[string]*ir.Tensor{"x": x}
	sq, err := Gradients(g, in, Loss{Kind: "ce", Labels: labels}, Options{SampleSquares: true})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := Gradients(g, in, Loss{Kind: "ce", Labels: labels}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(sq.Loss-batch.Loss) > 1e-5 || sq.Samples != n {
		t.Errorf("loss %v (samples %d), batch loss %v", sq.Loss, sq.Samples, batch.Loss)
	}
	want := map[*ir.Value][]float64{}
	for i := range n {
		xi := ir.F32Tensor([]int64{1, 4}, x.F32()[i*4:(i+1)*4])
		r, err := Gradients(g, map[string]*ir.Tensor{"x": xi}, Loss{Kind: "ce", Labels: labels[i : i+1]}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wrt {
			if want[w] == nil {
				want[w] = make([]float64, w.Const.Len())
			}
			for j, v := range r.Grads[w].F32() {
				want[w][j] += float64(v) * float64(v)
			}
		}
	}
	differs := false
	for _, w := range wrt {
		for j := range want[w] {
			bg := float64(batch.Grads[w].F32()[j])
			differs = differs || math.Abs(float64(sq.SqGrads[w].F32()[j])-n*bg*bg) > 1e-4
			if got := float64(sq.SqGrads[w].F32()[j]); math.Abs(got-want[w][j]) > 1e-5*(1+want[w][j]) {
				t.Errorf("SqGrads %s[%d] = %v, want %v", w, j, got, want[w][j])
			}
			if a, b := sq.Grads[w].F32()[j], batch.Grads[w].F32()[j]; math.Abs(float64(a-b)) > 1e-5 {
				t.Errorf("Grads %s[%d] = %v per-sample, %v batch", w, j, a, b)
			}
		}
	}
	if !differs {
		t.Error("SqGrads equals N·(batch gradient)²: per-sample structure lost")
	}
}

func evalWith(t *testing.T, g *ir.Graph, in map[string]*ir.Tensor) *ir.Tensor {
	t.Helper()
	e, err := NewEngine(g, Options{Wrt: []*ir.Value{}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.prog.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out[g.Outputs[0].Name]
}
