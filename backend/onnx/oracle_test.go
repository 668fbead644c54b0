package onnx

// Tests against outside oracles: the DeiT exports (made on demand by
// scripts/export_deit.py, see internal/testmodels), the onnx package's
// checker and ONNX Runtime.

import (
	"bytes"
	"fmt"
	"github.com/pqvc/pqvc/internal/testmodels"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	frontend "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
)

// deitModels lists the DeiT-tiny exports, skipping the test if there are none.
func deitModels(t *testing.T) []string {
	t.Helper()
	return testmodels.RequireGlob(t, "*tiny*.onnx")
}

// python is the interpreter with the onnx package (1.12 on Debian; its
// checker knows IR versions up to 8 and opsets up to 17).
const python = "/usr/bin/python3"

// checkerScript checks each model file twice: by path, which validates
// external data locations in place, and loaded (external data read in) with
// full_check, which runs strict shape inference against the declared types.
// It does not use check_model(path, full_check=True): in onnx 1.12 that
// writes the inferred model back over the file.
const checkerScript = `
import sys, onnx
bad = 0
for f in sys.argv[1:]:
    try:
        onnx.checker.check_model(f)
        onnx.checker.check_model(onnx.load(f), full_check=True)
    except Exception as e:
        bad += 1
        print("FAIL %s: %s" % (f, str(e).strip().splitlines()[0][:400]))
sys.exit(1 if bad else 0)
`

// requireChecker skips the test when python3 with onnx is missing, except
// under CI=true, where it fails.
func requireChecker(t *testing.T) {
	t.Helper()
	err := exec.Command(python, "-c", "import onnx").Run()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the onnx checker is required in CI: %s -c 'import onnx': %v (apt-get install python3-onnx)", python, err)
	}
	t.Skipf("onnx checker unavailable: %s -c 'import onnx': %v", python, err)
}

// runChecker runs the onnx checker on files and fails the test for each it
// rejects.
func runChecker(t *testing.T, files ...string) {
	t.Helper()
	out, err := exec.Command(python, append([]string{"-c", checkerScript}, files...)...).CombinedOutput()
	if err != nil {
		t.Errorf("onnx checker: %v\n%s", err, out)
	}
}

// maxAbsDiff compares two float32 arrays of the same shape.
func maxAbsDiff(t *testing.T, a, b *tensorio.Array) float64 {
	t.Helper()
	x, ok1 := a.Data.([]float32)
	y, ok2 := b.Data.([]float32)
	if !ok1 || !ok2 || fmt.Sprint(a.Shape) != fmt.Sprint(b.Shape) {
		t.Fatalf("outputs differ in kind: %s%v vs %s%v", a.DType, a.Shape, b.DType, b.Shape)
	}
	d := 0.0
	for i := range x {
		if math.IsNaN(float64(x[i])) != math.IsNaN(float64(y[i])) {
			return math.Inf(1)
		}
		d = max(d, math.Abs(float64(x[i])-float64(y[i])))
	}
	return d
}

// TestDeiT reads every DeiT-tiny export, writes it back and checks the
// result four ways: the frontend reads it as the same graph, two encodings
// are byte-identical, the onnx checker accepts it, and ONNX Runtime computes
// the same logits from it as from the original.
func TestDeiT(t *testing.T) {
	files := deitModels(t)
	dir := t.TempDir()
	var emitted []string
	inputs := map[string]string{} // emitted file → input name
	for _, f := range files {
		base := filepath.Base(f)
		out := filepath.Join(dir, base)
		ok := t.Run(strings.TrimSuffix(base, ".onnx"), func(t *testing.T) {
			g, err := frontend.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			h, b := roundTrip(t, g, Options{})
			samePrint(t, g, h)
			if b2 := mustEncode(t, g, Options{}); !bytes.Equal(b, b2) {
				t.Error("two encodings differ")
			}
			// Value info for every intermediate lets the checker's strict
			// shape inference compare its types with ours.
			if err := Write(out, g, Options{ValueInfo: true}); err != nil {
				t.Fatal(err)
			}
			inputs[out] = g.Inputs[0].Name
		})
		if ok {
			emitted = append(emitted, out)
		}
	}
	t.Run("checker", func(t *testing.T) {
		requireChecker(t)
		runChecker(t, emitted...)
	})
	t.Run("ort", func(t *testing.T) {
		r := ort.NewTestRunner(t)
		for _, out := range emitted {
			orig := filepath.Join(filepath.Dir(deitModels(t)[0]), filepath.Base(out))
			compareORT(t, r, orig, out, strings.TrimSuffix(orig, ".onnx")+".sample.npz", inputs[out])
		}
	})
}

