package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

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
		IrVersion:   8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: opset}},
		Graph: &onnxpb.GraphProto{
			Name:        "g",
			Node:        nodes,
			Initializer: inits,
			Input:       []*onnxpb.ValueInfoProto{tensorInput("x", "batch", 4)},
			Output:      []*onnxpb.ValueInfoProto{tensorInput("y", "batch", 4)},
		},
	}
}

func decode(t *testing.T, m *onnxpb.ModelProto, dir string) (*ir.Graph, error) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return Decode(b, dir)
}

func TestErrorsNameThePlace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		m     *onnxpb.ModelProto
		wants []string
	}{
		{"unsupported op", model(17, []*onnxpb.NodeProto{{Name: "n1", OpType: "Frobnicate", Input: []string{"x"}, Output: []string{"y"}}}, nil),
			[]string{`node "n1"`, "Frobnicate", "opset 17", "not supported"}},
		{"dangling input", model(17, []*onnxpb.NodeProto{{Name: "add", OpType: "Add", Input: []string{"x", "nowhere"}, Output: []string{"y"}}}, nil),
			[]string{`node "add" (Add)`, `"nowhere"`, "not defined"}},
		{"cycle", model(17, []*onnxpb.NodeProto{
			{Name: "a", OpType: "Add", Input: []string{"x", "c"}, Output: []string{"b"}},
			{Name: "b", OpType: "Relu", Input: []string{"b"}, Output: []string{"c"}},
			{Name: "o", OpType: "Identity", Input: []string{"c"}, Output: []string{"y"}},
		}, nil), []string{"cycle"}},
		{"old opset", model(7, []*onnxpb.NodeProto{{OpType: "Relu", Input: []string{"x"}, Output: []string{"y"}}}, nil),
			[]string{"opset 7 is not supported"}},
		{"shape mismatch", model(17, []*onnxpb.NodeProto{{Name: "mm", OpType: "MatMul", Input: []string{"x", "w2"}, Output: []string{"y"}}},
			[]*onnxpb.TensorProto{{Name: "w2", Dims: []int64{3, 4}, DataType: int32(onnxpb.TensorProto_FLOAT), FloatData: make([]float32, 12)}}),
			[]string{`node "mm" (MatMul)`, "inner dims differ"}},
		{"short initializer", model(17, []*onnxpb.NodeProto{{OpType: "Add", Input: []string{"x", "w"}, Output: []string{"y"}}},
			[]*onnxpb.TensorProto{{Name: "w", Dims: []int64{5}, DataType: int32(onnxpb.TensorProto_FLOAT), FloatData: []float32{1}}}),
			[]string{`initializer "w"`, "has 1 values"}},
		{"absurd dims", model(17, []*onnxpb.NodeProto{{OpType: "Add", Input: []string{"x", "w"}, Output: []string{"y"}}},
			[]*onnxpb.TensorProto{{Name: "w", Dims: []int64{1 << 40, 1 << 40}, DataType: int32(onnxpb.TensorProto_FLOAT)}}),
			[]string{`initializer "w"`, "more than"}},
		{"missing external data", model(17, []*onnxpb.NodeProto{{OpType: "Add", Input: []string{"x", "w"}, Output: []string{"y"}}},
			[]*onnxpb.TensorProto{{Name: "w", Dims: []int64{4}, DataType: int32(onnxpb.TensorProto_FLOAT), DataLocation: onnxpb.TensorProto_EXTERNAL,
				ExternalData: []*onnxpb.StringStringEntryProto{{Key: "location", Value: "w.bin"}}}}),
			[]string{`initializer "w"`, "w.bin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, tc.m, t.TempDir())
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestExternalDataAndOpsetForms(t *testing.T) {
	dir := t.TempDir()
	raw := make([]byte, 16+16)
	copy(raw[16:], []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64}) // 1,2,3,4 at offset 16
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	m := model(11, []*onnxpb.NodeProto{
		{Name: "add", OpType: "Add", Input: []string{"x", "w"}, Output: []string{"s"}},
		{Name: "uns", OpType: "Unsqueeze", Input: []string{"s"}, Output: []string{"u"},
			Attribute: []*onnxpb.AttributeProto{{Name: "axes", Type: onnxpb.AttributeProto_INTS, Ints: []int64{0}}}},
		{Name: "sq", OpType: "Squeeze", Input: []string{"u"}, Output: []string{"q"},
			Attribute: []*onnxpb.AttributeProto{{Name: "axes", Type: onnxpb.AttributeProto_INTS, Ints: []int64{0}}}},
		{Name: "split", OpType: "Split", Input: []string{"q"}, Output: []string{"a", "b"},
			Attribute: []*onnxpb.AttributeProto{{Name: "axis", Type: onnxpb.AttributeProto_INT, I: proto.Int64(1)}, {Name: "split", Type: onnxpb.AttributeProto_INTS, Ints: []int64{1, 3}}}},
		{Name: "cat", OpType: "Concat", Input: []string{"b", "a"}, Output: []string{"y"},
			Attribute: []*onnxpb.AttributeProto{{Name: "axis", Type: onnxpb.AttributeProto_INT, I: proto.Int64(1)}}},
	}, []*onnxpb.TensorProto{{Name: "w", Dims: []int64{4}, DataType: int32(onnxpb.TensorProto_FLOAT), DataLocation: onnxpb.TensorProto_EXTERNAL,
		ExternalData: []*onnxpb.StringStringEntryProto{{Key: "location", Value: "w.bin"}, {Key: "offset", Value: "16"}, {Key: "length", Value: "16"}}}})
	g, err := decode(t, m, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(g); err != nil {
		t.Fatal(err)
	}
	w := g.Find("w")
	if got := w.Const.F32(); got[0] != 1 || got[3] != 4 {
		t.Fatalf("external data read %v", got)
	}
	text := g.String()
	for _, want := range []string{"Unsqueeze %", "Slice %", `: f32[batch,1] "a"`, `: f32[batch,3] "b"`, `output "y"`} {
		if !strings.Contains(text, want) {
			t.Errorf("IR lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Split") {
		t.Errorf("Split should be lowered to Slices:\n%s", text)
	}
}
