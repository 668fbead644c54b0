package fuse_test

import (
	"testing"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/passes/fuse"
	"github.com/pqvc/pqvc/passes/quant"
	"github.com/pqvc/pqvc/runtime"
)

// TestQMatMul quantizes the shipped Fashion-MNIST DeiT (dynamic, and static
// lowered to MatMulInteger) and fuses the int8 MatMuls into ONNX Runtime's
// ops. Every MatMulInteger must go, each bias Add must be absorbed, and our
// runtime's logits must not change by a single bit: the fused kernels
// compute what the subgraph computed.
func TestQMatMul(t *testing.T) {
	calib, err := data.Load("../../assets/fmnist_calib.npz")
	if err != nil {
		t.Fatal(err)
	}
	x := calib.Batch(0, 16)
	for _, c := range []struct {
		name, recipe, op string
		bias             int // the fused op's bias argument
	}{
		{"dynamic", "canonicalize\nfuse attention=mha\nquantize int8 mode=dynamic", "com.microsoft.DynamicQuantizeMatMul", 4},
		{"dynamic_per_channel", "canonicalize\nquantize int8 mode=dynamic per_channel=true", "com.microsoft.DynamicQuantizeMatMul", 4},
		{"static_lowered", "canonicalize\ncalibrate minmax\nquantize int8 mode=static per_channel=true\nfold_qdq lower=true", "com.microsoft.MatMulIntegerToFloat", 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := loadCanon(t, "../../assets/deit_fmnist.onnx")
			rec, err := dsl.Parse("t.pqv", []byte("model \"m\"\n"+c.recipe+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := passes.Run(g, rec.Pipeline(), passes.Config{Verify: true, Calib: calib}); err != nil {
				t.Fatal(err)
			}
			before := logits(t, g, x)
			integer := ir.ComputeStats(g).Ops["MatMulInteger"]
			if integer == 0 {
				t.Fatal("quantize left no MatMulInteger")
			}
			st, err := fuse.Fuse(g, fuse.Options{Target: fuse.TargetORT, Patterns: []string{"qmatmul"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := ir.Verify(g); err != nil {
				t.Fatal(err)
			}
			ops := ir.ComputeStats(g).Ops
			if ops["MatMulInteger"] != 0 || ops[c.op] != integer {
				t.Errorf("%d MatMulInteger fused into %d %s; %d left (%s)", integer, ops[c.op], c.op, ops["MatMulInteger"], st)
			}
			biased := 0
			for _, v := range g.Values() {
				if v.Op == c.op && v.Arg(c.bias) != nil {
					biased++
				}
			}
			if biased == 0 {
				t.Errorf("no bias was absorbed (%s)", st)
			}
			if ops["QuantizeLinear"] != 0 && c.name != "static_lowered" {
				t.Errorf("%d run-time QuantizeLinear left after fusing dynamic MatMuls", ops["QuantizeLinear"])
			}
			same := func(what string) {
				t.Helper()
				after := logits(t, g, x)
				for i := range before {
					if before[i] != after[i] {
						t.Fatalf("%s: logit %d changed: %g → %g", what, i, before[i], after[i])
					}
				}
			}
			same("fused")
			// Backends other than ORT expand the contrib ops again.
			n, err := quant.ExpandContrib(g)
			if err != nil {
				t.Fatal(err)
			}
			if err := ir.Verify(g); err != nil {
				t.Fatal(err)
			}
			if ops := ir.ComputeStats(g).Ops; n != integer || ops[c.op] != 0 || ops["MatMulInteger"] != integer {
				t.Errorf("expanded %d of %d; %d %s and %d MatMulInteger after", n, integer, ops[c.op], c.op, ops["MatMulInteger"])
			}
			same("expanded")
		})
	}
}

// TestQMatMulONNXTarget: the contrib ops are for ONNX Runtime only.
func TestQMatMulONNXTarget(t *testing.T) {
	rules, err := fuse.Rules(fuse.Options{Target: fuse.TargetONNX, Attention: fuse.AttentionPacked, Gemm: fuse.GemmMatrix, Patterns: []string{"qmatmul"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 0 {
		t.Errorf("target=onnx has %d qmatmul rules", len(rules))
	}
}

func logits(t *testing.T, g *ir.Graph, x *ir.Tensor) []float32 {
	t.Helper()
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