// compareORT runs both models on the sample's x and requires every output
// to agree within 1e-6.
func compareORT(t *testing.T, r *ort.Runner, want, got, sample, input string) {
	t.Helper()
	npz, err := tensorio.ReadNpz(sample)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*tensorio.Array{input: npz["x"]}
	a, err := r.Run(want, in, 1)
	if err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	b, err := r.Run(got, in, 1)
	if err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%s has %d outputs, %s has %d", want, len(a), got, len(b))
	}
	for name, x := range a {
		y, ok := b[name]
		if !ok {
			t.Errorf("%s: output %s missing", got, name)
			continue
		}
		d := maxAbsDiff(t, x, y)
		if d > 1e-6 {
			t.Errorf("%s: output %s differs from the original by %g", filepath.Base(got), name, d)
		}
		t.Logf("%s: output %s%v: max abs diff %g", filepath.Base(got), name, y.Shape, d)
	}
}

// TestAllOpsOracles writes the every-op graph at each opset. The checker
// (which knows opsets up to 17) must accept the opset-13 and -17 files, and
// ONNX Runtime must run them all and agree wherever two opsets compute the
// same thing in different forms: reductions with axes as an attribute (17)
// and as an input (18), and the same ops at 20 and 21.
func TestAllOpsOracles(t *testing.T) {
	dir := t.TempDir()
	file := func(opset int) string { return filepath.Join(dir, fmt.Sprintf("allops%d.onnx", opset)) }
	for _, opset := range []int{13, 17, 18, 20, 21} {
		if err := Write(file(opset), allOpsGraph(t, opset), Options{ValueInfo: true}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("checker", func(t *testing.T) {
		requireChecker(t)
		runChecker(t, file(13), file(17))
	})
	t.Run("ort", func(t *testing.T) {
		r := ort.NewTestRunner(t)
		x := &tensorio.Array{DType: "float32", Shape: []int{2, 4, 8, 8}, Data: make([]float32, 2*4*8*8)}
		for i := range x.Data.([]float32) {
			x.Data.([]float32)[i] = float32(i%13)*0.1 - 0.6
		}
		in := map[string]*tensorio.Array{"x": x}
		outs := map[int]map[string]*tensorio.Array{}
		for _, opset := range []int{13, 17, 18, 20, 21} {
			o, err := r.Run(file(opset), in, 1)
			if err != nil {
				t.Fatalf("opset %d: %v", opset, err)
			}
			outs[opset] = o
		}
		for _, pair := range [][2]int{{17, 18}, {20, 21}} {
			a, b := outs[pair[0]], outs[pair[1]]
			n := 0
			for name, x := range a {
				if x.DType != "float32" || b[name] == nil {
					continue
				}
				n++
				if d := maxAbsDiff(t, x, b[name]); d > 1e-6 {
					t.Errorf("output %s: opsets %d and %d differ by %g", name, pair[0], pair[1], d)
				}
			}
			if n < 8 {
				t.Errorf("opsets %v: compared only %d outputs", pair, n)
			}
		}
		if y := outs[18]["r.noop"]; y == nil || fmt.Sprint(y.Shape) != "[2 6]" {
			t.Errorf("ReduceMax with noop_with_empty_axes at opset 18 gave %v", y)
		}
	})
}

// TestLoadWrittenFile checks Write's output through frontend.Load, the path
// a user takes, including the graph's name and metadata.
func TestLoadWrittenFile(t *testing.T) {
	g := allOpsGraph(t, 17)
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := Write(path, g, Options{}); err != nil {
		t.Fatal(err)
	}
	h, err := frontend.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(h); err != nil {
		t.Fatal(err)
	}
	h.RemoveDead()
	samePrint(t, g, h)
}
