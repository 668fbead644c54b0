package onnx

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	frontend "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

// roundTrip encodes g, decodes it with the frontend and returns the result.
func roundTrip(t *testing.T, g *ir.Graph, opts Options) (*ir.Graph, []byte) {
	t.Helper()
	b, err := Encode(g, opts)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	h, err := frontend.Decode(b, t.TempDir())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := ir.Verify(h); err != nil {
		t.Fatalf("verify after round trip: %v", err)
	}
	return h, b
}

// samePrint fails the test with the first differing line if the graphs'
// textual forms differ (identical prints mean identical graphs).
func samePrint(t *testing.T, want, got *ir.Graph) {
	t.Helper()
	w, g := strings.Split(want.String(), "\n"), strings.Split(got.String(), "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			t.Fatalf("round trip differs at line %d:\nwant %s\n got %s", i+1, a, b)
		}
	}
}

func decodeProto(t *testing.T, b []byte) *onnxpb.ModelProto {
	t.Helper()
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func findNode(m *onnxpb.ModelProto, output string) *onnxpb.NodeProto {
	for _, n := range m.GetGraph().GetNode() {
		if slices.Contains(n.GetOutput(), output) {
			return n
		}
	}
	return nil
}

func attrOf(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func TestRoundTripAllOps(t *testing.T) {
	for _, opset := range []int{13, 17, 18, 20, 21} {
		g := allOpsGraph(t, opset)
		h, b := roundTrip(t, g, Options{})
		// The frontend keeps a reduction's axes initializer as a constant
		// nobody uses once it has moved the axes into the attribute.
		h.RemoveDead()
		samePrint(t, g, h)
		if h.Opset != opset {
			t.Errorf("opset %d written as %d", opset, h.Opset)
		}
		m := decodeProto(t, b)
		if want := irVersion(opset); m.GetIrVersion() != want {
			t.Errorf("opset %d: IR version %d, want %d", opset, m.GetIrVersion(), want)
		}
	}
}

func TestOpsetForms(t *testing.T) {
	for _, opset := range []int{13, 17, 18} {
		m := decodeProto(t, mustEncode(t, allOpsGraph(t, opset), Options{}))
		mean, sum := findNode(m, "r.ReduceMean"), findNode(m, "r.sum")
		if opset < 18 {
			if a := attrOf(mean, "axes"); a == nil || !slices.Equal(a.GetInts(), []int64{-1}) || len(mean.GetInput()) != 1 {
				t.Errorf("opset %d: ReduceMean %v, want axes=[-1] as an attribute", opset, mean)
			}
		} else if attrOf(mean, "axes") != nil || len(mean.GetInput()) != 2 {
			t.Errorf("opset %d: ReduceMean %v, want axes as an input", opset, mean)
		}
		if attrOf(sum, "axes") != nil || len(sum.GetInput()) != 2 {
			t.Errorf("opset %d: ReduceSum %v, want axes as an input", opset, sum)
		}
		if opset < 18 && attrOf(findNode(m, "r.ReduceMax"), "noop_with_empty_axes") != nil {
			t.Errorf("opset %d: noop_with_empty_axes on ReduceMax, which lacks it", opset)
		}
		if all := findNode(m, "r.all"); len(all.GetInput()) != 1 || attrOf(all, "axes") != nil {
			t.Errorf("opset %d: reduction over all axes got axes: %v", opset, all)
		}
		cast := attrOf(findNode(m, "cast.f16"), "to")
		if cast.GetType() != onnxpb.AttributeProto_INT || cast.GetI() != int64(onnxpb.TensorProto_FLOAT16) {
			t.Errorf("opset %d: Cast to = %v, want INT %d", opset, cast, onnxpb.TensorProto_FLOAT16)
		}
		clip := findNode(m, "u.clip_hi")
		if !slices.Equal(clip.GetInput(), []string{"u.clip", "", "clip.max2"}) {
			t.Errorf("Clip with omitted min has inputs %q", clip.GetInput())
		}
	}
}

func mustEncode(t *testing.T, g *ir.Graph, opts Options) []byte {
	t.Helper()
	b, err := Encode(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeterministic(t *testing.T) {
	g := allOpsGraph(t, 20)
	a := mustEncode(t, g, Options{ValueInfo: true})
	b := mustEncode(t, g.Clone(), Options{ValueInfo: true})
	if !bytes.Equal(a, b) {
		t.Fatal("two encodings of the same graph differ")
	}
}

func TestChooseOpset(t *testing.T) {
	small := func(opset int, op string, attrs ir.Attrs) *ir.Graph {
		g := ir.NewGraph("g")
		g.Opset = opset
		x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(2, 3)))
		b := &builder{t: t, g: g}
		var y *ir.Value
		switch op {
		case "LayerNormalization":
			y = b.op(op, "y", attrs, x, b.f32("gamma", []int64{3}))
		case "Reshape":
			y = b.op(op, "y", attrs, x, b.i64("shape", 3, 2))
		default:
			y = b.op(op, "y", attrs, x)
		}
		g.SetOutput("y", y)
		return g
	}
	for _, c := range []struct {
		g     *ir.Graph
		opset int // requested
		want  int // written; 0: an error containing err
		err   string
	}{
		{g: small(11, "Relu", nil), want: 13},
		{g: small(13, "Relu", nil), want: 13},
		{g: small(18, "Relu", nil), want: 18},
		{g: small(13, "LayerNormalization", nil), want: 17},
		{g: small(17, "Gelu", nil), want: 20},
		{g: small(13, "Reshape", ir.Attrs{"allowzero": int64(1)}), want: 14},
		{g: small(13, "Reshape", ir.Attrs{"allowzero": int64(0)}), want: 13},
		{g: small(13, "Shape", ir.Attrs{"end": int64(0)}), want: 15},
		{g: small(17, "Relu", nil), opset: 19, want: 19},
		{g: small(17, "Gelu", nil), opset: 17, err: `Gelu "y" (#2): Gelu needs opset 20`},
		{g: small(13, "Shape", ir.Attrs{"start": int64(1)}), opset: 13, err: "Shape with start=1 needs opset 15"},
		{g: small(17, "Relu", nil), opset: 12, err: "cannot write opset 12"},
		{g: small(17, "Relu", nil), opset: 22, err: "cannot write opset 22"},
		{g: small(22, "Relu", nil), err: "the graph needs opset 22"},
	} {
		b, err := Encode(c.g, Options{Opset: c.opset})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s at %d: error %v, want %q", c.g.Outputs[0].Value, c.opset, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.g.Outputs[0].Value, err)
			continue
		}
		m := decodeProto(t, b)
		if got := m.GetOpsetImport()[0].GetVersion(); got != int64(c.want) {
			t.Errorf("%s (graph opset %d, asked %d): wrote opset %d, want %d", c.g.Outputs[0].Value, c.g.Opset, c.opset, got, c.want)
		}
		if n := m.GetGraph().GetNode()[0]; c.want < 14 && attrOf(n, "allowzero") != nil {
			t.Errorf("allowzero=0 written at opset %d, which lacks it", c.want)
		}
	}
}

func TestEveryIROpHasAnONNXForm(t *testing.T) {
	// An op added to the IR needs a line in opSince (or a reason it cannot be
	// written, which Encode then reports).
	for _, op := range ir.OpNames() {
		if _, ok := opSince[op]; !ok && op != ir.OpInput && op != ir.OpConst {
			t.Errorf("IR op %s is not in the backend's op table", op)
		}
	}
}

func TestNames(t *testing.T) {
	g := ir.NewGraph("names")
	b := &builder{t: t, g: g}
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.Shape{ir.Sym("n"), ir.Static(3)}))
	c := b.f32("c", []int64{3})
	a1 := b.op("Add", "dup", nil, x, c)
	a2 := b.op("Mul", "dup", nil, a1, c) // same name as a1
	anon := b.op("Relu", "", nil, a2)
	clash := b.op("Neg", "out", nil, anon) // named like an output it is not
	g.SetOutput("out", anon)               // unnamed value: takes the output name
	g.SetOutput("out2", anon)              // second name for it: Identity
	g.SetOutput("x", x)                    // an input, under its own name
	g.SetOutput("x_copy", x)               // an input, renamed: Identity
	g.SetOutput("c", c)                    // a constant under its own name: Constant node
	g.SetOutput("c_copy", c)               // a constant renamed: Identity
	g.SetOutput("neg", clash)
	h, bs := roundTrip(t, g, Options{})
	m := decodeProto(t, bs)
	var outs, names []string
	for _, n := range m.GetGraph().GetNode() {
		outs = append(outs, n.GetOutput()...)
		names = append(names, n.GetName())
	}
	for _, in := range m.GetGraph().GetInitializer() {
		outs = append(outs, in.GetName())
	}
	want := []string{"c", "dup", "dup_1", "out", "neg", "out2", "x_copy", "c_copy"}
	if !slices.Equal(outs, want) {
		t.Errorf("tensor names %q, want %q", outs, want)
	}
	if !slices.Equal(names, outs[:len(names)]) {
		t.Errorf("node names %q, want the output names", names)
	}
	if n := findNode(m, "c"); n.GetOpType() != "Constant" {
		t.Errorf("constant output is %v, want a Constant node", n)
	}
	for _, o := range []string{"out2", "x_copy", "c_copy"} {
		if n := findNode(m, o); n.GetOpType() != "Identity" {
			t.Errorf("output %s comes from %v, want Identity", o, n)
		}
	}
	var gotOuts []string
	for _, o := range h.Outputs {
		gotOuts = append(gotOuts, o.Name)
	}
	if !slices.Equal(gotOuts, []string{"out", "out2", "x", "x_copy", "c", "c_copy", "neg"}) {
		t.Errorf("outputs read back %q", gotOuts)
	}
	if h.Outputs[2].Value != h.Inputs[0] || h.Outputs[3].Value != h.Inputs[0] || h.Outputs[0].Value != h.Outputs[1].Value {
		t.Errorf("outputs do not share values as they did:\n%s", h)
	}
}

