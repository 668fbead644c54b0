package importance

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/grad"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*(1+math.Abs(b)) }

func checkScores(t *testing.T, what string, got [][]float64, want ...float64) {
	t.Helper()
	if len(got) != 1 || len(got[0]) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for i := range want {
		if !near(got[0][i], want[i]) {
			t.Errorf("%s: unit %d = %v, want %v", what, i, got[0][i], want[i])
		}
	}
}

func TestScoresByHand(t *testing.T) {
	g := ir.NewGraph("hand")
	w := g.AddConst("w", ir.F32Tensor([]int64{2, 3}, []float32{1, -2, 3, -4, 5, -6}))
	b := g.AddConst("b", ir.F32Tensor([]int64{2}, []float32{1, 2}))
	res := &grad.Result{
		Grads: map[*ir.Value]*ir.Tensor{
			w: ir.F32Tensor([]int64{2, 3}, []float32{0.5, -1, 2, 1, 0, -1}),
			b: ir.F32Tensor([]int64{2}, []float32{3, -1}),
		},
		SqGrads: map[*ir.Value]*ir.Tensor{
			w: ir.F32Tensor([]int64{2, 3}, []float32{2, 4, 6, 8, 10, 12}),
			b: ir.F32Tensor([]int64{2}, []float32{4, 4}),
		},
		Samples: 2,
	}
	rows := []Group{{Name: "rows", Units: []Unit{
		{Name: "r0", Slices: []Slice{{W: w, Axis: 0, Index: []int{0}}}},
		{Name: "r1", Slices: []Slice{{W: w, Axis: 0, Index: []int{1}}}},
	}}}
	score := func(c Criterion, gs []Group) [][]float64 {
		s, err := Scores(gs, c, FromGradients(res))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	checkScores(t, "magnitude L2", score(Criterion{Method: "magnitude", Normalize: "none"}, rows), 14, 77)
	checkScores(t, "magnitude L1", score(Criterion{Method: "magnitude", Norm: 1, Normalize: "none"}, rows), 6, 15)
	checkScores(t, "taylor", score(Criterion{Method: "taylor", Normalize: "none"}, rows), 8.5, 10)
	checkScores(t, "taylor_joint", score(Criterion{Method: "taylor_joint", Normalize: "none"}, rows), 8.5, 2)
	// ½·Σ w²·SqGrads/Samples: ¼·(1·2+4·4+9·6), ¼·(16·8+25·10+36·12).
	checkScores(t, "hessian", score(Criterion{Method: "hessian", Normalize: "none"}, rows), 18, 202.5)
	checkScores(t, "normalize mean", score(Criterion{Method: "magnitude"}, rows), 14/45.5, 77/45.5)
	checkScores(t, "normalize max", score(Criterion{Method: "magnitude", Normalize: "max"}, rows), 14.0/77, 1)
	checkScores(t, "normalize sum", score(Criterion{Method: "magnitude", Normalize: "sum"}, rows), 14.0/91, 77.0/91)

	cols := []Group{{Units: []Unit{{Name: "c02", Slices: []Slice{{W: w, Axis: 1, Index: []int{0, 2}}}}}}}
	checkScores(t, "column slice", score(Criterion{Method: "magnitude", Normalize: "none"}, cols), 1+9+16+36)
	// Products w·g = [0.5 2 6; -4 0 6]; columns 0 and 2.
	checkScores(t, "taylor column slice", score(Criterion{Method: "taylor", Normalize: "none"}, cols), 0.5+6+4+6)
	checkScores(t, "taylor_joint column slice", score(Criterion{Method: "taylor_joint", Normalize: "none"}, cols), 0.5+6-4+6)
	// ¼·w²·SqGrads = [0.5 4 13.5; 32 62.5 108].
	checkScores(t, "hessian column slice", score(Criterion{Method: "hessian", Normalize: "none"}, cols), 0.5+13.5+32+108)

	// A unit spanning two tensors: row 0 of w (14) and element 0 of b (1).
	multi := []Group{{Units: []Unit{{Name: "m", Slices: []Slice{{W: w, Axis: 0, Index: []int{0}}, {W: b, Axis: 0, Index: []int{0}}}}}}}
	for how, want := range map[string]float64{"mean": 7.5, "sum": 15, "max": 14, "": 7.5} {
		checkScores(t, "reduce "+how, score(Criterion{Method: "magnitude", Reduce: how, Normalize: "none"}, multi), want)
	}
	// Hessian over two tensors: ¼·(72) and ½·1·4/2.
	checkScores(t, "hessian sum", score(Criterion{Method: "hessian", Reduce: "sum", Normalize: "none"}, multi), 18+1)

	r1 := score(Criterion{Method: "random", Seed: 7}, rows)
	r2 := score(Criterion{Method: "random", Seed: 7}, rows)
	r3 := score(Criterion{Method: "random", Seed: 8}, rows)
	if r1[0][0] != r2[0][0] || r1[0][1] != r2[0][1] || r1[0][0] == r3[0][0] {
		t.Errorf("random scores not seeded: %v %v %v", r1, r2, r3)
	}

	for _, bad := range []struct {
		c  Criterion
		gs []Group
	}{
		{Criterion{Method: "nope"}, rows},
		{Criterion{Method: "magnitude", Norm: 3}, rows},
		{Criterion{Method: "magnitude", Reduce: "median"}, rows},
		{Criterion{Method: "magnitude", Normalize: "zscore"}, rows},
		{Criterion{Method: "magnitude"}, []Group{{Units: []Unit{{Slices: []Slice{{W: w, Axis: 2, Index: []int{0}}}}}}}},
		{Criterion{Method: "magnitude"}, []Group{{Units: []Unit{{Slices: []Slice{{W: w, Axis: 0, Index: []int{2}}}}}}}},
	} {
		if _, err := Scores(bad.gs, bad.c, FromGradients(res)); err == nil {
			t.Errorf("%+v: want an error", bad.c)
		}
	}
	if _, err := Scores(rows, Criterion{Method: "hessian"}, FromGradients(&grad.Result{Grads: res.Grads, Samples: 2})); err == nil {
		t.Error("hessian without SqGrads: want an error")
	}
}

// TestMarginals: the per-axis sums behind slice scores match summing the
// slice's elements directly, on every axis of a rank-3 weight.
func TestMarginals(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	g := ir.NewGraph("m")
	wt := ir.MustTensor(ir.F32, 2, 3, 4)
	gt := ir.MustTensor(ir.F32, 2, 3, 4)
	for i := range wt.F32() {
		wt.F32()[i], gt.F32()[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	w := g.AddConst("w", wt)
	sal := FromGradients(&grad.Result{Grads: map[*ir.Value]*ir.Tensor{w: gt}, Samples: 1})
	for ax := range 3 {
		for idx := range int(wt.Shape[ax]) {
			s := Slice{W: w, Axis: ax, Index: []int{idx}}
			var want float64
			if err := eachElement(s, func(i int) { want += math.Abs(float64(wt.F32()[i]) * float64(gt.F32()[i])) }); err != nil {
				t.Fatal(err)
			}
			got, err := sliceScore(s, "taylor", 2, sal)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, want) {
				t.Errorf("axis %d index %d: marginal %v, direct %v", ax, idx, got, want)
			}
		}
	}
}

// linear is x[N,4] → MatMul W[4,3] → logits, with a symbolic batch.
func linear(seed int64) (*ir.Graph, *ir.Value) {
	rng := rand.New(rand.NewSource(seed))
	g := ir.NewGraph("linear")
	x := g.AddInput("x", ir.Type{DType: ir.F32, Shape: ir.Shape{ir.Sym("N"), ir.Static(4)}})
	wt := ir.MustTensor(ir.F32, 4, 3)
	for i := range wt.F32() {
		wt.F32()[i] = float32(rng.NormFloat64())
	}
	w := g.AddConst("w", wt)
	y, err := g.Add("MatMul", "y", nil, x, w)
	if err != nil {
		panic(err)
	}
	g.SetOutput("logits", y)
	return g, w
}

func dataset(seed int64, n int) *data.Dataset {
	rng := rand.New(rand.NewSource(seed))
	x := ir.MustTensor(ir.F32, int64(n), 4)
	for i := range x.F32() {
		x.F32()[i] = float32(rng.NormFloat64())
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(rng.Intn(3))
	}
	return &data.Dataset{X: x, Y: y}
}

// TestHessianUsesAllSamples: changing only the first calibration sample
// (which Torch-Pruning's GroupHessianImportance would have forgotten)
// changes the hessian scores, and the accumulated statistics equal one
// pass over all samples.
func TestHessianUsesAllSamples(t *testing.T) {
	g, w := linear(1)
	ds := dataset(2, 5)
	cols := []Group{{Name: "cols"}}
	for j := range 3 {
		cols[0].Units = append(cols[0].Units, Unit{Slices: []Slice{{W: w, Axis: 1, Index: []int{j}}}})
	}
	hess := func(ds *data.Dataset) ([]float64, *grad.Result) {
		r, err := Accumulate(g, ds, 2, 0, LossKind{Kind: "ce", SampleSquares: true})
		if err != nil {
			t.Fatal(err)
		}
		s, err := Scores(cols, Criterion{Method: "hessian", Normalize: "none"}, FromGradients(r))
		if err != nil {
			t.Fatal(err)
		}
		return s[0], r
	}
	base, acc := hess(ds)
	if acc.Samples != 5 {
		t.Fatalf("samples %d, want 5", acc.Samples)
	}
	all, err := grad.Gradients(g, map[string]*ir.Tensor{"x": ds.X}, grad.Loss{Kind: "ce", Labels: ds.Y}, grad.Options{SampleSquares: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range all.Grads[w].F32() {
		if d := math.Abs(float64(all.Grads[w].F32()[i] - acc.Grads[w].F32()[i])); d > 1e-6 {
			t.Errorf("Grads[%d]: accumulated %v, one pass %v", i, acc.Grads[w].F32()[i], all.Grads[w].F32()[i])
		}
		if d := math.Abs(float64(all.SqGrads[w].F32()[i] - acc.SqGrads[w].F32()[i])); d > 1e-5 {
			t.Errorf("SqGrads[%d]: accumulated %v, one pass %v", i, acc.SqGrads[w].F32()[i], all.SqGrads[w].F32()[i])
		}
	}
	if math.Abs(all.Loss-acc.Loss) > 1e-6 {
		t.Errorf("loss: accumulated %v, one pass %v", acc.Loss, all.Loss)
	}
	for _, sample := range []int{0, 4} {
		mod := dataset(2, 5)
		for k := range 4 {
			mod.X.F32()[sample*4+k] += 1
		}
		changed, _ := hess(mod)
		same := true
		for j := range base {
			same = same && near(base[j], changed[j])
		}
		if same {
			t.Errorf("changing sample %d left hessian scores at %v", sample, base)
		}
	}
}

func TestAccumulateLossKinds(t *testing.T) {
	g, _ := linear(3)
	teacher, _ := linear(4)
	ds := dataset(5, 6)
	for _, lk := range []LossKind{{Kind: "pseudo"}, {Kind: "kl", Teacher: teacher}} {
		r, err := Accumulate(g, ds, 4, 0, lk)
		if err != nil {
			t.Fatalf("%s: %v", lk.Kind, err)
		}
		if r.Samples != 6 || !(r.Loss > 0) {
			t.Errorf("%s: samples %d loss %v", lk.Kind, r.Samples, r.Loss)
		}
	}
	if _, err := Accumulate(g, ds, 4, 0, LossKind{Kind: "kl", Teacher: g}); err == nil {
		t.Error("self-teacher: want an error")
	}
	if _, err := Accumulate(g, &data.Dataset{X: ds.X}, 4, 0, LossKind{Kind: "ce"}); err == nil {
		t.Error("ce without labels: want an error")
	}
	r, err := Accumulate(g, ds, 4, 1, LossKind{Kind: "ce"})
	if err != nil || r.Samples != 4 {
		t.Errorf("one batch: %v samples, %v", r.Samples, err)
	}
}

// shipped loads a model from assets with the shipped calibration data.
func shipped(t *testing.T, model string) (*ir.Graph, *data.Dataset) {
	t.Helper()
	const calib = "../assets/fmnist_calib.npz"
	if testing.Short() {
		t.Skip("model test in -short mode")
	}
	if _, err := os.Stat(calib); err != nil {
		t.Skip(err)
	}
	g, err := onnx.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load(calib)
	if err != nil {
		t.Fatal(err)
	}
	return g, ds
}

// TestFashionMNIST runs the criteria end to end on the small real model
// and logs the cost of calibration.
func TestFashionMNIST(t *testing.T) {
	g, ds := shipped(t, "../assets/deit_fmnist_p7.onnx")
	start := time.Now()
	r, err := Accumulate(g, ds, 32, 2, LossKind{Kind: "ce", SampleSquares: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2×32 images with per-sample squares: %v, loss %.4f", time.Since(start), r.Loss)
	// Score the output rows of the largest 2-D weight, one unit per row.
	var w *ir.Value
	for v := range r.Grads {
		if len(v.Const.Shape) == 2 && (w == nil || v.Const.Len() > w.Const.Len() || v.Const.Len() == w.Const.Len() && v.ID < w.ID) {
			w = v
		}
	}
	grp := Group{Name: w.Name}
	for i := range int(w.Const.Shape[1]) {
		grp.Units = append(grp.Units, Unit{Slices: []Slice{{W: w, Axis: 1, Index: []int{i}}}})
	}
	for _, m := range []string{"magnitude", "taylor", "hessian", "random"} {
		s, err := Scores([]Group{grp}, Criterion{Method: m}, FromGradients(r))
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range s[0] {
			if math.IsNaN(x) || x < 0 {
				t.Fatalf("%s: score %v", m, x)
			}
		}
	}
}

// TestMeasureLowMemory: the memory-bounded run (recomputed activations,
// one image per pass, weights swept in small chunks, latest first) gives
// the same saliency as keeping everything, up to float32 summation order,
// for each loss and for the squared gradients of the hessian criterion.
func TestMeasureLowMemory(t *testing.T) {
	g, ds := shipped(t, "../assets/deit_fmnist.onnx")
	low := Memory{Checkpoint: true, MicroBatch: 1, GradBytes: 64 << 10}
	for _, lk := range []LossKind{{Kind: "ce"}, {Kind: "pseudo"}, {Kind: "ce", SampleSquares: true}} {
		full, err := Accumulate(g, ds, 4, 2, lk)
		if err != nil {
			t.Fatal(err)
		}
		want := FromGradients(full)
		got, err := Measure(g, ds, 4, 2, lk, low)
		if err != nil {
			t.Fatal(err)
		}
		if got.Samples != 8 || math.Abs(got.Loss-want.Loss) > 1e-5*want.Loss {
			t.Errorf("%+v: %d samples, loss %v; want 8 and %v", lk, got.Samples, got.Loss, want.Loss)
		}
		if len(got.W) != len(want.W) {
			t.Fatalf("%+v: saliency for %d weights, want %d", lk, len(got.W), len(want.W))
		}
		pick := taylorSums
		if lk.SampleSquares {
			pick = obdSums
		}
		for w, m := range want.W {
			a, b := pick(m), pick(got.W[w])
			if b == nil {
				t.Fatalf("%+v: %s has no sums", lk, w)
			}
			for ax := range a {
				var scale float64
				for _, x := range a[ax] {
					scale = max(scale, x)
				}
				for i := range a[ax] {
					if d := math.Abs(a[ax][i] - b[ax][i]); d > 1e-4*scale+1e-12 {
						t.Fatalf("%+v: %s axis %d index %d: low-memory %v, full %v", lk, w, ax, i, b[ax][i], a[ax][i])
					}
				}
			}
		}
	}
}

// TestChunks: weights are split into ⌈total/budget⌉ runs of about equal
// bytes, in order, each over total/k by less than one weight.
func TestChunks(t *testing.T) {
	g := ir.NewGraph("c")
	var ws []*ir.Value
	var total, biggest int64
	for i, n := range []int64{9, 3, 9, 9, 1, 3, 9, 9, 2, 9, 3, 9} {
		ws = append(ws, g.AddConst(fmt.Sprintf("w%d", i), ir.MustTensor(ir.F32, n, 256)))
		total += 4 * 256 * n
		biggest = max(biggest, 4*256*n)
	}
	for _, budget := range []int64{0, total, total / 2, total / 4, total / 5, total / 7, 1} {
		cs := chunks(ws, budget)
		want := int64(1)
		if budget > 0 {
			want = (total + budget - 1) / budget
		}
		var flat []*ir.Value
		for _, c := range cs {
			var b int64
			for _, w := range c {
				b += 4 * int64(w.Const.Len())
			}
			if len(c) == 0 || b >= total/want+biggest {
				t.Errorf("budget %d: a chunk of %d weights, %d bytes (total %d in %d)", budget, len(c), b, total, want)
			}
			flat = append(flat, c...)
		}
		if int64(len(cs)) > want || (want <= int64(len(ws)) && int64(len(cs)) < want-1) {
			t.Errorf("budget %d: %d chunks, want %d", budget, len(cs), want)
		}
		if !slices.Equal(flat, ws) {
			t.Errorf("budget %d: chunks reorder or lose weights", budget)
		}
	}
}
