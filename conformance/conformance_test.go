package conformance

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	onnxout "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/internal/testmodels"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// Tolerances from the Foundation issue.
const (
	runtimeTol = 1e-4 // our runtime vs ONNX Runtime, logits
	convertTol = 1e-6 // ONNX Runtime on our re-emitted model vs on the original
)

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// checkModel runs one model through our runtime, ONNX Runtime, and ONNX
// Runtime again on pqvc's re-emitted copy.
func checkModel(t *testing.T, r *ort.Runner, path string, x *tensorio.Array) {
	g, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(g); err != nil {
		t.Fatal(err)
	}
	in := g.Inputs[0].Name
	out := g.Outputs[0].Name
	want, err := r.Run(path, map[string]*tensorio.Array{in: x}, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantY := want[out].Data.([]float32)

	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	xt, _ := data.ToTensor(x)
	got, err := p.Run(map[string]*ir.Tensor{in: xt})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(got[out].F32(), wantY); d > runtimeTol {
		t.Errorf("runtime vs ONNX Runtime: max abs diff %.3g > %g", d, runtimeTol)
	} else {
		t.Logf("runtime vs ONNX Runtime: max abs diff %.3g", d)
	}

	conv := filepath.Join(t.TempDir(), "converted.onnx")
	if err := onnxout.Write(conv, g, onnxout.Options{}); err != nil {
		t.Fatal(err)
	}
	again, err := r.Run(conv, map[string]*tensorio.Array{in: x}, 1)
	if err != nil {
		t.Fatalf("ONNX Runtime rejects the converted model: %v", err)
	}
	if d := maxAbsDiff(again[out].Data.([]float32), wantY); d > convertTol {
		t.Errorf("converted model in ONNX Runtime: max abs diff %.3g > %g", d, convertTol)
	}
}

func sampleInput(t *testing.T, onnxPath string) *tensorio.Array {
	arrs, err := tensorio.Read(strings.TrimSuffix(onnxPath, ".onnx") + ".sample.npz")
	if err != nil {
		t.Fatal(err)
	}
	return arrs["x"]
}

// TestDeiTExportsAgainstORT covers every exporter style at opsets 13 and 17,
// with static and dynamic batch (DeiT-tiny, seeded weights).
func TestDeiTExportsAgainstORT(t *testing.T) {
	r := ort.NewTestRunner(t)
	for _, style := range testmodels.Styles {
		for _, opset := range []int{13, 17} {
			for _, batch := range []string{"static", "dynamic"} {
				spec := testmodels.Spec{Size: "tiny", Style: style, Opset: opset, Batch: batch}
				t.Run(spec.Name(), func(t *testing.T) {
					path := testmodels.Require(t, spec)
					checkModel(t, r, path, sampleInput(t, path))
				})
			}
		}
	}
}

// TestShippedModelAgainstORT checks the embedded default model on real
// Fashion-MNIST images.
func TestShippedModelAgainstORT(t *testing.T) {
	r := ort.NewTestRunner(t)
	root, err := ort.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(root, "assets", "deit_fmnist.onnx")
	ds, err := tensorio.ReadNpz(filepath.Join(root, "assets", "fmnist_eval.npz"))
	if err != nil {
		t.Fatal(err)
	}
	x := ds["x"]
	n := 64
	per := len(x.Data.([]float32)) / x.Shape[0]
	batch := &tensorio.Array{DType: "float32", Shape: append([]int{n}, x.Shape[1:]...), Data: x.Data.([]float32)[:n*per]}
	checkModel(t, r, model, batch)
}
