package onnx

import (
	"bytes"
	"errors"
	"github.com/pqvc/pqvc/internal/testmodels"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	frontend "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/ir"
)

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func opaqueGraph() *ir.Graph {
	g := ir.NewGraph("bad")
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(3)))
	w := g.AddConst("w", &ir.Tensor{DType: ir.F32, Shape: []int64{3}})
	y, _ := g.Add("Add", "y", nil, x, w)
	g.SetOutput("y", y)
	return g
}

func TestWriteAtomic(t *testing.T) {
	g := allOpsGraph(t, 17)
	want := mustEncode(t, g, Options{})

	t.Run("new file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.onnx")
		if err := Write(path, g, Options{}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if !bytes.Equal(got, want) {
			t.Error("Write and Encode disagree")
		}
		if st, _ := os.Stat(path); st.Mode().Perm()&0o711 != 0o600 {
			t.Errorf("mode %v, want rw for the owner and no x bits (0666 less the umask)", st.Mode().Perm())
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"m.onnx"}) {
			t.Errorf("folder holds %q, want just m.onnx", names)
		}
	})

	t.Run("keeps mode", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "m.onnx")
		if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Write(path, g, Options{}); err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want the old file's 0600", st.Mode().Perm())
		}
	})

	t.Run("encode error", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.onnx")
		os.WriteFile(path, []byte("old model"), 0o644)
		err := Write(path, opaqueGraph(), Options{})
		if err == nil || !strings.Contains(err.Error(), `Const "w"`) || !strings.HasPrefix(err.Error(), path) {
			t.Errorf("error %v, want one naming the file and the constant", err)
		}
		if got, _ := os.ReadFile(path); string(got) != "old model" {
			t.Errorf("existing file now holds %.20q", got)
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"m.onnx"}) {
			t.Errorf("folder holds %q", names)
		}
	})

	t.Run("failure before rename", func(t *testing.T) {
		// Both files are complete when the hook fails; neither may replace
		// the existing pair and no temporary file may stay.
		dir := t.TempDir()
		path := filepath.Join(dir, "m.onnx")
		os.WriteFile(path, []byte("old model"), 0o644)
		os.WriteFile(path+".data", []byte("old data"), 0o644)
		testHookBeforeRename = func() error { return errors.New("disk on fire") }
		defer func() { testHookBeforeRename = nil }()
		err := Write(path, g, Options{ExternalDataThreshold: 16})
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("error %v, want the hook's", err)
		}
		if got, _ := os.ReadFile(path); string(got) != "old model" {
			t.Errorf("model now holds %.20q", got)
		}
		if got, _ := os.ReadFile(path + ".data"); string(got) != "old data" {
			t.Errorf("data now holds %.20q", got)
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"m.onnx", "m.onnx.data"}) {
			t.Errorf("folder holds %q", names)
		}
	})

	t.Run("target is a folder", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.onnx")
		os.Mkdir(path, 0o755)
		if err := Write(path, g, Options{}); err == nil {
			t.Error("writing over a folder succeeded")
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"m.onnx"}) {
			t.Errorf("folder holds %q", names)
		}
	})

	t.Run("missing folder", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "m.onnx")
		if err := Write(path, g, Options{}); err == nil || !strings.HasPrefix(err.Error(), path) {
			t.Errorf("error %v, want one naming %s", err, path)
		}
	})

	t.Run("read-only folder", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into read-only folders; the cases above cover failed writes")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "m.onnx")
		os.WriteFile(path, []byte("old model"), 0o644)
		os.Chmod(dir, 0o555)
		defer os.Chmod(dir, 0o755)
		if err := Write(path, g, Options{}); err == nil {
			t.Error("writing into a read-only folder succeeded")
		}
		if got, _ := os.ReadFile(path); string(got) != "old model" {
			t.Errorf("model now holds %.20q", got)
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"m.onnx"}) {
			t.Errorf("folder holds %q", names)
		}
	})

	t.Run("negative threshold", func(t *testing.T) {
		if err := Write(filepath.Join(t.TempDir(), "m.onnx"), g, Options{ExternalDataThreshold: -1}); err == nil {
			t.Error("negative threshold accepted")
		}
	})
}

