package canon_test

import (
	"fmt"
	"github.com/pqvc/pqvc/internal/testmodels"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/data"
	onnx "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
	"github.com/pqvc/pqvc/runtime"
)

func deitModels(t *testing.T) []string {
	if testing.Short() {
		t.Skip("DeiT models: skipped in -short mode")
	}
	return testmodels.RequireGlob(t, "deit_tiny_*.onnx") // exported on demand into the cache
}

func stem(path string) string { return strings.TrimSuffix(filepath.Base(path), ".onnx") }

func load(t *testing.T, path string) *ir.Graph {
	t.Helper()
	g, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// passFuncs runs each canonical pass alone, with its defaults.
var passFuncs = map[string]func(*ir.Graph) (map[string]int, error){
	"shape_fold": func(g *ir.Graph) (map[string]int, error) {
		return canon.ShapeFold(g, canon.ShapeFoldOptions{Symbolic: true})
	},
	"const_fold": func(g *ir.Graph) (map[string]int, error) {
		return canon.ConstFold(g, canon.ConstFoldOptions{MaxBytes: 64 << 20})
	},
	"identity_elim": func(g *ir.Graph) (map[string]int, error) { return canon.IdentityElim(g, canon.IdentityElimOptions{}) },
	"cse":           func(g *ir.Graph) (map[string]int, error) { return canon.CSE(g, canon.CSEOptions{}) },
	"dce":           func(g *ir.Graph) (map[string]int, error) { return canon.DCE(g), nil },
	"canonicalize":  func(g *ir.Graph) (map[string]int, error) { return canon.Canonicalize(g, canon.DefaultCanonicalize) },
}

// TestDeiTIdempotent runs every canonical pass twice on every DeiT style:
// the second run must leave the printed graph unchanged, and every run must
// leave a graph that verifies.
func TestDeiTIdempotent(t *testing.T) {
	names := make([]string, 0, len(passFuncs))
	for n := range passFuncs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, path := range deitModels(t) {
		g0 := load(t, path)
		for _, name := range names {
			g := g0.Clone()
			if _, err := passFuncs[name](g); err != nil {
				t.Fatalf("%s: %s: %v", stem(path), name, err)
			}
			if err := ir.Verify(g); err != nil {
				t.Fatalf("%s: %s broke the IR: %v", stem(path), name, err)
			}
			once := g.String()
			if _, err := passFuncs[name](g); err != nil {
				t.Fatalf("%s: %s (second run): %v", stem(path), name, err)
			}
			if twice := g.String(); twice != once {
				t.Errorf("%s: %s is not idempotent:\n%s", stem(path), name, firstDiff(once, twice))
			}
		}
	}
}

// TestDeiTNumerics canonicalizes every DeiT-tiny export and checks that
// the runtime gives the same logits before and after, on the sample image
// and, for dynamic-batch exports, on a batch of two (so a batch size baked
// into a constant would show). Static-batch exports must lose every Shape op.
func TestDeiTNumerics(t *testing.T) {
	for _, path := range deitModels(t) {
		name := stem(path)
		g := load(t, path)
		h := g.Clone()
		st, err := canon.Canonicalize(h, canon.DefaultCanonicalize)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := ir.Verify(h); err != nil {
			t.Fatalf("%s: canonicalize broke the IR: %v", name, err)
		}
		before, after := ir.ComputeStats(g).Ops, ir.ComputeStats(h).Ops
		t.Logf("%-34s values %4d → %4d (-%4d)  Shape %3d → %d  rounds %d  %s", name, st["values_before"], st["values_after"],
			st["values_before"]-st["values_after"], before["Shape"], after["Shape"], st["rounds"], brief(st))
		if strings.HasSuffix(name, "_static") && after["Shape"] > 0 {
			t.Errorf("%s: %d Shape ops left in a static-batch export", name, after["Shape"])
		}
		sample, err := data.ReadTensors(strings.TrimSuffix(path, ".onnx") + ".sample.npz")
		if err != nil {
			t.Fatal(err)
		}
		x := sample["x"]
		xs := []*ir.Tensor{x}
		if !g.Inputs[0].Type.Shape.IsStatic() {
			xs = append(xs, twice(x))
		}
		for _, in := range xs {
			want := run(t, g, in)
			got := run(t, h, in)
			for k, w := range want {
				if d := maxDiff(w, got[k]); !(d <= 1e-5) {
					t.Errorf("%s: batch %d: output %s differs by %g after canonicalize", name, in.Shape[0], k, d)
				}
			}
		}
	}
}

func run(t *testing.T, g *ir.Graph, x *ir.Tensor) map[string]*ir.Tensor {
	t.Helper()
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: x})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// twice stacks x on itself along the batch dim.
func twice(x *ir.Tensor) *ir.Tensor {
	shape := append([]int64{2 * x.Shape[0]}, x.Shape[1:]...)
	d := x.F32()
	return ir.F32Tensor(shape, append(append([]float32{}, d...), d...))
}

func maxDiff(a, b *ir.Tensor) float64 {
	if b == nil || a.Len() != b.Len() {
		return math.Inf(1)
	}
	x, y := a.F32(), b.F32()
	m := 0.0
	for i := range x {
		m = max(m, math.Abs(float64(x[i]-y[i])))
	}
	return m
}

// brief lists the non-zero change counts of a canonicalize run.
func brief(st map[string]int) string {
	var ks []string
	for k, n := range st {
		if strings.Contains(k, ".") && n != 0 {
			ks = append(ks, fmt.Sprintf("%s=%d", k, n))
		}
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(al), len(bl))
}