func TestIdentity(t *testing.T) {
	// The IR's Identity op is written as such (the frontend then reads it
	// as an alias, so it does not survive a round trip).
	g := ir.NewGraph("id")
	b := &builder{t: t, g: g}
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(2)))
	g.SetOutput("y", b.op("Identity", "y", nil, b.op("Relu", "r", nil, x)))
	m := decodeProto(t, mustEncode(t, g, Options{}))
	if n := findNode(m, "y"); n.GetOpType() != "Identity" || !slices.Equal(n.GetInput(), []string{"r"}) {
		t.Errorf("Identity written as %v", n)
	}
}

func TestErrors(t *testing.T) {
	base := func() (*ir.Graph, *builder, *ir.Value) {
		g := ir.NewGraph("e")
		x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(2, 3)))
		return g, &builder{t: t, g: g}, x
	}
	cases := map[string]func() *ir.Graph{
		`Const "w" (#2): constant has no data`: func() *ir.Graph {
			g, b, x := base()
			w := g.AddConst("w", &ir.Tensor{DType: ir.F32, Shape: []int64{3}}) // opaque, as parsed from a digest
			g.SetOutput("y", b.op("Add", "y", nil, x, w))
			return g
		},
		`FusedThing "y" (#2): op FusedThing has no ONNX equivalent`: func() *ir.Graph {
			g, _, x := base()
			g.SetOutput("y", g.AddTyped("FusedThing", "y", x.Type, nil, x))
			return g
		},
		`ReduceMax "y" (#2): ReduceMax with noop_with_empty_axes=1 and no axes needs opset 18`: func() *ir.Graph {
			g, b, x := base()
			g.Opset = 17
			g.SetOutput("y", b.op("ReduceMax", "y", ir.Attrs{"noop_with_empty_axes": int64(1)}, x))
			return g
		},
		`two graph outputs are called "y"`: func() *ir.Graph {
			g, b, x := base()
			y := b.op("Relu", "y", nil, x)
			g.Outputs = []ir.Output{{Name: "y", Value: y}, {Name: "y", Value: x}}
			return g
		},
		`output "x" (Relu "y" (#2)) has the name of a graph input`: func() *ir.Graph {
			g, b, x := base()
			g.SetOutput("x", b.op("Relu", "y", nil, x))
			return g
		},
		`graph input Input #1 has no name`: func() *ir.Graph {
			g := ir.NewGraph("e")
			x := g.AddInput("", ir.TensorType(ir.F32, ir.StaticShape(2)))
			g.SetOutput("y", x)
			return g
		},
		`external data needs a file`: nil,
	}
	for want, mk := range cases {
		var err error
		if mk == nil {
			g, _, x := base()
			g.SetOutput("y", x)
			_, err = Encode(g, Options{ExternalDataThreshold: 1})
		} else {
			_, err = Encode(mk(), Options{})
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one containing %q", err, want)
		}
	}
}