// externalInits returns the model's external initializers' offsets and
// lengths, checking that they name the given location.
func externalInits(t *testing.T, path, location string) (offsets, lengths []int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range decodeProto(t, b).GetGraph().GetInitializer() {
		if in.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			continue
		}
		kv := map[string]string{}
		for _, e := range in.GetExternalData() {
			kv[e.GetKey()] = e.GetValue()
		}
		if kv["location"] != location || len(in.GetRawData()) != 0 {
			t.Errorf("initializer %s: external data %v", in.GetName(), kv)
		}
		off, _ := strconv.ParseInt(kv["offset"], 10, 64)
		n, _ := strconv.ParseInt(kv["length"], 10, 64)
		offsets, lengths = append(offsets, off), append(lengths, n)
	}
	return offsets, lengths
}

func TestExternalData(t *testing.T) {
	g := allOpsGraph(t, 17)
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	const threshold = 64
	if err := Write(path, g, Options{ExternalDataThreshold: threshold}); err != nil {
		t.Fatal(err)
	}
	offsets, lengths := externalInits(t, path, "m.onnx.data")
	if len(offsets) < 3 {
		t.Fatalf("%d external tensors, want the graph's few large ones", len(offsets))
	}
	end := int64(0)
	for i, off := range offsets {
		if off%dataAlign != 0 || off < end || lengths[i] < threshold {
			t.Errorf("tensor %d at offset %d, length %d (previous ends at %d)", i, off, lengths[i], end)
		}
		end = off + lengths[i]
	}
	if st, err := os.Stat(path + ".data"); err != nil || st.Size() != end {
		t.Errorf("data file: %v, size %d, want %d", err, st.Size(), end)
	}
	h, err := frontend.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	h.RemoveDead()
	samePrint(t, g, h)
	t.Run("checker", func(t *testing.T) {
		requireChecker(t)
		runChecker(t, path)
	})
}

// TestExternalDataDeiT writes a real model with external data and requires
// ONNX Runtime to compute the same logits from it as from the original.
func TestExternalDataDeiT(t *testing.T) {
	orig := testmodels.Require(t, testmodels.Spec{Size: "tiny", Style: "timm", Opset: 17, Batch: "dynamic"})
	g, err := frontend.Load(orig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "deit.onnx")
	if err := Write(path, g, Options{ExternalDataThreshold: 1024}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() > 1<<20 {
		t.Errorf("model file: %v, %d bytes; the weights should be outside", err, st.Size())
	}
	h, err := frontend.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	samePrint(t, g, h)
	t.Run("ort", func(t *testing.T) {
		r := ort.NewTestRunner(t)
		compareORT(t, r, orig, path, strings.TrimSuffix(orig, ".onnx")+".sample.npz", g.Inputs[0].Name)
	})
}

func TestExternalDataWhenTooLarge(t *testing.T) {
	// Pretend the protobuf limit is 4 KB: Encode must refuse the model and
	// Write must externalize the tensors of 1 KiB and more on its own.
	defer func(old int) { maxInline = old }(maxInline)
	maxInline = 4000
	g := ir.NewGraph("big")
	b := &builder{t: t, g: g}
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(1, 1024)))
	w := b.f32("w", []int64{1024, 2})
	g.SetOutput("y", b.op("MatMul", "y", nil, b.op("Add", "a", nil, x, b.f32("small", []int64{1024})), w))
	if _, err := Encode(g, Options{}); err == nil || !strings.Contains(err.Error(), "use Write") {
		t.Errorf("Encode of an oversized model: %v", err)
	}
	path := filepath.Join(t.TempDir(), "big.onnx")
	if err := Write(path, g, Options{}); err != nil {
		t.Fatal(err)
	}
	if offsets, lengths := externalInits(t, path, "big.onnx.data"); !slices.Equal(offsets, []int64{0, 4096}) || !slices.Equal(lengths, []int64{4096, 8192}) {
		t.Errorf("external tensors at %v, lengths %v", offsets, lengths)
	}
	h, err := frontend.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	samePrint(t, g, h)
}
