package runtime

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
)

func TestDevModels(t *testing.T) {
	files, _ := filepath.Glob("/tmp/deit/*tiny*.onnx")
	if len(files) == 0 {
		t.Skip()
	}
	for _, f := range files {
		g, err := onnx.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(g)
		if err != nil {
			t.Fatal(err)
		}
		npz, err := tensorio.Read(strings.TrimSuffix(f, ".onnx") + ".sample.npz")
		if err != nil {
			t.Fatal(err)
		}
		xa := npz["x"]
		shape := make([]int64, len(xa.Shape))
		for i, d := range xa.Shape {
			shape[i] = int64(d)
		}
		x := ir.F32Tensor(shape, xa.Data.([]float32))
		t0 := time.Now()
		out, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: x})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		el := time.Since(t0)
		y := out[g.Outputs[0].Name].F32()
		want := npz["y_torch"].Data.([]float32)
		var md float64
		for i := range want {
			md = math.Max(md, math.Abs(float64(y[i]-want[i])))
		}
		t.Logf("%s: max diff %.3g, %v", filepath.Base(f), md, el)
	}
}
