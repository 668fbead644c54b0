package quant_test

import (
	"github.com/pqvc/pqvc/internal/testmodels"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	frontend "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/runtime"
	"github.com/pqvc/pqvc/runtime/kernels"
)

// TestDeiTTinyLatency reports ONNX Runtime's single-thread latency of
// DeiT-tiny in fp32, fp16 and int8 (dynamic; static QDQ; static lowered),
// as ratios to fp32 measured in the same run, and how far our runtime's
// logits are from ORT's (optimisations off) on the sample image. Every file
// goes through the onnx checker. It asserts nothing about time; set
// PQVC_QUANT_BENCH=1 to run it.
func TestDeiTTinyLatency(t *testing.T) {
	if os.Getenv("PQVC_QUANT_BENCH") == "" {
		t.Skip("set PQVC_QUANT_BENCH=1 to measure")
	}
	model := strings.TrimSuffix(testmodels.Require(t, testmodels.Spec{Size: "tiny", Style: "timm", Opset: 17, Batch: "dynamic"}), ".onnx")
	base, err := frontend.Load(model + ".onnx")
	if err != nil {
		t.Skip(err)
	}
	sample, err := data.ReadTensors(model + ".sample.npz")
	if err != nil {
		t.Fatal(err)
	}
	var x *ir.Tensor
	for name, v := range sample {
		if v.DType == ir.F32 && len(v.Shape) == 4 {
			x = v
			t.Logf("sample %s %v", name, v.Shape)
		}
	}
	if x == nil {
		t.Fatal("no image batch in the sample")
	}
	calib := &data.Dataset{X: x}
	one := ir.F32Tensor(append([]int64{1}, x.Shape[1:]...), x.F32()[:x.Len()/int(x.Shape[0])])
	in, _ := data.FromTensor(one)
	r := ort.NewTestRunner(t)
	dir := t.TempDir()
	var ref, goRef float64
	defer kernels.SetThreads(kernels.Threads())
	kernels.SetThreads(1)
	for _, rc := range []struct{ name, recipe string }{
		{"fp32", ""},
		{"fp16", "quantize fp16"},
		{"int8_dynamic", "quantize int8 mode=dynamic"},
		{"int8_dynamic_pc", "quantize int8 mode=dynamic per_channel=true"},
		{"int8_static_qdq", "calibrate\nquantize int8 mode=static\nfold_qdq"},
		{"int8_static_pc_qdq", "calibrate\nquantize int8 mode=static per_channel=true\nfold_qdq"},
		{"int8_static_lowered", "calibrate\nquantize int8 mode=static\nfold_qdq lower=true"},
		{"int8_static_s8s8", "calibrate\nquantize int8 mode=static target=arm\nfold_qdq"},
	} {
		g := base.Clone()
		if rc.recipe != "" {
			pl, err := parsePipeline(rc.recipe)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := passes.Run(g, pl, passes.Config{Verify: true, Calib: calib}); err != nil {
				t.Fatalf("%s: %v", rc.name, err)
			}
		}
		file := filepath.Join(dir, rc.name+".onnx")
		if err := onnx.Write(file, g, onnx.Options{}); err != nil {
			t.Fatal(err)
		}
		checkModel(t, file)
		diff := exactDiff(t, r, file, g, &data.Dataset{X: one})
		res, err := r.Bench(file, map[string]*tensorio.Array{g.Inputs[0].Name: in}, 1, 5, 40)
		if err != nil {
			t.Fatalf("%s: %v", rc.name, err)
		}
		fi, _ := os.Stat(file)
		ms := float64(res.Median().Microseconds()) / 1000
		goMs := goLatency(t, g, one)
		if ref == 0 {
			ref, goRef = ms, goMs
		}
		t.Logf("%-20s ORT %7.2f ms ×%.2f  ours %7.2f ms ×%.2f  %9d bytes  logits max|ours-ORT| %.2g",
			rc.name, ms, ms/ref, goMs, goMs/goRef, fi.Size(), diff)
	}
}

// goLatency is our runtime's median single-thread latency over 5 runs.
func goLatency(t *testing.T, g *ir.Graph, x *ir.Tensor) float64 {
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*ir.Tensor{g.Inputs[0].Name: x}
	var ms []float64
	for i := range 6 {
		t0 := time.Now()
		if _, err := p.Run(in); err != nil {
			t.Fatal(err)
		}
		if i > 0 { // the first run packs weights
			ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	sort.Float64s(ms)
	return ms[len(ms)/2]
}
