package onnx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pqvc/pqvc/ir"
)

func TestDevLoadAll(t *testing.T) {
	files, _ := filepath.Glob("/tmp/deit/*.onnx")
	if len(files) == 0 {
		t.Skip()
	}
	for _, f := range files {
		g, err := Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if err := ir.Verify(g); err != nil {
			t.Errorf("%s: verify: %v", f, err)
		}
		if os.Getenv("DUMP") != "" && filepath.Base(f) == os.Getenv("DUMP") {
			t.Log(g.String())
		}
		t.Logf("%s: %d values, out %v", filepath.Base(f), g.Len(), g.Outputs[0].Value.Type)
	}
}
