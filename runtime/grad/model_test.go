package grad

import (
	"github.com/pqvc/pqvc/internal/testmodels"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
)

var (
	deitTiny       = testmodels.Spec{Size: "tiny", Style: "timm", Opset: 17, Batch: "dynamic"}
	deitTinyUnbind = testmodels.Spec{Size: "tiny", Style: "timm_unbind", Opset: 13, Batch: "dynamic"}
)

func loadModel(t *testing.T, path string) *ir.Graph {
	t.Helper()
	if testing.Short() {
		t.Skip("model test in -short mode")
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not available", path)
	}
	g, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestDeiTDirectional compares the gradient of DeiT-tiny's batch loss with
// central finite differences along a direction per weight (half along the
// gradient, half random, so both magnitude and unexpected components show).
func TestDeiTDirectional(t *testing.T) {
	// timm op17 (fused LayerNormalization) and timm unbind op13
	// (LayerNorm from ReduceMean/Pow/Sqrt, Split into q/k/v).
	for _, s := range []testmodels.Spec{deitTiny, deitTinyUnbind} {
		t.Run(s.Name(), func(t *testing.T) { directional(t, testmodels.Require(t, s)) })
	}
}

func directional(t *testing.T, path string) {
	g := loadModel(t, path)
	rng := rand.New(rand.NewSource(1))
	in := map[string]*ir.Tensor{g.Inputs[0].Name: randInput(rng, 2, 3, 224, 224)}
	loss := Loss{Kind: "ce", Labels: []int64{int64(rng.Intn(1000)), int64(rng.Intn(1000))}}
	e, err := NewEngine(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := e.Gradients(in, loss)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DeiT-tiny batch 2: forward+backward %v (%d weights), loss %.4f", time.Since(start), len(r.Grads), r.Loss)
	wrt := e.Wrt()
	picks := []*ir.Value{wrt[0], wrt[len(wrt)-1]}
	for range 4 {
		picks = append(picks, wrt[rng.Intn(len(wrt))])
	}
	for _, w := range picks {
		gw := r.Grads[w].F32()
		d := make([]float64, len(gw))
		var gn, rn float64
		for i := range d {
			d[i] = rng.NormFloat64()
			rn += d[i] * d[i]
			gn += float64(gw[i]) * float64(gw[i])
		}
		gn, rn = math.Sqrt(gn), math.Sqrt(rn)
		var dir float64
		for i := range d {
			if gn > 0 {
				d[i] = 0.5*d[i]/rn + 0.5*float64(gw[i])/gn
			} else {
				d[i] /= rn
			}
			dir += d[i] * float64(gw[i])
		}
		// Scale the step to the weight's size so f32 rounding stays small.
		h := 1e-3 * math.Sqrt(float64(len(d))) * max(rms(w.Const.F32()), 1e-2)
		orig := append([]float32{}, w.Const.F32()...)
		lossAt := func(s float64) float64 {
			for i := range orig {
				w.Const.F32()[i] = orig[i] + float32(s*d[i])
			}
			return lossOf(t, g, in, loss)
		}
		fd := (lossAt(h) - lossAt(-h)) / (2 * h)
		copy(w.Const.F32(), orig)
		t.Logf("%s %v: analytic %.6g, finite difference %.6g", w, w.Const.Shape, dir, fd)
		if !(math.Abs(dir-fd) <= 2e-3+1e-2*math.Abs(fd)) {
			t.Errorf("%s: directional derivative %.6g, finite difference %.6g", w, dir, fd)
		}
	}
}

func rms(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(len(x), 1)))
}

// TestTimings logs gradient costs on the real models (no assertions: a
// test never asserts a wall-clock time).
func TestTimings(t *testing.T) {
	g := loadModel(t, testmodels.Require(t, deitTiny))
	rng := rand.New(rand.NewSource(2))
	e, err := NewEngine(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 4} {
		in := map[string]*ir.Tensor{g.Inputs[0].Name: randInput(rng, int64(n), 3, 224, 224)}
		labels := make([]int64, n)
		// Best of three: the machine is shared.
		fwd, full := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
		for range 3 {
			start := time.Now()
			if _, err := e.prog.Run(in); err != nil {
				t.Fatal(err)
			}
			fwd = min(fwd, time.Since(start))
			start = time.Now()
			if _, err := e.Gradients(in, Loss{Kind: "ce", Labels: labels}); err != nil {
				t.Fatal(err)
			}
			full = min(full, time.Since(start))
		}
		t.Logf("DeiT-tiny batch %d, per image: forward %v, forward+backward %v", n, fwd/time.Duration(n), full/time.Duration(n))
	}
	fm := loadModel(t, "../../assets/deit_fmnist_p7.onnx")
	ds, err := data.Load("../../assets/fmnist_calib.npz")
	if err != nil {
		t.Skip(err)
	}
	for _, sq := range []bool{false, true} {
		e, err := NewEngine(fm, Options{SampleSquares: sq})
		if err != nil {
			t.Fatal(err)
		}
		in := map[string]*ir.Tensor{fm.Inputs[0].Name: ds.Batch(0, 32)}
		best := time.Duration(math.MaxInt64)
		for range 3 {
			start := time.Now()
			if _, err := e.Gradients(in, Loss{Kind: "ce", Labels: ds.Y[:32]}); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		t.Logf("fmnist p7, 32 images, SampleSquares=%v: %v", sq, best)
	}
}

// TestDeiTStyles runs a gradient through every DeiT-tiny export style and
// opset on disk: each must have a VJP for every op on its gradient paths.
func TestDeiTStyles(t *testing.T) {
	if testing.Short() {
		t.Skip("model test in -short mode")
	}
	paths := testmodels.RequireGlob(t, "deit_tiny_*.onnx")
	rng := rand.New(rand.NewSource(3))
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			g := loadModel(t, p)
			in := g.Inputs[0]
			shape := make([]int64, in.Type.Rank())
			for i, d := range in.Type.Shape {
				shape[i] = 1
				if d.IsStatic() {
					shape[i] = d.C
				}
			}
			x := randInput(rng, shape...)
			r, err := Gradients(g, map[string]*ir.Tensor{in.Name: x}, Loss{Kind: "ce", Labels: make([]int64, shape[0])}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var norm float64
			for _, gw := range r.Grads {
				for _, v := range gw.F32() {
					norm += float64(v) * float64(v)
				}
			}
			if !(norm > 0) || math.IsInf(norm, 0) {
				t.Errorf("gradient norm² %v", norm)
			}
		})
	}
}
