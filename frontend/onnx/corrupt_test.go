package onnx

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/internal/onnxpb"
)

// corruptModel is a small model whose node names and initializer layout the
// cases below cut into.
func corruptModel(t *testing.T) []byte {
	t.Helper()
	m := model(17, []*onnxpb.NodeProto{
		{Name: "first", OpType: "Add", Input: []string{"x", "w"}, Output: []string{"a"}},
		{Name: "second", OpType: "Relu", Input: []string{"a"}, Output: []string{"y"},
			Attribute: []*onnxpb.AttributeProto{{Name: "alpha", Type: onnxpb.AttributeProto_STRING, S: []byte("unused")}}},
	}, []*onnxpb.TensorProto{{Name: "w", DataType: int32(onnxpb.TensorProto_FLOAT), Dims: []int64{4}, RawData: make([]byte, 16)}})
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLocateCorruption(t *testing.T) {
	b := corruptModel(t)
	at := func(s string) int {
		i := bytes.Index(b, []byte(s))
		if i < 0 {
			t.Fatalf("%q not in the model", s)
		}
		return i
	}
	flip := func(i int) []byte {
		c := bytes.Clone(b)
		c[i] = 0xff
		return c
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		// Cut inside the second node's attribute value: the message names
		// the innermost field cut and the node it belongs to.
		{"cut in attribute", b[:at("unused")+3],
			`in graph.node[1] "second" (Relu).attribute[0] "alpha".s: its length is 6 bytes but only 3 follow`},
		// Cut inside the raw data of the initializer.
		{"cut in weights", b[:bytes.Index(b, make([]byte, 16))+6],
			`in graph.initializer[0] "w".raw_data: its length is 16 bytes but only 6 follow`},
		// A bad UTF-8 byte in an op type names the node by its name.
		{"bad op_type", flip(at("Relu")),
			fmt.Sprintf(`at byte %d, in graph.node[1] "second".op_type: string is not valid UTF-8`, at("Relu"))},
		{"bad model field", flip(0), "at byte 0: "},
	} {
		c := locateCorruption(tc.data, (&onnxpb.ModelProto{}).ProtoReflect().Descriptor())
		if c == nil {
			t.Errorf("%s: not located", tc.name)
			continue
		}
		if !strings.Contains(c.String(), tc.want) {
			t.Errorf("%s: %s, want it to contain %s", tc.name, c, tc.want)
		}
		if _, err := Decode(tc.data, t.TempDir()); err == nil || !strings.Contains(err.Error(), c.String()) {
			t.Errorf("%s: Decode error %v does not carry the location %s", tc.name, err, c)
		}
	}
}

// TestLocateEveryCorruption holds the locator to protobuf's decoder: for
// every truncation and many random damages of a real model that the
// decoder rejects, the locator names a place inside the file.
func TestLocateEveryCorruption(t *testing.T) {
	b := corruptModel(t)
	md := (&onnxpb.ModelProto{}).ProtoReflect().Descriptor()
	check := func(what string, d []byte) {
		if proto.Unmarshal(d, &onnxpb.ModelProto{}) == nil {
			return
		}
		c := locateCorruption(d, md)
		if c == nil {
			t.Errorf("%s: the decoder rejects it but the locator finds nothing", what)
			return
		}
		if c.off < 0 || c.off > len(d) {
			t.Errorf("%s: offset %d outside the %d bytes", what, c.off, len(d))
		}
	}
	for n := range len(b) {
		check(fmt.Sprintf("cut at %d", n), b[:n])
	}
	r := rand.New(rand.NewPCG(5, 8))
	for range 3000 {
		d := bytes.Clone(b)
		k := r.IntN(len(d))
		d[k] = byte(r.Uint32())
		check(fmt.Sprintf("byte %d set to %#x", k, d[k]), d)
	}
}
