package ptl_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/backend"
	"github.com/pqvc/pqvc/backend/ptl"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/internal/testmodels"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/runtime"

	_ "github.com/pqvc/pqvc/passes/builtin" // every pass, for recipes run in tests
)

const (
	python = "/usr/bin/python3"
	assets = "../../assets"
)

var checkScript = filepath.Join("..", "..", "scripts", "ptl_check.py")

// requireTorch skips the test when python3-torch is not installed.
func requireTorch(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not found (apt-get install python3-torch)", python)
	}
	if err := exec.Command(python, "-c", "import torch, numpy").Run(); err != nil {
		t.Skipf("%s cannot import torch and numpy", python)
	}
}

func loadModel(t *testing.T, path string) *ir.Graph {
	t.Helper()
	g, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// evalImages returns the first n images of the shipped evaluation set.
func evalImages(t *testing.T, n int) *ir.Tensor {
	t.Helper()
	ds, err := data.Load(filepath.Join(assets, "fmnist_eval.npz"))
	if err != nil {
		t.Fatal(err)
	}
	per := ds.X.Len() / ds.Len()
	shape := append([]int64{int64(n)}, ds.X.Shape[1:]...)
	return ir.F32Tensor(shape, append([]float32(nil), ds.X.F32()[:n*per]...))
}

// runPipeline applies recipe steps to g, with the shipped calibration set.
func runPipeline(t *testing.T, g *ir.Graph, steps string) {
	t.Helper()
	rec, err := dsl.Parse("test.pqv", []byte("model \"m.onnx\"\n"+steps+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	calib, err := data.Load(filepath.Join(assets, "fmnist_calib.npz"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Run(g, rec.Pipeline(), passes.Config{Verify: true, Calib: calib}); err != nil {
		t.Fatal(err)
	}
}

// ours runs g on x with the Go runtime and returns the first output.
func ours(t *testing.T, g *ir.Graph, x *ir.Tensor) *ir.Tensor {
	t.Helper()
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: x})
	if err != nil {
		t.Fatal(err)
	}
	return out[g.Outputs[0].Name]
}

// theirs emits g with options o and batch = x's batch, runs the file in
// PyTorch with each loader and returns the first outputs and the archive
// path.
func theirs(t *testing.T, g *ir.Graph, x *ir.Tensor, o ptl.Options, loaders ...string) (map[string]*ir.Tensor, string) {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "m.ptl")
	o.Batch = x.Shape[0]
	if err := ptl.Write(model, g, o); err != nil {
		t.Fatal(err)
	}
	in, err := data.FromTensor(x)
	if err != nil {
		t.Fatal(err)
	}
	inPath := filepath.Join(dir, "in.npz")
	if err := tensorio.WriteNpz(inPath, map[string]*tensorio.Array{"x": in}); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "out.npz")
	cmd := exec.Command(python, checkScript, "run", model, "--input", inPath, "--output", outPath, "--loader", strings.Join(loaders, ","))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("running %s in PyTorch: %v\n%s", model, err, b)
	}
	ts, err := data.ReadTensors(outPath)
	if err != nil {
		t.Fatal(err)
	}
	outs := map[string]*ir.Tensor{}
	for _, loader := range loaders {
		outs[loader] = ts[loader+"_out0"]
	}
	return outs, model
}

func maxAbsDiff(t *testing.T, a, b *ir.Tensor) float64 {
	t.Helper()
	if a == nil || b == nil || len(a.F32()) != len(b.F32()) {
		t.Fatalf("outputs differ in size: %v vs %v", a, b)
	}
	d := 0.0
	for i, x := range a.F32() {
		d = max(d, math.Abs(float64(x-b.F32()[i])))
	}
	return d
}

// check emits g, runs it in both PyTorch loaders and compares with the Go
// runtime on the same images.
func check(t *testing.T, g *ir.Graph, x *ir.Tensor, tol float64) string {
	t.Helper()
	return checkWith(t, g, x, ptl.Options{}, tol)
}

