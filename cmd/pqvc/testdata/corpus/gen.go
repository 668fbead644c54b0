//go:build ignore

// gen writes the bad-input corpus that testdata/script/bad_inputs_*.txtar
// throws at the CLI: small ONNX models built from internal/onnxpb types, each
// broken in one way, and malformed .npz files. Run it from the repository
// root after changing it:
//
//	go run ./cmd/pqvc/testdata/corpus/gen.go
//
// Every file is deterministic (no clocks, no random seeds), so a rerun
// leaves the committed files byte-identical.
package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/internal/tensorio"
)

const dir = "cmd/pqvc/testdata/corpus"

func main() {
	log.SetFlags(0)
	good := model(17, []*onnxpb.NodeProto{
		{Name: "mm", OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"h"}},
		{Name: "bias", OpType: "Add", Input: []string{"h", "b"}, Output: []string{"a"}},
		{Name: "act", OpType: "Relu", Input: []string{"a"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{f32("w", seq(16), 4, 4), f32("b", seq(4), 4)})
	goodBytes := marshal(good)
	write("good.onnx", goodBytes)

	// A file cut in half mid-field, and one with a tag byte flipped: both
	// must fail in the protobuf decoder, not later.
	write("truncated.onnx", goodBytes[:len(goodBytes)/2])
	write("bitflip.onnx", bitflip(goodBytes))

	write("cycle.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "a", OpType: "Add", Input: []string{"x", "c"}, Output: []string{"b"}},
		{Name: "r", OpType: "Relu", Input: []string{"b"}, Output: []string{"c"}},
		{Name: "out", OpType: "Identity", Input: []string{"c"}, Output: []string{"y"}},
	}, nil)))
	write("dangling.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "add", OpType: "Add", Input: []string{"x", "nowhere"}, Output: []string{"y"}},
	}, nil)))
	// The weight the MatMul reads was dropped from the initializers.
	write("missing_init.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "mm", OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{f32("b", seq(4), 4)})))
	// An initializer whose dims promise 16 values and whose data holds 3.
	write("short_init.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "mm", OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{f32("w", []float32{1, 2, 3}, 4, 4)})))
	write("external_missing.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "mm", OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{{Name: "w", Dims: []int64{4, 4}, DataType: int32(onnxpb.TensorProto_FLOAT),
		DataLocation: onnxpb.TensorProto_EXTERNAL,
		ExternalData: []*onnxpb.StringStringEntryProto{{Key: "location", Value: "w.bin"}}}})))
	write("external_escape.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "mm", OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{{Name: "w", Dims: []int64{4, 4}, DataType: int32(onnxpb.TensorProto_FLOAT),
		DataLocation: onnxpb.TensorProto_EXTERNAL,
		ExternalData: []*onnxpb.StringStringEntryProto{{Key: "location", Value: "../../etc/passwd"}}}})))

	// MatMul of a 3x4 input by a 5x6 weight.
	mm := model(17, []*onnxpb.NodeProto{
		{Name: "mm", OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{f32("w", seq(30), 5, 6)})
	mm.Graph.Input = []*onnxpb.ValueInfoProto{tensorInput("x", 3, 4)}
	mm.Graph.Output = []*onnxpb.ValueInfoProto{tensorInput("y", 3, 6)}
	write("shape_mismatch.onnx", marshal(mm))

	write("unsupported_op.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "frob", OpType: "Frobnicate", Input: []string{"x"}, Output: []string{"y"}},
	}, nil)))
	write("unsupported_domain.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "custom", OpType: "Relu", Domain: "org.example", Input: []string{"x"}, Output: []string{"y"}},
	}, nil)))
	write("opset7.onnx", marshal(model(7, []*onnxpb.NodeProto{
		{Name: "act", OpType: "Relu", Input: []string{"x"}, Output: []string{"y"}},
	}, nil)))
	write("opset99.onnx", marshal(model(99, []*onnxpb.NodeProto{
		{Name: "act", OpType: "Relu", Input: []string{"x"}, Output: []string{"y"}},
	}, nil)))

	// 2^40 x 2^40 floats: the element count overflows int64 bytes, and the
	// loader must refuse it before allocating anything.
	write("absurd_init.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "add", OpType: "Add", Input: []string{"x", "w"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{{Name: "w", Dims: []int64{1 << 40, 1 << 40}, DataType: int32(onnxpb.TensorProto_FLOAT)}})))
	ab := model(17, []*onnxpb.NodeProto{
		{Name: "act", OpType: "Relu", Input: []string{"x"}, Output: []string{"y"}},
	}, nil)
	ab.Graph.Input = []*onnxpb.ValueInfoProto{tensorInput("x", 1<<40, 1<<40, 1<<40)}
	write("absurd_input.onnx", marshal(ab))
	neg := model(17, []*onnxpb.NodeProto{{Name: "act", OpType: "Relu", Input: []string{"x"}, Output: []string{"y"}}}, nil)
	neg.Graph.Input = []*onnxpb.ValueInfoProto{tensorInput("x", "batch", -4)}
	write("negative_dim.onnx", marshal(neg))

	write("dup_init.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "add", OpType: "Add", Input: []string{"x", "w"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{f32("w", seq(4), 4), f32("w", seq(4), 4)})))
	write("no_output.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "act", OpType: "Relu", Input: []string{"x"}, Output: []string{"z"}},
	}, nil)))
	write("no_graph.onnx", marshal(&onnxpb.ModelProto{IrVersion: 8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}, ProducerName: "gen"}))
	write("bad_attr.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "sm", OpType: "Softmax", Input: []string{"x"}, Output: []string{"y"},
			Attribute: []*onnxpb.AttributeProto{{Name: "axis", Type: onnxpb.AttributeProto_INT, I: proto.Int64(7)}}},
	}, nil)))

	// LayerNormalization with int32 scale: the IR must refuse it at load,
	// not leave the kernel to meet int32 where it reads float32.
	write("layernorm_int_scale.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "ln", OpType: "LayerNormalization", Input: []string{"x", "s", "b"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{{Name: "s", Dims: []int64{4}, DataType: int32(onnxpb.TensorProto_INT32), Int32Data: []int32{1, 1, 1, 1}}, f32("b", seq(4), 4)})))
	// Expand to 2^40 x 4: a shape built at run time from a constant; the
	// element count must be refused before anything is allocated.
	write("absurd_expand.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "big", OpType: "Expand", Input: []string{"x", "shape"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{{Name: "shape", Dims: []int64{2}, DataType: int32(onnxpb.TensorProto_INT64), Int64Data: []int64{1 << 40, 4}}})))
	// Expand to 10^8 x batch x 4: 3 GiB of f32 at batch 2, within the
	// element bound and valid, but past a memory bound (the test sets
	// 1 GiB): running it must be refused, not left to Go's fatal
	// out-of-memory error.
	write("big_expand.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "big", OpType: "Expand", Input: []string{"x", "shape"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{{Name: "shape", Dims: []int64{3}, DataType: int32(onnxpb.TensorProto_INT64), Int64Data: []int64{100_000_000, 1, 4}}})))
	write("absurd_reshape.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "rs", OpType: "Reshape", Input: []string{"x", "shape"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{{Name: "shape", Dims: []int64{3}, DataType: int32(onnxpb.TensorProto_INT64), Int64Data: []int64{1 << 40, 1 << 40, -1}}})))

	// Non-finite weights: 2 NaN and 1 +Inf in w, 1 -Inf in b.
	w := seq(16)
	w[1], w[5], w[9] = float32(math.NaN()), float32(math.NaN()), float32(math.Inf(1))
	b := seq(4)
	b[2] = float32(math.Inf(-1))
	write("nonfinite.onnx", marshal(model(17, []*onnxpb.NodeProto{
		{Name: "mm", OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"h"}},
		{Name: "bias", OpType: "Add", Input: []string{"h", "b"}, Output: []string{"y"}},
	}, []*onnxpb.TensorProto{f32("w", w, 4, 4), f32("b", b, 4)})))

	npzFiles()
	for _, name := range []string{"good.onnx", "nonfinite.onnx"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			log.Fatal(err)
		}
		if _, err := onnx.Decode(b, dir); err != nil {
			log.Fatalf("%s should load: %v", name, err)
		}
	}
}

// npzFiles writes the malformed datasets. The shipped model's input is
// f32[batch,1,28,28]; the tiny models' is f32[batch,4].
func npzFiles() {
	arr := func(shape ...int) *tensorio.Array {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return &tensorio.Array{DType: "float32", Shape: shape, Data: make([]float32, n)}
	}
	var good bytes.Buffer
	must(writeNpz(&good, map[string]*tensorio.Array{"x": arr(2, 4)}))
	write("x4.npz", good.Bytes())
	var noX bytes.Buffer
	must(writeNpz(&noX, map[string]*tensorio.Array{"images": arr(2, 4), "labels": {DType: "int64", Shape: []int{2}, Data: []int64{0, 1}}}))
	write("no_x.npz", noX.Bytes())
	var wrong bytes.Buffer
	must(writeNpz(&wrong, map[string]*tensorio.Array{"x": arr(2, 3, 8, 8), "y": {DType: "int64", Shape: []int{2}, Data: []int64{0, 1}}}))
	write("wrong_shape.npz", wrong.Bytes())
	var i64 bytes.Buffer
	must(writeNpz(&i64, map[string]*tensorio.Array{"x": {DType: "int64", Shape: []int{2, 4}, Data: make([]int64, 8)}}))
	write("x_int64.npz", i64.Bytes())
	var badY bytes.Buffer
	must(writeNpz(&badY, map[string]*tensorio.Array{"x": arr(2, 1, 28, 28), "y": {DType: "int64", Shape: []int{3}, Data: []int64{0, 1, 2}}}))
	write("y_mismatch.npz", badY.Bytes())

	write("truncated.npz", good.Bytes()[:len(good.Bytes())*2/3])
	write("not_zip.npz", []byte("PK but not really a zip archive\n"))
	// A well-formed zip whose member x.npy has a garbage header.
	var hdr bytes.Buffer
	zw := zip.NewWriter(&hdr)
	f, err := zw.CreateHeader(&zip.FileHeader{Name: "x.npy", Method: zip.Store})
	must(err)
	_, err = f.Write([]byte("\x93NUMPY\x01\x00\x10\x00{'descr': <f4 }\n"))
	must(err)
	must(zw.Close())
	write("bad_member.npz", hdr.Bytes())
}

// writeNpz writes arrays through tensorio into a buffer (via a temp file:
// tensorio writes paths, atomically).
func writeNpz(w *bytes.Buffer, arrays map[string]*tensorio.Array) error {
	tmp, err := os.MkdirTemp("", "pqvc-gen-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p := filepath.Join(tmp, "a.npz")
	if err := tensorio.WriteNpz(p, arrays); err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	w.Write(b)
	return nil
}

// bitflip flips bits of the graph field's length prefix until the decoder
// rejects the file, so the fixture is a decode failure by construction.
func bitflip(b []byte) []byte {
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			c := bytes.Clone(b)
			c[i] ^= 1 << bit
			if i < 4 {
				continue // keep the first fields: the flip should be mid-file
			}
			var m onnxpb.ModelProto
			if err := proto.Unmarshal(c, &m); err != nil {
				return c
			}
		}
	}
	log.Fatal("no single bit flip breaks the model")
	return nil
}

