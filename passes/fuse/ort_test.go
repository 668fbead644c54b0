package fuse_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	backend "github.com/pqvc/pqvc/backend/onnx"
	frontend "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/fuse"
)

// variants are the fused forms the ORT tests write, by label.
var variants = []struct {
	label string
	opts  fuse.Options
}{
	{"ort", fuse.Options{Target: fuse.TargetORT}},
	{"ort_mha", fuse.Options{Target: fuse.TargetORT, Attention: fuse.AttentionMHA}},
	{"onnx", fuse.Options{Target: fuse.TargetONNX}},
	{"ort_gemm_all", fuse.Options{Target: fuse.TargetORT, Gemm: fuse.GemmAll}},
	// Without gelu the model stays at opset 17, which the onnx 1.12
	// checker knows.
	{"onnx_op17", fuse.Options{Target: fuse.TargetONNX, Patterns: []string{"layernorm", "qkv", "gemm", "transpose"}}},
}

// writeFused canonicalizes and fuses the model at path with o and writes it
// to dir; it returns the file and whether it has contrib ops.
func writeFused(t *testing.T, path, dir, label string, o fuse.Options) (string, bool) {
	t.Helper()
	g := loadCanon(t, path)
	if _, err := fuse.Fuse(g, o); err != nil {
		t.Fatal(err)
	}
	contrib := false
	for _, v := range g.Values() {
		if d, _ := ir.SplitDomain(v.Op); d != "" {
			contrib = true
		}
	}
	b, err := backend.Encode(g, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, stem(path)+"_"+label+".onnx")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out, contrib
}

// python is the interpreter with the onnx package (Debian's python3-onnx,
// 1.12: its checker knows opsets up to 17 and IR versions up to 8).
const python = "/usr/bin/python3"

