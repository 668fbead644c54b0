package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

// weirdInts are values a corrupt or hand-edited model puts in dims, axes,
// perms and shape constants.
var weirdInts = []int64{-1 << 62, -7, -2, -1, 0, 1, 3, 7, 1000, 1 << 31, 1 << 40, 1<<63 - 1}

// mutateGraph applies one semantic edit to a decoded model: what a buggy
// exporter or a hand edit produces, as opposed to byte corruption (which
// mostly stops in the protobuf decoder).
func mutateGraph(r *rand.Rand, m *onnxpb.ModelProto) string {
	g := m.Graph
	nodes := g.Node
	n := nodes[r.IntN(len(nodes))]
	weird := weirdInts[r.IntN(len(weirdInts))]
	switch r.IntN(9) {
	case 0:
		other := nodes[r.IntN(len(nodes))].OpType
		desc := fmt.Sprintf("node %q op %s -> %s", n.Name, n.OpType, other)
		n.OpType = other
		return desc
	case 1:
		if len(n.Input) == 0 {
			return "no-op"
		}
		i := r.IntN(len(n.Input))
		src := nodes[r.IntN(len(nodes))]
		if len(src.Output) == 0 {
			return "no-op"
		}
		desc := fmt.Sprintf("node %q input %d %q -> %q", n.Name, i, n.Input[i], src.Output[0])
		n.Input[i] = src.Output[0] // may be a wrong type, or a cycle
		return desc
	case 2:
		i := r.IntN(len(nodes))
		desc := fmt.Sprintf("delete node %q", nodes[i].Name)
		g.Node = append(nodes[:i:i], nodes[i+1:]...)
		return desc
	case 3:
		if len(g.Initializer) == 0 {
			return "no-op"
		}
		i := r.IntN(len(g.Initializer))
		desc := fmt.Sprintf("delete initializer %q", g.Initializer[i].Name)
		g.Initializer = append(g.Initializer[:i:i], g.Initializer[i+1:]...)
		return desc
	case 4:
		t := g.Initializer[r.IntN(len(g.Initializer))]
		if len(t.Dims) == 0 {
			return "no-op"
		}
		d := r.IntN(len(t.Dims))
		desc := fmt.Sprintf("initializer %q dim %d %d -> %d", t.Name, d, t.Dims[d], weird)
		t.Dims[d] = weird
		return desc
	case 5:
		if len(n.Attribute) == 0 {
			return "no-op"
		}
		a := n.Attribute[r.IntN(len(n.Attribute))]
		switch {
		case a.I != nil:
			a.I = proto.Int64(weird)
		case len(a.Ints) > 0:
			a.Ints[r.IntN(len(a.Ints))] = weird
		case a.F != nil:
			a.F = proto.Float32(float32(weird))
		case a.T != nil && a.T.DataType == int32(onnxpb.TensorProto_INT64) && len(a.T.RawData) >= 8:
			k := r.IntN(len(a.T.RawData) / 8)
			binary.LittleEndian.PutUint64(a.T.RawData[8*k:], uint64(weird))
		case a.T != nil && len(a.T.Dims) > 0:
			a.T.Dims[0] = weird
		default:
			a.Type = onnxpb.AttributeProto_AttributeType(r.IntN(16))
		}
		return fmt.Sprintf("node %q attribute %s -> %d", n.Name, a.Name, weird)
	case 6:
		in := g.Input[0].Type.GetTensorType().GetShape()
		if in == nil || len(in.Dim) == 0 {
			return "no-op"
		}
		d := r.IntN(len(in.Dim))
		in.Dim[d].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: weird}
		return fmt.Sprintf("input dim %d -> %d", d, weird)
	case 7:
		m.OpsetImport[0].Version = int64(r.IntN(25))
		return fmt.Sprintf("opset -> %d", m.OpsetImport[0].Version)
	default:
		t := g.Initializer[r.IntN(len(g.Initializer))]
		t.DataType = int32(r.IntN(17))
		return fmt.Sprintf("initializer %q dtype -> %d", t.Name, t.DataType)
	}
}

// TestMutatedModelGraphs edits the shipped DeiT's graph (ops, inputs,
// initializers, dims, attributes, opset) and runs inspect, convert, run and
// a recipe on the result: each must succeed or fail with one line, never
// panic, and a failed command writes nothing.
func TestMutatedModelGraphs(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the shipped model a few hundred times")
	}
	orig, err := os.ReadFile("../../assets/deit_fmnist.onnx")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	input := filepath.Join(dir, "x.npz")
	x := &ir.Tensor{DType: ir.F32, Shape: []int64{1, 1, 28, 28}, Data: make([]float32, 28*28)}
	if err := data.WriteTensors(input, map[string]*ir.Tensor{"x": x}); err != nil {
		t.Fatal(err)
	}
	// PQVC_MUTATE_SEED and PQVC_MUTATE_N explore beyond the fixed seed.
	seed, n := uint64(5), 250
	if v, err := strconv.ParseUint(os.Getenv("PQVC_MUTATE_SEED"), 10, 64); err == nil {
		seed = v
	}
	if v, err := strconv.Atoi(os.Getenv("PQVC_MUTATE_N")); err == nil && v > 0 {
		n = v
	}
	// Loaded graphs also go through the passes a mobile recipe runs.
	recipe := filepath.Join(dir, "r.pqv")
	src := "model \"m.onnx\"\ncanonicalize\nfuse attention=mha\nquantize int8 mode=dynamic\nemit onnx \"q.onnx\"\n"
	if err := os.WriteFile(recipe, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(4, seed))
	loaded := 0
	for i := range n {
		var m onnxpb.ModelProto
		if err := proto.Unmarshal(orig, &m); err != nil {
			t.Fatal(err)
		}
		how := mutateGraph(r, &m)
		if r.IntN(2) == 0 {
			how += "; " + mutateGraph(r, &m)
		}
		b, err := proto.Marshal(&m)
		if err != nil {
			continue // a mutation protobuf itself refuses to encode
		}
		p := filepath.Join(dir, fmt.Sprintf("g%d.onnx", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("graph %d (%s)", i, how)
		out := filepath.Join(dir, fmt.Sprintf("c%d.onnx", i))
		if checkRun(t, what, []string{"inspect", p}, "") == 0 {
			loaded++
			y := filepath.Join(dir, fmt.Sprintf("y%d.npy", i))
			checkRun(t, what, []string{"run", p, "--input", input, "--output", y}, y)
			os.Remove(y)
			o := filepath.Join(dir, fmt.Sprintf("out%d", i))
			checkRun(t, what, []string{recipe, "--model", p, "-o", o, "-q", "--latency=false"}, o)
			os.RemoveAll(o)
		}
		checkRun(t, what, []string{"convert", p, out}, out)
		os.Remove(p)
		os.Remove(out)
	}
	if loaded == n {
		t.Errorf("every mutated graph loaded; the mutations do not reach the checks")
	}
}
