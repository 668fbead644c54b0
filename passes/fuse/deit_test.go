package fuse_test

import (
	"fmt"
	"github.com/pqvc/pqvc/internal/testmodels"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/data"
	frontend "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
	"github.com/pqvc/pqvc/passes/fuse"
	"github.com/pqvc/pqvc/runtime"
)

// deitModels lists the DeiT-tiny exports matching glob (static-batch ones
// unless the glob says otherwise), skipping in -short mode.
func deitModels(t *testing.T, glob string) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("DeiT models: skipped in -short mode")
	}
	return testmodels.RequireGlob(t, glob) // exported on demand into the cache
}

func stem(path string) string { return strings.TrimSuffix(filepath.Base(path), ".onnx") }

// loadCanon reads a model and canonicalizes it, as a recipe would before
// fuse.
func loadCanon(t *testing.T, path string) *ir.Graph {
	t.Helper()
	g, err := frontend.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := canon.Canonicalize(g, canon.DefaultCanonicalize); err != nil {
		t.Fatal(err)
	}
	return g
}

func sampleInput(t *testing.T, path string) *ir.Tensor {
	t.Helper()
	s, err := data.ReadTensors(strings.TrimSuffix(path, ".onnx") + ".sample.npz")
	if err != nil {
		t.Fatal(err)
	}
	return s["x"]
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

// TestDeiTNumerics fuses every DeiT-tiny style with each pattern alone, with
// all patterns for each target, and with the non-default attention and gemm
// forms, and requires the runtime's logits
// before and after to agree within 1e-5. It logs the rule counts, which the
// fuse report quotes.
func TestDeiTNumerics(t *testing.T) {
	var cfgs []fuse.Options
	for _, p := range fuse.Patterns() {
		cfgs = append(cfgs, fuse.Options{Target: fuse.TargetORT, Patterns: []string{p}})
	}
	cfgs = append(cfgs, fuse.Options{Target: fuse.TargetORT}, fuse.Options{Target: fuse.TargetONNX},
		fuse.Options{Target: fuse.TargetORT, Attention: fuse.AttentionMHA, Gemm: fuse.GemmAll})
	for _, path := range deitModels(t, "deit_tiny_*_static.onnx") {
		name := stem(path)
		g := loadCanon(t, path)
		x := sampleInput(t, path)
		want := run(t, g, x)
		for _, c := range cfgs {
			h := g.Clone()
			st, err := fuse.Fuse(h, c)
			if err != nil {
				t.Fatalf("%s %+v: %v", name, c, err)
			}
			if err := ir.Verify(h); err != nil {
				t.Fatalf("%s %+v: fuse broke the IR: %v", name, c, err)
			}
			got := run(t, h, x)
			for k, w := range want {
				if d := maxDiff(w, got[k]); !(d <= 1e-5) {
					t.Errorf("%s %+v: output %s differs by %g", name, c, k, d)
				}
			}
			if c.Patterns == nil {
				t.Logf("%-32s target=%-4s attention=%-6s gemm=%-3s %s", name, c.Target, c.Attention, c.Gemm, brief(st))
			}
		}
	}
}

// TestDeiTDynamicBatch fuses the dynamic-batch exports and runs a batch of
// two, so that a batch size baked into a fused op would show.
func TestDeiTDynamicBatch(t *testing.T) {
	for _, path := range deitModels(t, "deit_tiny_*_op17_dynamic.onnx") {
		g := loadCanon(t, path)
		h := g.Clone()
		if _, err := fuse.Fuse(h, fuse.Default); err != nil {
			t.Fatalf("%s: %v", stem(path), err)
		}
		x := sampleInput(t, path)
		d := x.F32()
		x2 := ir.F32Tensor(append([]int64{2 * x.Shape[0]}, x.Shape[1:]...), append(append([]float32{}, d...), d...))
		want, got := run(t, g, x2), run(t, h, x2)
		for k, w := range want {
			if diff := maxDiff(w, got[k]); !(diff <= 1e-5) {
				t.Errorf("%s: batch 2: output %s differs by %g", stem(path), k, diff)
			}
		}
	}
}

// brief lists rewrites per rule that fired, e.g. "attention=12 gelu=12".
func brief(st fuse.Stats) string {
	var parts []string
	for n, r := range st.Rules {
		if r.Rewritten > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", n, r.Rewritten))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
