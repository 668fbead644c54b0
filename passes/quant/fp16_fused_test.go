package quant_test

import (
	"testing"

	"github.com/pqvc/pqvc/data"
	frontend "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/canon"
	"github.com/pqvc/pqvc/runtime"
)

// TestFP16AfterFuse converts a graph fused for ONNX Runtime to fp16. ORT's
// CPU contrib kernels take float only, so every com.microsoft op must keep
// f32 inputs and outputs, and the graph must still run and agree with fp32.
func TestFP16AfterFuse(t *testing.T) {
	g, err := frontend.Load("../../assets/deit_fmnist.onnx")
	if err != nil {
		t.Fatal(err)
	}
	calib, err := data.Load("../../assets/fmnist_calib.npz")
	if err != nil {
		t.Fatal(err)
	}
	x := calib.Batch(0, 8)
	run := func(g *ir.Graph) []float32 {
		p, err := runtime.Compile(g)
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: x})
		if err != nil {
			t.Fatal(err)
		}
		return out[g.Outputs[0].Name].F32()
	}
	want := run(g)
	pl, err := parsePipeline("canonicalize\nfuse\nquantize fp16")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Run(g, pl, passes.Config{Verify: true}); err != nil {
		t.Fatal(err)
	}
	contrib := 0
	for _, v := range g.Values() {
		if d, _ := ir.SplitDomain(v.Op); d != "" {
			contrib++
			for _, a := range v.Args() {
				if a != nil && a.Type.DType == ir.F16 {
					t.Errorf("%s %s takes an f16 argument %s", v.Op, v.Name, a.Name)
				}
			}
		}
	}
	if contrib == 0 {
		t.Fatal("fuse left no com.microsoft op to check")
	}
	got := run(g)
	for i := range want {
		if d := got[i] - want[i]; d > 0.05 || d < -0.05 {
			t.Fatalf("logit %d: fp16 %g, fp32 %g", i, got[i], want[i])
		}
	}
}
