// Package onnx reads ONNX models into the IR.
//
// It accepts the ops the DeiT/ViT exporters of PyTorch, timm and Hugging Face
// emit at opsets 11 to 20 and translates older opsets' forms (attributes
// that later became inputs, and the reverse) into the IR's opset-17
// semantics. Split becomes one Slice per output and Dropout/Identity become
// aliases, so the IR has single-result values only. Anything unsupported is
// an error that names the node, the op and the opset. The frontend does not
// optimise: that is the passes' job.
package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/internal/onnxconv"
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

// MinOpset and MaxOpset bound the default-domain opsets the frontend reads.
const (
	MinOpset = 11
	MaxOpset = 21
)

// Load reads an ONNX file. External data files are looked up next to it.
func Load(path string) (*ir.Graph, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory, not an ONNX file", path)
	}
	// Large models stream (stream.go): peak memory is about the decoded
	// weights, not the file plus its weights. Anything the streaming reader
	// does not expect falls back to reading the whole file, whose errors
	// name what is wrong.
	if f, err := os.Open(path); err == nil && st.Size() > 0 {
		m, err := readModel(f, st.Size())
		f.Close()
		if err == nil {
			g, err := FromProto(m, filepath.Dir(path))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return g, nil
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	g, err := Decode(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Decode reads a serialized ModelProto; dir is where external data lives.
func Decode(data []byte, dir string) (*ir.Graph, error) {
	if len(data) == 0 {
		return nil, errors.New("not an ONNX model: file is empty")
	}
	var m onnxpb.ModelProto
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &m); err != nil {
		if c := locateCorruption(data, m.ProtoReflect().Descriptor()); c != nil {
			return nil, fmt.Errorf("not a valid ONNX model (truncated or corrupt protobuf) %s", c)
		}
		return nil, fmt.Errorf("not a valid ONNX model (truncated or corrupt protobuf): %v", shortProtoErr(err))
	}
	return FromProto(&m, dir)
}

// shortProtoErr keeps protobuf's message but drops its "proto:" noise.
func shortProtoErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "proto: ")
	s = strings.ReplaceAll(s, "\u00a0", " ")
	return s
}

// FromProto converts a decoded ModelProto.
func FromProto(m *onnxpb.ModelProto, dir string) (*ir.Graph, error) {
	if m.GetGraph() == nil {
		return nil, errors.New("not an ONNX model: it has no graph")
	}
	opset := -1
	for _, o := range m.GetOpsetImport() {
		switch o.GetDomain() {
		case "", "ai.onnx":
			opset = int(o.GetVersion())
		}
	}
	if opset < 0 {
		if len(m.GetOpsetImport()) == 0 && m.GetIrVersion() < 3 {
			opset = 1
		} else if len(m.GetOpsetImport()) == 0 {
			return nil, errors.New("model imports no opset")
		}
	}
	if opset >= 0 && (opset < MinOpset || opset > MaxOpset) {
		return nil, fmt.Errorf("default-domain opset %d is not supported (pqvc reads opsets %d to %d)", opset, MinOpset, MaxOpset)
	}
	c := &converter{opset: opset, dir: dir, vals: map[string]*ir.Value{}}
	g, err := c.graph(m.GetGraph())
	if err != nil {
		return nil, err
	}
	for _, kv := range m.GetMetadataProps() {
		if g.Meta == nil {
			g.Meta = map[string]string{}
		}
		g.Meta[kv.GetKey()] = kv.GetValue()
	}
	for k, v := range map[string]string{"producer_name": m.GetProducerName(), "producer_version": m.GetProducerVersion()} {
		if v != "" {
			if g.Meta == nil {
				g.Meta = map[string]string{}
			}
			g.Meta[k] = v
		}
	}
	return g, nil
}

type converter struct {
	opset int
	dir   string
	g     *ir.Graph
	vals  map[string]*ir.Value
}

