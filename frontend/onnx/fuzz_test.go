package onnx

import (
	"os"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

// FuzzDecode feeds arbitrary bytes to the frontend: it must return a graph
// that verifies, or an error, and never panic or allocate without bound.
func FuzzDecode(f *testing.F) {
	for _, p := range []string{"../../internal/onnxpb/testdata/tiny.onnx", "../../internal/ort/testdata/add.onnx"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("\x08\x08\x12\x04test"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Decode(b, "/nonexistent-pqvc-fuzz")
		if err != nil {
			// Whatever protobuf rejects, the error says where.
			if proto.Unmarshal(b, &onnxpb.ModelProto{}) != nil {
				c := locateCorruption(b, (&onnxpb.ModelProto{}).ProtoReflect().Descriptor())
				if c == nil || c.off < 0 || c.off > len(b) {
					t.Fatalf("corrupt protobuf not located (%v): %v", c, err)
				}
			}
			return
		}
		// The frontend infers every node's type as it converts, so a graph
		// it accepts must verify: a failure here is a check the loader
		// skipped (testdata/fuzz holds the corpus models as seeds).
		if err := ir.Verify(g); err != nil {
			t.Fatalf("Decode accepted a graph that does not verify: %v", err)
		}
		_ = g.String()
	})
}
