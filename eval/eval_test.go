package eval

import (
	"testing"

	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/builtin"
)

// TestBatchCoupled: dynamic int8 couples the images of a batch (one
// quantization range per tensor), fp32 and static int8 do not.
func TestBatchCoupled(t *testing.T) {
	g, err := onnx.Load("../assets/deit_fmnist.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if BatchCoupled(g) {
		t.Error("the fp32 model is reported batch-coupled")
	}
	for _, recipe := range []string{"quantize int8 mode=dynamic", "quantize int8 mode=dynamic\nfuse"} {
		q := g.Clone()
		rec, err := dsl.Parse("t.pqv", []byte("model \"m\"\ncanonicalize\n"+recipe+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := passes.Run(q, rec.Pipeline(), passes.Config{}); err != nil {
			t.Fatal(err)
		}
		if !BatchCoupled(q) {
			t.Errorf("%q: not reported batch-coupled", recipe)
		}
	}
}
