package ptl

import (
	"archive/zip"
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/pqvc/pqvc/ir"
)

// The expected bytes are what CPython's pickletools documents for each
// opcode (protocol 2, no memo).
func TestPickleEncoding(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{pyNone{}, "8002" + "4e" + "2e"},
		{true, "8002" + "88" + "2e"},
		{7, "8002" + "4b07" + "2e"},
		{300, "8002" + "4d2c01" + "2e"},
		{-1, "8002" + "4affffffff" + "2e"},
		{int64(1) << 40, "8002" + "8a08" + "0000000000010000" + "2e"},
		{1.5, "8002" + "47" + "3ff8000000000000" + "2e"},
		{"ab", "8002" + "5802000000" + "6162" + "2e"},
		{pyTuple{}, "8002" + "29" + "2e"},
		{pyTuple{1, 2}, "8002" + "4b014b02" + "86" + "2e"},
		{pyTuple{1, 2, 3, 4}, "8002" + "28" + "4b014b024b034b04" + "74" + "2e"},
		{pyList{1}, "8002" + "5d" + "28" + "4b01" + "65" + "2e"},
		{pyGlobal{"m", "n"}, "8002" + "63" + hex.EncodeToString([]byte("m\nn\n")) + "2e"},
	} {
		b, err := pickle(c.v)
		if err != nil {
			t.Fatalf("%#v: %v", c.v, err)
		}
		if got := hex.EncodeToString(b); got != c.want {
			t.Errorf("%#v: got %s, want %s", c.v, got, c.want)
		}
	}
	if _, err := pickle(struct{}{}); err == nil {
		t.Error("pickling an unsupported type did not fail")
	}
}

// TestArchiveLayout checks the records torch looks for and that tensor data
// starts on a 64-byte boundary, without needing torch.
func TestArchiveLayout(t *testing.T) {
	g := ir.NewGraph("t")
	x := g.AddInput("x", ir.Type{DType: ir.F32, Shape: ir.Shape{ir.Sym("batch"), ir.Static(3)}})
	w := g.AddConst("w", ir.F32Tensor([]int64{3, 2}, []float32{1, 2, 3, 4, 5, 6}))
	y, err := g.Add("MatMul", "y", nil, x, w)
	if err != nil {
		t.Fatal(err)
	}
	g.SetOutput("y", y)
	data, err := Encode(g, Options{Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range z.File {
		seen[f.Name] = true
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if off%recordAlign != 0 {
			t.Errorf("%s: data at offset %d, not %d-aligned", f.Name, off, recordAlign)
		}
	}
	for _, name := range []string{"data.pkl", "code/__torch__.py", "constants.pkl", "constants/0.storage", "bytecode.pkl", ".data/version"} {
		if !seen[archiveDir+name] {
			t.Errorf("archive lacks %s (has %v)", name, seen)
		}
	}
	if _, err := Encode(g, Options{Format: "onnx"}); err == nil {
		t.Error("unknown format accepted")
	}
}