func tensorInput(name string, dims ...any) *onnxpb.ValueInfoProto {
	var ds []*onnxpb.TensorShapeProto_Dimension
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			ds = append(ds, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			ds = append(ds, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT), Shape: &onnxpb.TensorShapeProto{Dim: ds}}}}}
}

func model(opset int64, nodes []*onnxpb.NodeProto, inits []*onnxpb.TensorProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:    8,
		ProducerName: "pqvc-corpus-gen",
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: "", Version: opset}},
		Graph: &onnxpb.GraphProto{
			Name:        "g",
			Node:        nodes,
			Initializer: inits,
			Input:       []*onnxpb.ValueInfoProto{tensorInput("x", "batch", 4)},
			Output:      []*onnxpb.ValueInfoProto{tensorInput("y", "batch", 4)},
		},
	}
}

func f32(name string, v []float32, dims ...int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: name, Dims: dims, DataType: int32(onnxpb.TensorProto_FLOAT), FloatData: v}
}

func seq(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i%7-3) / 4
	}
	return v
}

func marshal(m *onnxpb.ModelProto) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	must(err)
	return b
}

func write(name string, b []byte) {
	if len(b) > 50<<10 {
		log.Fatalf("%s: %d bytes, keep corpus files under 50 KB", name, len(b))
	}
	must(os.WriteFile(filepath.Join(dir, name), b, 0o644))
	fmt.Printf("%-24s %6d bytes\n", name, len(b))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