func checkWith(t *testing.T, g *ir.Graph, x *ir.Tensor, o ptl.Options, tol float64) string {
	t.Helper()
	want := ours(t, g, x)
	got, model := theirs(t, g, x, o, "lite", "jit")
	for loader, out := range got {
		d := maxAbsDiff(t, out, want)
		t.Logf("%s: max |torch − pqvc| = %.3g", loader, d)
		if d > tol {
			t.Errorf("%s loader: max abs diff %.3g > %.3g", loader, d, tol)
		}
	}
	return model
}

func TestShippedModelsFP32(t *testing.T) {
	requireTorch(t)
	x := evalImages(t, 4)
	for _, c := range []struct {
		name string
		o    ptl.Options
	}{
		{"deit_fmnist.onnx", ptl.Options{}},
		{"deit_fmnist.onnx", ptl.Options{NoXNNPACK: true}},
		{"deit_fmnist_p7.onnx", ptl.Options{}},
	} {
		t.Run(fmt.Sprintf("%s/xnnpack=%v", c.name, !c.o.NoXNNPACK), func(t *testing.T) {
			g := loadModel(t, filepath.Join(assets, c.name))
			before := printed(t, g)
			model := checkWith(t, g, x, c.o, 1e-4)
			if printed(t, g) != before {
				t.Error("Write changed the caller's graph")
			}
			src, err := os.ReadFile(model)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Contains(src, []byte("prepacked::linear_clamp_run")); got == c.o.NoXNNPACK {
				t.Errorf("prepacked::linear_clamp_run in the archive: %v, want %v", got, !c.o.NoXNNPACK)
			}
		})
	}
}