func (c *converter) graph(gp *onnxpb.GraphProto) (*ir.Graph, error) {
	g := ir.NewGraph(gp.GetName())
	g.Opset = c.opset
	c.g = g
	inits := map[string]bool{}
	for _, t := range gp.GetInitializer() {
		if t.GetName() == "" {
			return nil, errors.New("initializer without a name")
		}
		if inits[t.GetName()] {
			return nil, fmt.Errorf("initializer %q defined twice", t.GetName())
		}
		inits[t.GetName()] = true
		data, err := onnxconv.Tensor(t, c.dir)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", t.GetName(), err)
		}
		c.vals[t.GetName()] = g.AddConst(t.GetName(), data)
	}
	if len(gp.GetSparseInitializer()) > 0 {
		return nil, errors.New("sparse initializers are not supported")
	}
	for _, in := range gp.GetInput() {
		if inits[in.GetName()] {
			continue // an initializer listed as input (IR < 4 style): a constant here
		}
		t, err := valueType(in)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.GetName(), err)
		}
		if _, dup := c.vals[in.GetName()]; dup {
			return nil, fmt.Errorf("input %q defined twice", in.GetName())
		}
		c.vals[in.GetName()] = g.AddInput(in.GetName(), t)
	}
	nodes, err := c.sortNodes(gp.GetNode())
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if err := c.node(n); err != nil {
			return nil, err
		}
	}
	if len(gp.GetOutput()) == 0 {
		return nil, errors.New("graph has no outputs")
	}
	// Constants the conversion itself orphaned (axes moved into attributes,
	// Split sizes, Dropout ratios) are not part of the model.
	for _, v := range g.Values() {
		if v.Op == ir.OpConst && len(v.Uses()) == 0 && !isOutput(gp, v) {
			if err := g.Remove(v); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range gp.GetOutput() {
		v := c.vals[o.GetName()]
		if v == nil {
			return nil, fmt.Errorf("output %q is not produced by any node", o.GetName())
		}
		g.Outputs = append(g.Outputs, ir.Output{Name: o.GetName(), Value: v})
	}
	return g, nil
}

// sortNodes orders nodes so every input is defined before use. Exporters
// already write them sorted; sorting here turns an unsorted file into a
// working graph and a cycle or dangling input into a precise error.
func (c *converter) sortNodes(nodes []*onnxpb.NodeProto) ([]*onnxpb.NodeProto, error) {
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if _, dup := producer[o]; dup {
				return nil, fmt.Errorf("%s: output %q is also produced by another node", nodeName(n), o)
			}
			if _, dup := c.vals[o]; dup {
				return nil, fmt.Errorf("%s: output %q redefines a graph input or initializer", nodeName(n), o)
			}
			producer[o] = i
		}
	}
	state := make([]uint8, len(nodes)) // 0 unseen, 1 on stack, 2 done
	out := make([]*onnxpb.NodeProto, 0, len(nodes))
	type frame struct{ n, i int }
	for root := range nodes {
		if state[root] != 0 {
			continue
		}
		stack := []frame{{root, 0}}
		state[root] = 1
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			ins := nodes[f.n].GetInput()
			if f.i < len(ins) {
				name := ins[f.i]
				f.i++
				if name == "" {
					continue
				}
				p, ok := producer[name]
				if !ok {
					if _, ok := c.vals[name]; !ok {
						return nil, fmt.Errorf("%s: input %q is not defined by any node, initializer or graph input", nodeName(nodes[f.n]), name)
					}
					continue
				}
				switch state[p] {
				case 0:
					state[p] = 1
					stack = append(stack, frame{p, 0})
				case 1:
					return nil, fmt.Errorf("%s: the graph has a cycle through %q", nodeName(nodes[p]), name)
				}
				continue
			}
			state[f.n] = 2
			out = append(out, nodes[f.n])
			stack = stack[:len(stack)-1]
		}
	}
	return out, nil
}

func isOutput(gp *onnxpb.GraphProto, v *ir.Value) bool {
	for _, o := range gp.GetOutput() {
		if o.GetName() == v.Name {
			return true
		}
	}
	return false
}

func nodeName(n *onnxpb.NodeProto) string {
	name := n.GetName()
	if name == "" && len(n.GetOutput()) > 0 {
		name = n.GetOutput()[0]
	}
	return fmt.Sprintf("node %q (%s)", name, n.GetOpType())
}

// valueType converts a ValueInfo's tensor type. Dims with neither a value nor
// a name become unknown.
func valueType(vi *onnxpb.ValueInfoProto) (ir.Type, error) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return ir.Type{}, errors.New("not a tensor (sequence, map and optional inputs are not supported)")
	}
	dt, err := onnxconv.DType(tt.GetElemType())
	if err != nil {
		return ir.Type{}, err
	}
	if tt.GetShape() == nil {
		return ir.Type{}, errors.New("input has no shape (rank unknown)")
	}
	s := ir.Shape{}
	for _, d := range tt.GetShape().GetDim() {
		switch {
		case d.GetDimParam() != "":
			p := d.GetDimParam()
			if !validSym(p) {
				p = sanitizeSym(p)
			}
			s = append(s, ir.Sym(p))
		case d.GetValue() != nil && d.GetDimParam() == "":
			if d.GetDimValue() < 0 {
				return ir.Type{}, fmt.Errorf("negative dim %d", d.GetDimValue())
			}
			s = append(s, ir.Static(d.GetDimValue()))
		default:
			s = append(s, ir.Unknown)
		}
	}
	if _, err := ir.CheckedNumElements(staticPart(s)); err != nil {
		return ir.Type{}, err
	}
	return ir.Type{DType: dt, Shape: s}, nil
}

func staticPart(s ir.Shape) []int64 {
	var out []int64
	for _, d := range s {
		if d.IsStatic() {
			out = append(out, d.C)
		}
	}
	return out
}

func validSym(s string) bool {
	d, err := ir.ParseDim(s)
	return err == nil && d.C == 1 && !strings.Contains(s, "*") && d.Syms == s
}

// sanitizeSym turns an exporter's dim name ("batch_size", "N", "unk__0",
// "height / 16") into an identifier the textual IR can carry.
func sanitizeSym(s string) string {
	var b strings.Builder
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if ok {
			b.WriteRune(r)
		} else if b.Len() > 0 {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "dim"
	}
	return b.String()
}
