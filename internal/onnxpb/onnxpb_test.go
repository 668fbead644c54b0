package onnxpb

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ---------------------------------------------------------------------------
// helpers

func tensorType(elem TensorProto_DataType, dims ...any) *TypeProto {
	shape := &TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape.Dim = append(shape.Dim, &TensorShapeProto_Dimension{Value: &TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			shape.Dim = append(shape.Dim, &TensorShapeProto_Dimension{Value: &TensorShapeProto_Dimension_DimParam{DimParam: d}})
		default:
			panic("dim must be int or string")
		}
	}
	return &TypeProto{Value: &TypeProto_TensorType{TensorType: &TypeProto_Tensor{
		ElemType: int32(elem),
		Shape:    shape,
	}}}
}

func float32LE(vals ...float32) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// unknownFields reports every message in m (recursively) that carries fields
// our schema does not declare. Decoding an upstream-written file with no
// unknown fields is evidence that our field numbers cover what it uses.
func unknownFields(m protoreflect.Message, path string) []string {
	var out []string
	if len(m.GetUnknown()) > 0 {
		out = append(out, path)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		p := path + "." + string(fd.Name())
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				out = append(out, unknownFields(l.Get(i).Message(), p)...)
			}
		} else {
			out = append(out, unknownFields(v.Message(), p)...)
		}
		return true
	})
	return out
}

// pythonWithONNX returns a Python interpreter that can import onnx. The
// cross-checks against upstream are optional on developer machines but
// mandatory in CI, where a missing interpreter must not silently pass.
func pythonWithONNX(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"} // Debian's python3-onnx lives here
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		if err := exec.Command(py, "-c", "import onnx").Run(); err == nil {
			return py
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but no python3 with the onnx package among %v", candidates)
	}
	t.Skipf("no python3 with the onnx package among %v", candidates)
	return ""
}

func runPython(t *testing.T, py, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python failed: %v\n%s", err, stderr.String())
	}
	return out
}

// ---------------------------------------------------------------------------
// (a) Go -> bytes -> Go

