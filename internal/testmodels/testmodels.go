// Package testmodels provides DeiT exports for tests and benchmarks. They
// are generated on demand by scripts/export_deit.py (Debian's python3-torch,
// seeded weights) into a cache folder, never committed: $PQVC_CACHE, else
// <repo>/.cache/models. Without python3-torch the callers skip, except under
// CI=true, where a missing exporter is a failure.
package testmodels

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pqvc/pqvc/internal/ort"
)

// Python is the interpreter with torch (Debian's, not a pyenv shim).
const Python = "/usr/bin/python3"

// Spec names one export.
type Spec struct {
	Size  string // tiny, small, base
	Style string // timm, timm_unbind, timm_narrow, torchvision, hf
	Opset int    // 13 or 17
	Batch string // static or dynamic
}

// Name is the export's file stem.
func (s Spec) Name() string {
	return fmt.Sprintf("deit_%s_%s_op%d_%s", s.Size, s.Style, s.Opset, s.Batch)
}

// Styles are the exporter styles export_deit.py writes.
var Styles = []string{"timm", "timm_unbind", "timm_narrow", "torchvision", "hf"}

// CacheDir returns (and creates) the model cache folder.
func CacheDir() (string, error) {
	dir := os.Getenv("PQVC_CACHE")
	if dir == "" {
		root, err := ort.RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, ".cache", "models")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

var mu sync.Mutex

// Path returns the .onnx path of spec, exporting it first if needed. The
// sample inputs and torch's outputs sit next to it as NAME.sample.npz.
func Path(spec Spec) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, spec.Name()+".onnx")
	if _, err := os.Stat(out[:len(out)-5] + ".json"); err == nil {
		return out, nil // the sidecar is written last: its presence means complete
	}
	root, err := ort.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(Python, filepath.Join(root, "scripts", "export_deit.py"),
		"--size", spec.Size, "--style", spec.Style, "--opset", fmt.Sprint(spec.Opset),
		"--batch", spec.Batch, "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("export %s: %v\n%s", spec.Name(), err, lastLines(b, 5))
	}
	return out, nil
}

// Available reports why exports cannot be made here (nil if they can).
func Available() error {
	if _, err := os.Stat(Python); err != nil {
		return fmt.Errorf("%s not found (apt-get install python3-torch python3-onnx)", Python)
	}
	if err := exec.Command(Python, "-c", "import torch, onnx").Run(); err != nil {
		return fmt.Errorf("%s cannot import torch and onnx (apt-get install python3-torch python3-onnx)", Python)
	}
	return nil
}

// Require returns spec's path, skipping the test when exports are not
// possible here, and failing under CI=true.
func Require(t testing.TB, spec Spec) string {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	p, err := Path(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func lastLines(b []byte, n int) string {
	lines := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			lines++
			if lines > n {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

// TinySpecs lists every DeiT-tiny export: each style, opsets 13 and 17,
// static and dynamic batch.
func TinySpecs() []Spec {
	var out []Spec
	for _, style := range Styles {
		for _, opset := range []int{13, 17} {
			for _, batch := range []string{"static", "dynamic"} {
				out = append(out, Spec{Size: "tiny", Style: style, Opset: opset, Batch: batch})
			}
		}
	}
	return out
}

// RequireGlob returns the paths of the DeiT-tiny exports whose file name
// (e.g. deit_tiny_timm_op17_dynamic.onnx) matches pattern, exporting them
// first if needed. Like Require it skips without an exporter, except under
// CI=true. A pattern that matches nothing is a test bug and fails.
func RequireGlob(t testing.TB, pattern string) []string {
	t.Helper()
	var paths []string
	for _, s := range TinySpecs() {
		if ok, err := filepath.Match(pattern, s.Name()+".onnx"); err != nil {
			t.Fatalf("bad pattern %q: %v", pattern, err)
		} else if ok {
			paths = append(paths, Require(t, s))
		}
	}
	if len(paths) == 0 {
		t.Fatalf("no DeiT-tiny export matches %q", pattern)
	}
	return paths
}
