package runtime_test

import (
	"testing"

	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/testmodels"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// BenchmarkDeiTTiny times one 224×224 image through DeiT-tiny (timm style).
func BenchmarkDeiTTiny(b *testing.B) {
	path := testmodels.Require(b, testmodels.Spec{Size: "tiny", Style: "timm", Opset: 17, Batch: "static"})
	g, err := onnx.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	p, err := runtime.Compile(g)
	if err != nil {
		b.Fatal(err)
	}
	x := ir.MustTensor(ir.F32, 1, 3, 224, 224)
	in := map[string]*ir.Tensor{g.Inputs[0].Name: x}
	if _, err := p.Run(in); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := p.Run(in); err != nil {
			b.Fatal(err)
		}
	}
}