// TestORT writes every DeiT-tiny export (static and dynamic batch) in each fused variant and
// requires ONNX Runtime's logits to agree with the original model's within
// 1e-4. The opset-17 default-domain variant also goes through the onnx
// checker (with full_check: strict shape inference) when it is installed.
func TestORT(t *testing.T) {
	files := deitModels(t, "deit_tiny_*.onnx")
	r := ort.NewTestRunner(t)
	dir := t.TempDir()
	var plain []string
	worst := map[string]float64{} // largest logit difference per variant
	for _, path := range files {
		npz, err := tensorio.ReadNpz(strings.TrimSuffix(path, ".onnx") + ".sample.npz")
		if err != nil {
			t.Fatal(err)
		}
		g := loadCanon(t, path)
		in := map[string]*tensorio.Array{g.Inputs[0].Name: npz["x"]}
		want, err := r.Run(path, in, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, vr := range variants {
			out, contrib := writeFused(t, path, dir, vr.label, vr.opts)
			if !contrib && vr.label == "onnx_op17" {
				plain = append(plain, out)
			}
			got, err := r.Run(out, in, 1)
			if err != nil {
				t.Errorf("%s: %v", filepath.Base(out), err)
				continue
			}
			for k, w := range want {
				d := arrayDiff(w, got[k])
				if !(d <= 1e-4) {
					t.Errorf("%s: output %s differs from the original by %g", filepath.Base(out), k, d)
				}
				worst[vr.label] = max(worst[vr.label], d)
			}
		}
	}
	for _, vr := range variants {
		t.Logf("%-12s max |Δlogit| vs the original in ORT: %.3g", vr.label, worst[vr.label])
	}
	t.Run("checker", func(t *testing.T) {
		if err := exec.Command(python, "-c", "import onnx").Run(); err != nil {
			t.Skipf("onnx checker unavailable: %v", err)
		}
		script := "import sys, onnx\nfor f in sys.argv[1:]: onnx.checker.check_model(onnx.load(f), full_check=True)"
		if out, err := exec.Command(python, append([]string{"-c", script}, plain...)...).CombinedOutput(); err != nil {
			t.Errorf("onnx checker: %v\n%s", err, out)
		}
	})
}

func arrayDiff(a, b *tensorio.Array) float64 {
	if b == nil {
		return math.Inf(1)
	}
	x, ok1 := a.Data.([]float32)
	y, ok2 := b.Data.([]float32)
	if !ok1 || !ok2 || len(x) != len(y) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range x {
		d = max(d, math.Abs(float64(x[i])-float64(y[i])))
	}
	return d
}

// benchRounds is how many interleaved rounds TestBenchORT runs.
const benchRounds = 5

// TestBenchORT measures ONNX Runtime's latency (1 thread, static batch 1)
// of DeiT-tiny as exported and in each fused variant, at ORT's default
// optimisation level (all) and with its optimiser off, and logs the ratios
// to the original: per model, the best of benchRounds interleaved medians
// of 10 runs, and the fastest single run. It asserts nothing about time; set
// PQVC_BENCH=1 to run it.
func TestBenchORT(t *testing.T) {
	if os.Getenv("PQVC_BENCH") == "" {
		t.Skip("set PQVC_BENCH=1 to measure")
	}
	r := ort.NewTestRunner(t)
	dir := t.TempDir()
	for _, path := range deitModels(t, "deit_tiny_*_op1[37]_static.onnx") {
		if sel := os.Getenv("PQVC_BENCH_MODELS"); sel != "" && !strings.Contains(path, sel) {
			continue
		}
		npz, err := tensorio.ReadNpz(strings.TrimSuffix(path, ".onnx") + ".sample.npz")
		if err != nil {
			t.Fatal(err)
		}
		g := loadCanon(t, path)
		in := map[string]*tensorio.Array{g.Inputs[0].Name: npz["x"]}
		models := map[string]string{"original": path}
		labels := []string{"original"}
		for _, vr := range variants {
			models[vr.label], _ = writeFused(t, path, dir, vr.label, vr.opts)
			labels = append(labels, vr.label)
		}
		for _, opt := range []string{"all", "disable"} {
			// The machine is shared and busy: interleave the three models
			// round by round so drift hits them alike, and keep each
			// model's best round median.
			best, low := map[string]float64{}, map[string]float64{}
			for range benchRounds {
				for _, k := range labels {
					b, err := r.BenchWith(models[k], in, ort.Options{Threads: 1, Opt: opt}, 2, 10)
					if err != nil {
						t.Fatal(err)
					}
					if best[k] == 0 || b.MedianMs < best[k] {
						best[k] = b.MedianMs
					}
					if low[k] == 0 || b.MinMs < low[k] {
						low[k] = b.MinMs
					}
				}
			}
			line := fmt.Sprintf("%-34s opt=%-7s original %.2f ms (min %.2f)", stem(path), opt, best["original"], low["original"])
			for _, k := range labels[1:] {
				line += fmt.Sprintf(" | %s %.3f× (min %.3f×)", k, best[k]/best["original"], low[k]/low["original"])
			}
			t.Log(line)
		}
	}
}

// TestReadBack encodes a DeiT fused for ONNX Runtime and reads it back with
// the frontend: the contrib ops must come back as the same IR ops. It skips
// while frontend/onnx's node() still rejects the com.microsoft domain.
func TestReadBack(t *testing.T) {
	files := deitModels(t, "deit_tiny_timm_op13_static.onnx")
	g := loadCanon(t, files[0])
	if _, err := fuse.Fuse(g, fuse.Default); err != nil {
		t.Fatal(err)
	}
	b, err := backend.Encode(g, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "fused.onnx")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := frontend.Load(file)
	if err != nil {
		if strings.Contains(err.Error(), "only the default ONNX domain") {
			t.Skipf("frontend hook for com.microsoft not in place: %v", err)
		}
		t.Fatal(err)
	}
	h.Opset = g.Opset // the backend raises the opset to what LayerNormalization needs
	got, want := strings.Split(h.String(), "\n"), strings.Split(g.String(), "\n")
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("read-back graph differs at line %d:\n- %s\n+ %s", i+1, want[i], got[i])
		}
	}
	if len(got) != len(want) {
		t.Errorf("read-back graph has %d lines, want %d", len(got), len(want))
	}
}
