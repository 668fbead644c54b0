package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
)

func TestScratchDeiT(t *testing.T) {
	files, _ := filepath.Glob("/tmp/deit/*tiny*.onnx")
	for _, f := range files {
		g, err := onnx.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Encode(g, Options{})
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		h, err := onnx.Decode(b, filepath.Dir(f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		a, c := g.String(), h.String()
		if a != c {
			os.WriteFile("/tmp/a.ir", []byte(a), 0o644)
			os.WriteFile("/tmp/c.ir", []byte(c), 0o644)
			t.Errorf("%s differs", f)
		}
		if err := ir.Verify(h); err != nil {
			t.Errorf("%v", err)
		}
		t.Log(f, len(b), strings.Count(a, "\n"))
	}
}
