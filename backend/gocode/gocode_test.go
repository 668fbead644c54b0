// Copyright 2026 The pqvc Authors.

package gocode_test

import (
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/backend"
	"github.com/pqvc/pqvc/backend/gocode"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/builtin"
)

func loadAsset(t *testing.T, name string) *ir.Graph {
	t.Helper()
	g, err := onnx.Load(filepath.Join("..", "..", "assets", name))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// recipe runs a recipe's passes (no model line needed) over g.
func recipe(t *testing.T, g *ir.Graph, src string) {
	t.Helper()
	rec, err := dsl.Parse("test.pqv", []byte("model \"unused.onnx\"\n"+src), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg passes.Config
	if strings.Contains(src, "calib") || strings.Contains(src, "importance") {
		t.Fatal("recipe needs data")
	}
	if _, err := passes.Run(g, rec.Pipeline(), cfg); err != nil {
		t.Fatal(err)
	}
}

// goTool runs the go command in dir, offline, and returns its output.
func goTool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	gobin := filepath.Join(goruntime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// emitAndTest emits g as its own module and runs go vet and the generated
// test, which compares the package's outputs with pqvc's runtime.
func emitAndTest(t *testing.T, g *ir.Graph, opts map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if opts == nil {
		opts = map[string]string{}
	}
	opts["module"] = "example.com/m"
	before := g.String()
	var err error
	if opts["nofuse"] != "" {
		err = gocode.Emit(dir, g, gocode.Options{Module: opts["module"], Batch: 1, NoFuse: true})
	} else {
		err = backend.Lookup("go").Emit(dir, g, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	if g.String() != before {
		t.Fatal("emit go changed the caller's graph")
	}
	goTool(t, dir, "vet", "./...")
	out := goTool(t, dir, "test", "-count=1", "-v", ".")
	if !strings.Contains(out, "PASS") {
		t.Fatalf("generated test did not pass:\n%s", out)
	}
	return dir
}

func TestShippedFP32(t *testing.T) {
	g := loadAsset(t, "deit_fmnist.onnx")
	// As loaded: the unfused lowerings (batched MatMul, Transpose,
	// Softmax, Erf, Gather, Expand, Concat, Slice).
	dir := emitAndTest(t, g, map[string]string{"nofuse": "1"})
	src, err := os.ReadFile(filepath.Join(dir, "model.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"package model\n", "kernels.SgemmPacked", "gort.BatchedMatMul", "gort.Softmax", "gort.Conv2D"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("model.go lacks %q", want)
		}
	}
	// Default: the backend fuses its copy (MultiHeadAttention, Gelu).
	dir = emitAndTest(t, g, nil)
	if src, err = os.ReadFile(filepath.Join(dir, "model.go")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gort.MHA", "gort.OpGelu", "gort.LayerNormFast"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("fused model.go lacks %q", want)
		}
	}
}

const fusedRecipe = "canonicalize\nprune mlp ratio=0.25\nfuse attention=mha\n"

func TestPrunedFused(t *testing.T) {
	g := loadAsset(t, "deit_fmnist.onnx")
	recipe(t, g, fusedRecipe)
	ops := map[string]bool{}
	for _, v := range g.Values() {
		ops[v.Op] = true
	}
	if !ops[ir.MSDomain+".MultiHeadAttention"] || !ops["LayerNormalization"] {
		t.Fatalf("recipe did not fuse attention; ops %v", ops)
	}
	emitAndTest(t, g, map[string]string{"package": "fused", "batch": "2"})
}

func TestInt8Dynamic(t *testing.T) {
	g := loadAsset(t, "deit_fmnist.onnx")
	recipe(t, g, fusedRecipe+"quantize int8 mode=dynamic\n")
	dir := emitAndTest(t, g, nil)
	src, err := os.ReadFile(filepath.Join(dir, "model.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kernels.GemmU8S8Packed", "kernels.PackBS8", "gort.Rescale"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("model.go does not call %s", want)
		}
	}
}

func TestInt8StaticQDQ(t *testing.T) {
	g := loadAsset(t, "deit_fmnist.onnx")
	calib, err := data.Load(filepath.Join("..", "..", "assets", "fmnist_calib.npz"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dsl.Parse("test.pqv", []byte("model \"unused.onnx\"\ncanonicalize\nfuse attention=mha\ncalibrate\nquantize int8 mode=static\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Run(g, rec.Pipeline(), passes.Config{Calib: calib}); err != nil {
		t.Fatal(err)
	}
	dir := emitAndTest(t, g, nil)
	src, err := os.ReadFile(filepath.Join(dir, "model.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "gort.QuantizeU8") && !strings.Contains(string(src), "gort.QuantizeS8") {
		t.Errorf("model.go has no QuantizeLinear")
	}
}

func TestFolderSafety(t *testing.T) {
	g := loadAsset(t, "deit_fmnist.onnx")
	be := backend.Lookup("go")
	if be == nil {
		t.Fatal(`backend "go" is not registered`)
	}
	if err := be.Emit(filepath.Join(t.TempDir(), "m"), g, map[string]string{"pakage": "x"}); err == nil || !strings.Contains(err.Error(), "pakage") {
		t.Errorf("unknown option: err = %v", err)
	}
	if err := be.Emit(filepath.Join(t.TempDir(), "m"), g, map[string]string{"batch": "0"}); err == nil {
		t.Errorf("batch=0 accepted")
	}
	// A folder someone else wrote is never replaced.
	foreign := filepath.Join(t.TempDir(), "foreign")
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(foreign, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := be.Emit(foreign, g, map[string]string{"module": "example.com/m"}); err == nil {
		t.Errorf("emit replaced a folder it did not write")
	}
	if b, err := os.ReadFile(filepath.Join(foreign, "keep.txt")); err != nil || string(b) != "mine" {
		t.Errorf("foreign folder changed: %q, %v", b, err)
	}
	// Our own folder is replaced whole; no temporary folders are left.
	parent := t.TempDir()
	dir := filepath.Join(parent, "deit-fmnist")
	for i := 0; i < 2; i++ {
		if err := be.Emit(dir, g, map[string]string{"module": "example.com/m"}); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(parent)
	if err != nil || len(ents) != 1 {
		t.Errorf("parent holds %v (%v), want only the package folder", ents, err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "model.go"))
	if err != nil || !strings.Contains(string(src), "package deit_fmnist\n") {
		t.Errorf("package name not derived from the folder name (%v)", err)
	}
	// Without module= the folder needs a go.mod above it.
	if err := be.Emit(filepath.Join(t.TempDir(), "m"), g, nil); err == nil || !strings.Contains(err.Error(), "go.mod") {
		t.Errorf("no module: err = %v", err)
	}
}

func TestUnsupportedOp(t *testing.T) {
	g := ir.NewGraph("t")
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(1, 4)))
	y, err := g.Add("HardSigmoid", "hs", nil, x)
	if err != nil {
		t.Fatal(err)
	}
	g.SetOutput("y", y)
	err = gocode.Emit(filepath.Join(t.TempDir(), "m"), g, gocode.Options{Module: "example.com/m"})
	if err == nil || !strings.Contains(err.Error(), "HardSigmoid") || !strings.Contains(err.Error(), "hs") {
		t.Errorf("err = %v, want one naming the node and op", err)
	}
}

// TestRecipeEmitLine runs an emit line as the CLI does: the recipe names
// the format "go" and its options reach the backend as text.
func TestRecipeEmitLine(t *testing.T) {
	rec, err := dsl.Parse("r.pqv", []byte("model \"m.onnx\"\nemit go \"deit_go\" module=\"example.com/deit\" batch=2 package=deit\n"), backend.Names())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Emits) != 1 || rec.Emits[0].Format != "go" {
		t.Fatalf("emits = %+v", rec.Emits)
	}
	opts := map[string]string{}
	for _, o := range rec.Emits[0].Options {
		opts[o.Name] = o.Value.Text
	}
	dir := filepath.Join(t.TempDir(), rec.Emits[0].Path)
	if err := backend.Lookup("go").Emit(dir, loadAsset(t, "deit_fmnist.onnx"), opts); err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module example.com/deit\n") {
		t.Errorf("go.mod = %q, %v", mod, err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "model.go"))
	if err != nil || !strings.Contains(string(src), "package deit\n") || !strings.Contains(string(src), "const Batch = 2") ||
		!strings.Contains(string(src), `"example.com/deit/internal/kernels"`) {
		t.Errorf("model.go does not follow the options (%v)", err)
	}
}

// TestInt8FusedForORT: a recipe that fused its int8 MatMuls into ONNX
// Runtime's DynamicQuantizeMatMul / MatMulIntegerToFloat (the last fuse in
// examples/deit_mobile.pqv) still emits, through the int8 GEMM.
func TestInt8FusedForORT(t *testing.T) {
	calib, err := data.Load(filepath.Join("..", "..", "assets", "fmnist_calib.npz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tail := range []string{
		"quantize int8 mode=dynamic\nfuse\n",
		"calibrate\nquantize int8 mode=static per_channel=true\nfold_qdq lower=true\nfuse\n",
	} {
		g := loadAsset(t, "deit_fmnist.onnx")
		rec, err := dsl.Parse("test.pqv", []byte("model \"unused.onnx\"\n"+fusedRecipe+tail), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := passes.Run(g, rec.Pipeline(), passes.Config{Calib: calib, Verify: true}); err != nil {
			t.Fatal(err)
		}
		if ir.ComputeStats(g).Ops["MatMulInteger"] != 0 {
			t.Fatalf("%q left MatMulInteger unfused", tail)
		}
		dir := emitAndTest(t, g, nil)
		src, err := os.ReadFile(filepath.Join(dir, "model.go"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), "kernels.GemmU8S8Packed") {
			t.Errorf("%q: model.go does not call the int8 GEMM", tail)
		}
	}
}