func TestValueInfoAndMetadata(t *testing.T) {
	g := ir.NewGraph("")
	g.Meta = map[string]string{"producer_name": "exporter", "producer_version": "1.0", "z": "last", "a": "first"}
	b := &builder{t: t, g: g}
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.Shape{ir.Sym("batch"), ir.Static(0), ir.Unknown, ir.Static(4)}))
	g.SetOutput("y", b.op("Relu", "y", nil, b.op("Relu", "r", nil, x)))
	m := decodeProto(t, mustEncode(t, g, Options{ValueInfo: true}))
	dims := m.GetGraph().GetInput()[0].GetType().GetTensorType().GetShape().GetDim()
	if len(dims) != 4 || dims[0].GetDimParam() != "batch" || dims[1].GetValue() == nil || dims[1].GetDimValue() != 0 ||
		dims[2].GetValue() != nil || dims[3].GetDimValue() != 4 {
		t.Errorf("input dims %v, want batch, 0, anonymous, 4", dims)
	}
	if vi := m.GetGraph().GetValueInfo(); len(vi) != 1 || vi[0].GetName() != "r" {
		t.Errorf("value_info %v, want just r", vi)
	}
	if m.GetGraph().GetName() == "" || m.GetProducerName() != "exporter" || m.GetProducerVersion() != "1.0" {
		t.Errorf("graph name %q, producer %q", m.GetGraph().GetName(), m.GetProducerName())
	}
	var keys []string
	for _, kv := range m.GetMetadataProps() {
		keys = append(keys, kv.GetKey())
	}
	if !slices.Equal(keys, []string{"a", "z"}) {
		t.Errorf("metadata keys %q, want [a z]", keys)
	}
	m = decodeProto(t, mustEncode(t, g, Options{ProducerName: "pqvc", ProducerVersion: "0.1"}))
	if m.GetProducerName() != "pqvc" || m.GetProducerVersion() != "0.1" {
		t.Errorf("producer %q %q, want pqvc 0.1", m.GetProducerName(), m.GetProducerVersion())
	}
}