func printed(t *testing.T, g *ir.Graph) string {
	t.Helper()
	var b strings.Builder
	if err := ir.Print(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPrunedFusedFP32(t *testing.T) {
	requireTorch(t)
	g := loadModel(t, filepath.Join(assets, "deit_fmnist.onnx"))
	runPipeline(t, g, "canonicalize\nprune mlp ratio=9.375%\nfuse attention=mha")
	ops := ir.ComputeStats(g).Ops
	if ops[ir.MSDomain+".MultiHeadAttention"] == 0 || ops[ir.MSDomain+".Gelu"] == 0 {
		t.Fatalf("fuse did not produce MultiHeadAttention and Gelu: %v", ops)
	}
	check(t, g, evalImages(t, 2), 1e-4)
}

// storages reads the archive's stored tensor bytes per torch storage class.
func storages(t *testing.T, model string) map[string]int64 {
	t.Helper()
	b, err := exec.Command(python, checkScript, "info", model).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		BytecodeVersion int `json:"bytecode_version"`
		Storages        map[string]struct {
			Bytes int64 `json:"bytes"`
		} `json:"storages"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info.BytecodeVersion != 8 {
		t.Errorf("bytecode version %d, want 8", info.BytecodeVersion)
	}
	out := map[string]int64{}
	for k, v := range info.Storages {
		out[k] = v.Bytes
	}
	return out
}

func TestInt8(t *testing.T) {
	requireTorch(t)
	dynamic := "canonicalize\nprune mlp ratio=9.375%\nfuse attention=mha\nquantize int8 mode=dynamic"
	for _, c := range []struct {
		name, steps string
		linear      ptl.Int8Linear
		storage     string // where the int8 weights must be
		tol         float64
	}{
		// dequant redoes the graph's integer arithmetic; only float
		// rounding order differs, which can move an activation across a
		// step of its quantization grid.
		{"dynamic_dequant", dynamic, ptl.Int8Dequant, "CharStorage", 2e-2},
		// packed runs QNNPACK's linear_dynamic: the same u8 activation
		// quantization, then an integer GEMM.
		{"dynamic_packed", dynamic, ptl.Int8Packed, "QInt8Storage", 2e-2},
		{"static_qdq", "canonicalize\nfuse attention=mha\ncalibrate minmax\nquantize int8 mode=static", "", "CharStorage", 2e-2},
		// ONNX Runtime's fused int8 ops.
		{"dqmatmul_packed", dynamic + "\nfuse patterns=qmatmul", ptl.Int8Packed, "QInt8Storage", 2e-2},
		{"dqmatmul_dequant", dynamic + "\nfuse patterns=qmatmul", ptl.Int8Dequant, "CharStorage", 2e-2},
		{"matmul_integer_to_float", "canonicalize\ncalibrate minmax\nquantize int8 mode=static per_channel=true\nfold_qdq lower=true\nfuse patterns=qmatmul", "", "CharStorage", 2e-2},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := loadModel(t, filepath.Join(assets, "deit_fmnist.onnx"))
			runPipeline(t, g, c.steps)
			t.Logf("ops: %v", ir.ComputeStats(g).Ops)
			model := checkWith(t, g, evalImages(t, 4), ptl.Options{Int8Linear: c.linear}, c.tol)
			st := storages(t, model)
			if st[c.storage] < 4*st["FloatStorage"] {
				t.Errorf("weights are not stored as int8 (%s): %v", c.storage, st)
			}
		})
	}
}

func TestDeiTExports(t *testing.T) {
	if testing.Short() {
		t.Skip("DeiT-tiny exports are slow in -short mode")
	}
	requireTorch(t)
	for _, pattern := range []string{"deit_tiny_timm_op17_dynamic.onnx", "deit_tiny_hf_op13_static.onnx", "deit_tiny_torchvision_op13_dynamic.onnx"} {
		for _, path := range testmodels.RequireGlob(t, pattern) {
			t.Run(filepath.Base(path), func(t *testing.T) {
				g := loadModel(t, path)
				x := ir.MustTensor(ir.F32, 1, 3, 224, 224)
				for i := range x.F32() {
					x.F32()[i] = float32(math.Sin(float64(i) * 0.001))
				}
				check(t, g, x, 1e-4)
			})
		}
	}
}

func TestUnsupportedOp(t *testing.T) {
	g := ir.NewGraph("t")
	in := g.AddInput("x", ir.Type{DType: ir.F32, Shape: ir.StaticShape(1, 4)})
	v, err := g.Add("HardSigmoid", "hs", nil, in)
	if err != nil {
		t.Fatal(err)
	}
	g.SetOutput("y", v)
	err = ptl.Write(filepath.Join(t.TempDir(), "m.ptl"), g, ptl.Options{})
	if err == nil {
		t.Fatal("Write accepted HardSigmoid")
	}
	for _, want := range []string{"emit ptl", "node", `"hs"`, "(HardSigmoid)", "no TorchScript mapping"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestRegisteredOptions(t *testing.T) {
	b := backend.Lookup("ptl")
	if b == nil {
		t.Fatal("backend ptl is not registered")
	}
	g := loadModel(t, filepath.Join(assets, "deit_fmnist.onnx"))
	dir := t.TempDir()
	for _, opts := range []map[string]string{{"bogus": "1"}, {"batch": "0"}, {"format": "onnx"}} {
		path := filepath.Join(dir, "bad.ptl")
		if err := b.Emit(path, g, opts); err == nil {
			t.Errorf("options %v accepted", opts)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("options %v left a file behind", opts)
		}
	}
	path := filepath.Join(dir, "ts.ptl")
	if err := b.Emit(path, g, map[string]string{"batch": "3", "format": "torchscript"}); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(src), "bytecode.pkl") {
		t.Error("format=torchscript wrote bytecode.pkl")
	}
	if !strings.Contains(string(src), "torch.reshape(v3, [3, 64, 49])") {
		t.Error("batch=3 did not reach the model code")
	}
}
