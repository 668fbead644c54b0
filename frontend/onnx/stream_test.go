package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStreamingLoad: Load (which streams initializers from the file) and
// Decode (the whole file in memory) give the same graph, and on a
// truncated file Load falls back to Decode's error.
func TestStreamingLoad(t *testing.T) {
	for _, path := range []string{"../../assets/deit_fmnist.onnx", "../../assets/deit_fmnist_p7.onnx"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := readModel(f, int64(len(b)))
		f.Close()
		if err != nil {
			t.Fatalf("%s: the streaming reader gave up: %v", path, err)
		}
		if len(m.GetGraph().GetInitializer()) == 0 {
			t.Fatalf("%s: no initializers streamed", path)
		}
		streamed, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := Decode(b, filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := streamed.String(), whole.String(); a != b {
			t.Errorf("%s: streamed and whole-file graphs differ", path)
		}
		for _, cut := range []int{len(b) / 3, len(b) - 7} {
			p := filepath.Join(t.TempDir(), "cut.onnx")
			if err := os.WriteFile(p, b[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			_, lerr := Load(p)
			_, derr := Decode(b[:cut], "")
			if lerr == nil || derr == nil || !strings.HasSuffix(lerr.Error(), derr.Error()) {
				t.Errorf("truncated at %d: Load says %v, Decode says %v", cut, lerr, derr)
			}
		}
	}
}