func TestRoundTrip(t *testing.T) {
	body := &GraphProto{
		Name: "body",
		Node: []*NodeProto{{OpType: "Identity", Input: []string{"x"}, Output: []string{"y"}}},
	}
	m := &ModelProto{
		IrVersion:       int64(Version_IR_VERSION),
		ProducerName:    "pqvc",
		ProducerVersion: "test",
		ModelVersion:    3,
		OpsetImport: []*OperatorSetIdProto{
			{Domain: "", Version: 17},
			{Domain: "pqvc.local", Version: 1},
		},
		MetadataProps: []*StringStringEntryProto{{Key: "k", Value: "v"}},
		Graph: &GraphProto{
			Name:      "g",
			DocString: "doc",
			Node: []*NodeProto{{
				Name:   "n0",
				OpType: "Custom",
				Domain: "pqvc.local",
				Input:  []string{"X", "", "W"}, // "" = omitted optional input
				Output: []string{"Y"},
				Attribute: []*AttributeProto{
					{Name: "zero", Type: AttributeProto_INT, I: proto.Int64(0)},
					{Name: "alpha", Type: AttributeProto_FLOAT, F: proto.Float32(0.5)},
					{Name: "mode", Type: AttributeProto_STRING, S: []byte("")},
					{Name: "perm", Type: AttributeProto_INTS, Ints: []int64{0, 2, -1}},
					{Name: "scales", Type: AttributeProto_FLOATS, Floats: []float32{1, 2.5}},
					{Name: "names", Type: AttributeProto_STRINGS, Strings: [][]byte{[]byte("a"), []byte("b")}},
					{Name: "body", Type: AttributeProto_GRAPH, G: body},
					{Name: "tp", Type: AttributeProto_TYPE_PROTO, Tp: tensorType(TensorProto_INT64, 2)},
					{Name: "ref", Type: AttributeProto_INT, RefAttrName: "outer"},
				},
			}},
			Initializer: []*TensorProto{
				{Name: "W", Dims: []int64{2}, DataType: int32(TensorProto_FLOAT), RawData: float32LE(1, -2)},
				{Name: "I", Dims: []int64{3}, DataType: int32(TensorProto_INT64), Int64Data: []int64{1, 2, 3}},
				{
					Name: "E", Dims: []int64{1 << 20}, DataType: int32(TensorProto_BFLOAT16),
					DataLocation: TensorProto_EXTERNAL,
					ExternalData: []*StringStringEntryProto{{Key: "location", Value: "w.bin"}, {Key: "offset", Value: "4096"}},
				},
				{Name: "S", DataType: int32(TensorProto_FLOAT8E4M3FN), Int32Data: []int32{0x38}, Segment: &TensorProto_Segment{Begin: 0, End: 1}},
			},
			SparseInitializer: []*SparseTensorProto{{
				Dims:    []int64{4, 4},
				Values:  &TensorProto{Name: "sp", Dims: []int64{1}, DataType: int32(TensorProto_DOUBLE), DoubleData: []float64{7}},
				Indices: &TensorProto{Dims: []int64{1}, DataType: int32(TensorProto_INT64), Int64Data: []int64{5}},
			}},
			Input: []*ValueInfoProto{{Name: "X", Type: tensorType(TensorProto_FLOAT, "batch", 0, 224)}},
			Output: []*ValueInfoProto{{Name: "Y", Type: &TypeProto{
				Value: &TypeProto_SequenceType{SequenceType: &TypeProto_Sequence{ElemType: tensorType(TensorProto_UINT64)}},
			}}},
			ValueInfo: []*ValueInfoProto{
				{Name: "m", Type: &TypeProto{Value: &TypeProto_MapType{MapType: &TypeProto_Map{
					KeyType: int32(TensorProto_STRING), ValueType: tensorType(TensorProto_FLOAT),
				}}}},
				{Name: "o", Type: &TypeProto{Value: &TypeProto_OptionalType{OptionalType: &TypeProto_Optional{
					ElemType: tensorType(TensorProto_INT4, 8),
				}}}},
				{Name: "s", Type: &TypeProto{Value: &TypeProto_SparseTensorType{SparseTensorType: &TypeProto_SparseTensor{
					ElemType: int32(TensorProto_FLOAT),
				}}}},
			},
			QuantizationAnnotation: []*TensorAnnotation{{
				TensorName:                "X",
				QuantParameterTensorNames: []*StringStringEntryProto{{Key: "SCALE_TENSOR", Value: "X_scale"}},
			}},
		},
		TrainingInfo: []*TrainingInfoProto{{
			Algorithm:     &GraphProto{Name: "step"},
			UpdateBinding: []*StringStringEntryProto{{Key: "W", Value: "W_new"}},
		}},
		Functions: []*FunctionProto{{
			Name:           "Custom",
			Domain:         "pqvc.local",
			Input:          []string{"a"},
			Output:         []string{"b"},
			Attribute:      []string{"zero"},
			AttributeProto: []*AttributeProto{{Name: "alpha", Type: AttributeProto_FLOAT, F: proto.Float32(1)}},
			Node:           []*NodeProto{{OpType: "Identity", Input: []string{"a"}, Output: []string{"b"}}},
			OpsetImport:    []*OperatorSetIdProto{{Version: 17}},
		}},
	}

	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got ModelProto
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, &got) {
		t.Fatalf("round trip changed the model:\nwant %v\ngot  %v", m, &got)
	}

	// proto.Equal already covers this, but state the reason for `optional`
	// explicitly: zero-valued attribute values must survive as present.
	attrs := got.GetGraph().GetNode()[0].GetAttribute()
	if attrs[0].I == nil || attrs[0].GetI() != 0 {
		t.Errorf("INT attribute 0 lost its presence: %v", attrs[0])
	}
	if attrs[2].S == nil {
		t.Errorf("empty STRING attribute lost its presence: %v", attrs[2])
	}
	if attrs[8].I != nil {
		t.Errorf("ref attribute gained a value: %v", attrs[8])
	}
	// A dim_value of 0 is a real (empty) dimension, distinct from unknown.
	d := got.GetGraph().GetInput()[0].GetType().GetTensorType().GetShape().GetDim()[1]
	if _, ok := d.GetValue().(*TensorShapeProto_Dimension_DimValue); !ok {
		t.Errorf("dim_value 0 lost its oneof case: %v", d)
	}
}

// TestEnumValues pins a few format facts that are easy to get wrong.
func TestEnumValues(t *testing.T) {
	checks := []struct {
		name      string
		got, want int32
	}{
		{"BFLOAT16", int32(TensorProto_BFLOAT16), 16},
		{"FLOAT8E4M3FN", int32(TensorProto_FLOAT8E4M3FN), 17},
		{"FLOAT8E5M2FNUZ", int32(TensorProto_FLOAT8E5M2FNUZ), 20},
		{"INT4", int32(TensorProto_INT4), 22},
		{"SPARSE_TENSOR", int32(AttributeProto_SPARSE_TENSOR), 11},
		{"TYPE_PROTOS", int32(AttributeProto_TYPE_PROTOS), 14},
		{"EXTERNAL", int32(TensorProto_EXTERNAL), 1},
		{"IR_VERSION_2021_7_30", int32(Version_IR_VERSION_2021_7_30), 8},
		{"IR_VERSION", int32(Version_IR_VERSION), 9},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// ---------------------------------------------------------------------------
// (b) decode a file written by upstream onnx (testdata/make_tiny.py)

func TestDecodeTinyFixture(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "tiny.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var m ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if u := unknownFields(m.ProtoReflect(), "model"); len(u) > 0 {
		t.Errorf("fields unknown to our schema at %v", u)
	}

	if m.GetIrVersion() != 8 || m.GetProducerName() != "pqvc-testdata" {
		t.Errorf("ir_version=%d producer=%q", m.GetIrVersion(), m.GetProducerName())
	}
	if ops := m.GetOpsetImport(); len(ops) != 1 || ops[0].GetDomain() != "" || ops[0].GetVersion() != 17 {
		t.Errorf("opset_import = %v, want default domain v17", ops)
	}

	g := m.GetGraph()
	var opTypes []string
	for _, n := range g.GetNode() {
		opTypes = append(opTypes, n.GetOpType())
	}
	if !slices.Equal(opTypes, []string{"Conv", "Transpose"}) {
		t.Fatalf("op types = %v", opTypes)
	}
	conv, tr := g.GetNode()[0], g.GetNode()[1]
	if !slices.Equal(conv.GetInput(), []string{"X", "W", "B"}) || !slices.Equal(tr.GetOutput(), []string{"Y"}) {
		t.Errorf("wiring: conv in %v, transpose out %v", conv.GetInput(), tr.GetOutput())
	}
	wantInts := map[string][]int64{
		"kernel_shape": {2, 2},
		"strides":      {2, 2},
		"perm":         {0, 2, 3, 1},
	}
	seen := 0
	for _, a := range append(slices.Clone(conv.GetAttribute()), tr.GetAttribute()...) {
		want, ok := wantInts[a.GetName()]
		if !ok {
			t.Errorf("unexpected attribute %q", a.GetName())
			continue
		}
		seen++
		if a.GetType() != AttributeProto_INTS || !slices.Equal(a.GetInts(), want) {
			t.Errorf("attribute %s = %v %v, want INTS %v", a.GetName(), a.GetType(), a.GetInts(), want)
		}
	}
	if seen != len(wantInts) {
		t.Errorf("saw %d of %d attributes", seen, len(wantInts))
	}

	// Input X: [batch, 3, 4, 4] float, with "batch" symbolic.
	if len(g.GetInput()) != 1 || g.GetInput()[0].GetName() != "X" {
		t.Fatalf("inputs = %v", g.GetInput())
	}
	tt := g.GetInput()[0].GetType().GetTensorType()
	if TensorProto_DataType(tt.GetElemType()) != TensorProto_FLOAT {
		t.Errorf("X elem_type = %d", tt.GetElemType())
	}
	var dims []string
	for _, d := range tt.GetShape().GetDim() {
		switch v := d.GetValue().(type) {
		case *TensorShapeProto_Dimension_DimParam:
			dims = append(dims, v.DimParam)
		case *TensorShapeProto_Dimension_DimValue:
			dims = append(dims, strconv.FormatInt(v.DimValue, 10))
		default:
			dims = append(dims, "?")
		}
	}
	if got := strings.Join(dims, ","); got != "batch,3,4,4" {
		t.Errorf("X dims = %s, want batch,3,4,4", got)
	}

	inits := map[string]*TensorProto{}
	for _, in := range g.GetInitializer() {
		inits[in.GetName()] = in
	}
	// W: raw_data, little-endian float32, values i*0.5-3.
	w := inits["W"]
	if w == nil || !slices.Equal(w.GetDims(), []int64{2, 3, 2, 2}) || TensorProto_DataType(w.GetDataType()) != TensorProto_FLOAT {
		t.Fatalf("W = %v", w)
	}
	if len(w.GetFloatData()) != 0 || len(w.GetRawData()) != 24*4 {
		t.Fatalf("W payload: %d floats, %d raw bytes", len(w.GetFloatData()), len(w.GetRawData()))
	}
	for i := range 24 {
		got := math.Float32frombits(binary.LittleEndian.Uint32(w.GetRawData()[4*i:]))
		if want := float32(i)*0.5 - 3; got != want {
			t.Errorf("W[%d] = %v, want %v", i, got, want)
		}
	}
	// B: float_data.
	b := inits["B"]
	if b == nil || len(b.GetRawData()) != 0 || !slices.Equal(b.GetFloatData(), []float32{0.25, -1.5}) || !slices.Equal(b.GetDims(), []int64{2}) {
		t.Errorf("B = %v", b)
	}

	// Our re-encoding (packed, proto3) must decode to the same model.
	out, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	var again ModelProto
	if err := proto.Unmarshal(out, &again); err != nil || !proto.Equal(&m, &again) {
		t.Errorf("re-encode round trip failed: %v", err)
	}
}

// ---------------------------------------------------------------------------
// (c) a Go-written model must satisfy upstream onnx's checker

// checkScript runs the full checker (including strict shape inference) and
// reports what upstream decoded, so we also verify Go -> upstream decoding.
const checkScript = `
import json, sys
import onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
red = m.graph.node[1]
kd = [a for a in red.attribute if a.name == "keepdims"][0]
axes = [a for a in red.attribute if a.name == "axes"][0]
print(json.dumps({
    "ir_version": m.ir_version,
    "opset": [[o.domain, o.version] for o in m.opset_import],
    "ops": [n.op_type for n in m.graph.node],
    "keepdims_present": kd.HasField("i"),
    "keepdims": kd.i,
    "axes": list(axes.ints),
    "dim0": m.graph.input[0].type.tensor_type.shape.dim[0].dim_param,
    "scale": [float(x) for x in numpy_helper.to_array(m.graph.initializer[0]).ravel()],
}))
`

func TestCheckerAcceptsGoModel(t *testing.T) {
	py := pythonWithONNX(t)

	// Y = ReduceMean(X * S, axes=[0], keepdims=0). keepdims=0 is the point:
	// if its presence were dropped, upstream would default to keepdims=1 and
	// strict shape inference would reject the declared rank-1 output.
	m := &ModelProto{
		// IR 8 rather than Version_IR_VERSION: Debian's onnx 1.12 checker
		// rejects anything newer.
		IrVersion:    int64(Version_IR_VERSION_2021_7_30),
		ProducerName: "pqvc-test",
		OpsetImport:  []*OperatorSetIdProto{{Version: 17}},
		Graph: &GraphProto{
			Name: "reduce",
			Node: []*NodeProto{
				{Name: "scale", OpType: "Mul", Input: []string{"X", "S"}, Output: []string{"XS"}},
				{
					Name: "mean", OpType: "ReduceMean", Input: []string{"XS"}, Output: []string{"Y"},
					Attribute: []*AttributeProto{
						{Name: "axes", Type: AttributeProto_INTS, Ints: []int64{0}},
						{Name: "keepdims", Type: AttributeProto_INT, I: proto.Int64(0)},
					},
				},
			},
			Initializer: []*TensorProto{{
				Name: "S", Dims: []int64{3}, DataType: int32(TensorProto_FLOAT),
				RawData: float32LE(0.5, 1, -2),
			}},
			Input:  []*ValueInfoProto{{Name: "X", Type: tensorType(TensorProto_FLOAT, "batch", 3)}},
			Output: []*ValueInfoProto{{Name: "Y", Type: tensorType(TensorProto_FLOAT, 3)}},
		},
	}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "go_written.onnx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	var rep struct {
		IRVersion       int64     `json:"ir_version"`
		Opset           [][2]any  `json:"opset"`
		Ops             []string  `json:"ops"`
		KeepdimsPresent bool      `json:"keepdims_present"`
		Keepdims        int64     `json:"keepdims"`
		Axes            []int64   `json:"axes"`
		Dim0            string    `json:"dim0"`
		Scale           []float32 `json:"scale"`
	}
	if err := json.Unmarshal(runPython(t, py, checkScript, path), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.IRVersion != 8 || !slices.Equal(rep.Ops, []string{"Mul", "ReduceMean"}) {
		t.Errorf("upstream saw ir_version=%d ops=%v", rep.IRVersion, rep.Ops)
	}
	if len(rep.Opset) != 1 || rep.Opset[0][0] != "" || rep.Opset[0][1] != float64(17) {
		t.Errorf("upstream saw opset %v", rep.Opset)
	}
	if !rep.KeepdimsPresent || rep.Keepdims != 0 || !slices.Equal(rep.Axes, []int64{0}) {
		t.Errorf("upstream saw keepdims present=%v value=%d axes=%v", rep.KeepdimsPresent, rep.Keepdims, rep.Axes)
	}
	if rep.Dim0 != "batch" || !slices.Equal(rep.Scale, []float32{0.5, 1, -2}) {
		t.Errorf("upstream saw dim0=%q scale=%v", rep.Dim0, rep.Scale)
	}
}

// ---------------------------------------------------------------------------
// schema cross-check against the installed upstream descriptor

// descScript dumps every field (name, number, kind, label, type name) and
// every enum value of the upstream onnx descriptor as JSON.
const descScript = `
import json
import onnx
f = onnx.ModelProto.DESCRIPTOR.file
fields, enums = {}, {}
def enum(e):
    enums[e.full_name] = {v.name: v.number for v in e.values}
def msg(m):
    for x in m.fields:
        tn = (x.message_type or x.enum_type)
        fields[m.full_name + "." + x.name] = [x.number, x.type, x.label == x.LABEL_REPEATED, tn.full_name if tn else ""]
    for n in m.nested_types: msg(n)
    for e in m.enum_types: enum(e)
for m in f.message_types_by_name.values(): msg(m)
for e in f.enum_types_by_name.values(): enum(e)
print(json.dumps({"file": f.name, "fields": fields, "enums": enums}))
`

// upstreamOnly lists upstream names we deliberately leave out (ONNX-ML only).
var upstreamOnly = map[string]bool{
	"onnx.TypeProto.opaque_type":   true,
	"onnx.TypeProto.Opaque.domain": true,
	"onnx.TypeProto.Opaque.name":   true,
}

func TestSchemaMatchesUpstream(t *testing.T) {
	py := pythonWithONNX(t)
	var up struct {
		File   string                      `json:"file"`
		Fields map[string][4]any           `json:"fields"`
		Enums  map[string]map[string]int32 `json:"enums"`
	}
	if err := json.Unmarshal(runPython(t, py, descScript), &up); err != nil {
		t.Fatal(err)
	}
	t.Logf("comparing against upstream %s: %d fields, %d enums", up.File, len(up.Fields), len(up.Enums))

	ours := map[string]protoreflect.FieldDescriptor{}
	ourEnums := map[string]protoreflect.EnumDescriptor{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			ours[string(fd.FullName())] = fd
		}
		for i := 0; i < md.Messages().Len(); i++ {
			walk(md.Messages().Get(i))
		}
		for i := 0; i < md.Enums().Len(); i++ {
			ed := md.Enums().Get(i)
			ourEnums[string(ed.FullName())] = ed
		}
	}
	fd := File_internal_onnxpb_onnx_proto
	for i := 0; i < fd.Messages().Len(); i++ {
		walk(fd.Messages().Get(i))
	}
	for i := 0; i < fd.Enums().Len(); i++ {
		ourEnums[string(fd.Enums().Get(i).FullName())] = fd.Enums().Get(i)
	}

	for name, f := range up.Fields {
		if upstreamOnly[name] {
			continue
		}
		o, ok := ours[name]
		if !ok {
			t.Errorf("%s: missing from our schema", name)
			continue
		}
		num, kind, repeated, typeName := int32(f[0].(float64)), int32(f[1].(float64)), f[2].(bool), f[3].(string)
		if int32(o.Number()) != num {
			t.Errorf("%s: number %d, upstream %d", name, o.Number(), num)
		}
		if int32(o.Kind()) != kind {
			t.Errorf("%s: kind %v, upstream %d", name, o.Kind(), kind)
		}
		if o.IsList() != repeated {
			t.Errorf("%s: repeated=%v, upstream %v", name, o.IsList(), repeated)
		}
		var ourType string
		if o.Message() != nil {
			ourType = string(o.Message().FullName())
		} else if o.Enum() != nil {
			ourType = string(o.Enum().FullName())
		}
		if ourType != typeName {
			t.Errorf("%s: type %q, upstream %q", name, ourType, typeName)
		}
	}

	for name, vals := range up.Enums {
		ed, ok := ourEnums[name]
		if !ok {
			t.Errorf("enum %s: missing from our schema", name)
			continue
		}
		for v, num := range vals {
			if name == "onnx.Version" && v == "IR_VERSION" {
				continue // moving alias for "newest"; pinned by TestEnumValues
			}
			ev := ed.Values().ByName(protoreflect.Name(v))
			if ev == nil {
				t.Errorf("enum %s: value %s missing", name, v)
			} else if int32(ev.Number()) != num {
				t.Errorf("enum %s.%s = %d, upstream %d", name, v, ev.Number(), num)
			}
		}
	}
}
