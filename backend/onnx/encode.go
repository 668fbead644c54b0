// Package onnx writes an ir.Graph as an ONNX ModelProto.
//
// The IR's op semantics are ONNX opset 17's, so most values become one node
// of the same op type; the backend only translates the IR's conventions back
// into the target opset's forms: reduction axes (an attribute in the IR)
// become an initializer input for ReduceSum at opset 13 and up and for every
// reduction at 18 and up, and Cast's `to` goes back from a dtype name to the
// ONNX enum. Opsets 13 to 21 can be written; an op, attribute or value the
// chosen opset cannot express is an error naming the value. The graph is
// never changed.
//
// Constants become initializers (or a Constant node when a constant is itself
// a graph output, since an output must be produced by a node). Tensor names
// are the values' names where those are non-empty and unique, so a model read
// by the frontend and written back keeps its names; graph input and output
// names are kept exactly, with an Identity node where an output's value is
// known under another name. The output is deterministic: nodes follow
// ir.Graph.Topo, attributes and metadata are sorted, no map is iterated.
//
// The IR version written is the lowest that allows the opset: 8 for opsets
// 13 to 18 (so onnx 1.12's checker, which knows IR versions up to 8, accepts
// the common opset-13 and -17 models), 9 for opsets 19 and 20, 10 for 21.
package onnx

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/internal/onnxconv"
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

// MinOpset and MaxOpset bound the default-domain opsets the backend writes.
// Below 13, Squeeze, Unsqueeze and Slice took their axes as attributes and
// the IR keeps them as inputs; 21 is the newest opset the frontend reads.
const (
	MinOpset = 13
	MaxOpset = 21
)

// maxInline is the serialized size above which a model no longer fits
// comfortably under protobuf's 2 GiB message limit, so Write moves large
// tensors to external data even when Options did not ask for it. A variable
// only so that tests can lower it.
var maxInline = 1_800_000_000

// defaultExternalThreshold is the tensor size from which Write externalizes
// when it has to (the model is over maxInline) and Options set no threshold.
// It matches the onnx package's default for convert_model_to_external_data.
const defaultExternalThreshold = 1024

// Options control how a graph is written. The zero value is a sensible
// default.
type Options struct {
	// Opset is the default-domain opset to write. 0 picks max(g.Opset, 13),
	// raised to what the graph's ops need (17 for LayerNormalization, 20 for
	// Gelu, and so on).
	Opset int
	// ProducerName and ProducerVersion go to the model's producer fields.
	// When both are empty, the graph's "producer_name" and
	// "producer_version" metadata (set by the frontend from the source
	// model) are written there instead.
	ProducerName, ProducerVersion string
	// ExternalDataThreshold, when positive, makes Write store every
	// initializer of at least this many bytes in <model file name>.data next
	// to the model. 0 keeps all data inside the model unless the model would
	// exceed about 1.8 GB, in which case Write externalizes anyway. Encode,
	// which has no file to put external data in, refuses a positive value.
	ExternalDataThreshold int64
	// ValueInfo also records the type of every intermediate value in the
	// graph's value_info, which helps tools that do not run shape inference.
	ValueInfo bool
}

// Encode serializes g as an ONNX model. Models that do not fit in one
// protobuf (about 1.8 GB) need Write, which can use external data.
func Encode(g *ir.Graph, opts Options) ([]byte, error) {
	if opts.ExternalDataThreshold != 0 {
		return nil, errors.New("onnx backend: external data needs a file to go into: use Write, not Encode")
	}
	m, err := model(g, opts)
	if err != nil {
		return nil, err
	}
	if n := proto.Size(m); n > maxInline {
		return nil, fmt.Errorf("onnx backend: the model is %d bytes, too large for one protobuf: use Write, which stores large tensors as external data", n)
	}
	return marshal(m)
}

// marshal serializes deterministically (the schema has no maps today, but
// determinism must not depend on that).
func marshal(m *onnxpb.ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnx backend: serializing the model: %w", err)
	}
	return b, nil
}

// model converts g to a ModelProto with all tensor data inline. Float32
// initializers share their bytes with g's constants (see onnxconv.Proto), so
// the result must not be modified while g is in use.
func model(g *ir.Graph, opts Options) (*onnxpb.ModelProto, error) {
	order, err := g.Topo()
	if err != nil {
		return nil, fmt.Errorf("onnx backend: %w", err)
	}
	opset, err := chooseOpset(g, order, opts.Opset)
	if err != nil {
		return nil, err
	}
	e := &encoder{g: g, opset: opset, names: map[*ir.Value]string{}, taken: map[string]bool{}}
	if err := e.assignNames(order); err != nil {
		return nil, err
	}
	gp, err := e.graph(order, opts.ValueInfo)
	if err != nil {
		return nil, err
	}
	m := &onnxpb.ModelProto{
		IrVersion:   irVersion(opset),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: int64(opset)}},
		Graph:       gp,
	}
	m.ProducerName, m.ProducerVersion = opts.ProducerName, opts.ProducerVersion
	if m.ProducerName == "" && m.ProducerVersion == "" {
		// The frontend keeps the source model's producer in these keys.
		m.ProducerName, m.ProducerVersion = g.Meta["producer_name"], g.Meta["producer_version"]
	}
	for _, k := range sortedKeys(g.Meta) {
		if k != "producer_name" && k != "producer_version" {
			m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: k, Value: g.Meta[k]})
		}
	}
	splitDomains(m) // contrib ops (com.microsoft) move to their domain
	return m, nil
}

// irVersion is the lowest IR version whose onnx release defined opset.
func irVersion(opset int) int64 {
	switch {
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	default:
		return 10
	}
}

// chooseOpset applies Options.Opset's rule: an explicit opset is checked
// against the supported range (the ops are checked as they are emitted);
// 0 means the graph's own opset raised to what its ops need.
func chooseOpset(g *ir.Graph, order []*ir.Value, want int) (int, error) {
	if want != 0 {
		if want < MinOpset || want > MaxOpset {
			return 0, fmt.Errorf("onnx backend: cannot write opset %d (pqvc writes opsets %d to %d)", want, MinOpset, MaxOpset)
		}
		return want, nil
	}
	opset := max(g.Opset, MinOpset)
	for _, v := range order {
		if v.Op != ir.OpInput && v.Op != ir.OpConst {
			if need, err := requiredOpset(v); err == nil { // errors resurface, with context, in node
				opset = max(opset, need)
			}
		}
	}
	if opset > MaxOpset {
		return 0, fmt.Errorf("onnx backend: the graph needs opset %d; pqvc writes opsets %d to %d (set Options.Opset)", opset, MinOpset, MaxOpset)
	}
	return opset, nil
}

type encoder struct {
	g        *ir.Graph
	opset    int
	names    map[*ir.Value]string // tensor name of each value
	taken    map[string]bool      // tensor names in use or reserved for graph inputs and outputs
	outputOf map[string]*ir.Value // graph output name → its value
	gen      int                  // last number used for a pqvc_<n> name
	inits    []*onnxpb.TensorProto
}

// assignNames gives every value a unique tensor name. Inputs keep theirs;
// other values keep a non-empty name no other value has, so that a model read
// and written back keeps its names. An unnamed output value takes its output's
// name (no Identity needed); a name several values share is suffixed
// (name_1, ...) in Topo order, and unnamed values get pqvc_<n>.
func (e *encoder) assignNames(order []*ir.Value) error {
	inputs := map[string]*ir.Value{}
	for _, in := range e.g.Inputs {
		switch {
		case in.Op != ir.OpInput:
			return fmt.Errorf("onnx backend: graph input %s is not an Input value", in)
		case in.Name == "":
			return fmt.Errorf("onnx backend: graph input %s has no name", in)
		case inputs[in.Name] != nil:
			return fmt.Errorf("onnx backend: two graph inputs are called %q", in.Name)
		}
		inputs[in.Name] = in
		e.names[in] = in.Name
		e.taken[in.Name] = true
	}
	e.outputOf = map[string]*ir.Value{}
	for _, o := range e.g.Outputs {
		switch {
		case o.Value == nil:
			return fmt.Errorf("onnx backend: output %q is not defined", o.Name)
		case o.Name == "":
			return fmt.Errorf("onnx backend: output %s has no name", o.Value)
		case e.outputOf[o.Name] != nil:
			return fmt.Errorf("onnx backend: two graph outputs are called %q", o.Name)
		case inputs[o.Name] != nil && inputs[o.Name] != o.Value:
			return fmt.Errorf("onnx backend: output %q (%s) has the name of a graph input", o.Name, o.Value)
		}
		e.outputOf[o.Name] = o.Value
	}
	count := map[string]int{}
	for _, v := range order {
		if v.Op == ir.OpInput {
			if e.names[v] == "" {
				return fmt.Errorf("onnx backend: %s is not among the graph's inputs", v)
			}
			continue
		}
		count[v.Name]++
	}
	for _, v := range order {
		n := v.Name
		if v.Op == ir.OpInput || n == "" || count[n] > 1 || inputs[n] != nil {
			continue
		}
		if o := e.outputOf[n]; o != nil && o != v {
			continue // the name belongs to another value's output
		}
		e.names[v] = n
		e.taken[n] = true
	}
	for _, o := range e.g.Outputs {
		if e.names[o.Value] == "" && !e.taken[o.Name] {
			e.names[o.Value] = o.Name
			e.taken[o.Name] = true
		}
	}
	for name := range e.outputOf {
		e.taken[name] = true // an Identity node will produce it
	}
	for _, v := range order {
		if e.names[v] != "" {
			continue
		}
		if v.Name != "" {
			e.names[v] = e.fresh(v.Name)
			continue
		}
		for {
			e.gen++
			if n := fmt.Sprintf("pqvc_%d", e.gen); !e.taken[n] {
				e.names[v] = n
				e.taken[n] = true
				break
			}
		}
	}
	return nil
}

// fresh returns base, or base_1, base_2, ... whichever is free, and takes it.
func (e *encoder) fresh(base string) string {
	n := base
	for i := 1; e.taken[n]; i++ {
		n = fmt.Sprintf("%s_%d", base, i)
	}
	e.taken[n] = true
	return n
}

// graph emits the GraphProto: constants, then nodes in Topo order, then the
// Identity nodes that give outputs their names.
func (e *encoder) graph(order []*ir.Value, withValueInfo bool) (*onnxpb.GraphProto, error) {
	gp := &onnxpb.GraphProto{Name: e.g.Name}
	if gp.Name == "" {
		gp.Name = "pqvc" // the ONNX checker requires a graph name
	}
	for _, v := range order {
		name := e.names[v]
		switch v.Op {
		case ir.OpInput:
			continue
		case ir.OpConst:
			if v.Const == nil || v.Const.Opaque() {
				return nil, fmt.Errorf("onnx backend: %s: constant has no data (an opaque tensor from a textual dump)", v)
			}
			t, err := onnxconv.Proto(name, v.Const)
			if err != nil {
				return nil, fmt.Errorf("onnx backend: %s: %w", v, err)
			}
			if e.outputOf[name] == v {
				// A graph output must be produced by a node.
				gp.Node = append(gp.Node, &onnxpb.NodeProto{Name: name, OpType: "Constant", Output: []string{name},
					Attribute: []*onnxpb.AttributeProto{{Name: "value", Type: onnxpb.AttributeProto_TENSOR, T: t}}})
				continue
			}
			e.inits = append(e.inits, t)
		default:
			n, err := e.node(v)
			if err != nil {
				return nil, fmt.Errorf("onnx backend: %w", err)
			}
			gp.Node = append(gp.Node, n)
		}
	}
	for _, o := range e.g.Outputs {
		if src := e.names[o.Value]; src != o.Name {
			gp.Node = append(gp.Node, &onnxpb.NodeProto{Name: o.Name, OpType: "Identity", Input: []string{src}, Output: []string{o.Name}})
		}
	}
	gp.Initializer = e.inits
	for _, in := range e.g.Inputs {
		vi, err := valueInfo(in.Name, in.Type)
		if err != nil {
			return nil, fmt.Errorf("onnx backend: input %s: %w", in, err)
		}
		gp.Input = append(gp.Input, vi)
	}
	for _, o := range e.g.Outputs {
		vi, err := valueInfo(o.Name, o.Value.Type)
		if err != nil {
			return nil, fmt.Errorf("onnx backend: output %q (%s): %w", o.Name, o.Value, err)
		}
		gp.Output = append(gp.Output, vi)
	}
	if withValueInfo {
		for _, v := range order {
			name := e.names[v]
			if v.Op == ir.OpInput || v.Op == ir.OpConst || e.outputOf[name] != nil {
				continue
			}
			vi, err := valueInfo(name, v.Type)
			if err != nil {
				return nil, fmt.Errorf("onnx backend: %s: %w", v, err)
			}
			gp.ValueInfo = append(gp.ValueInfo, vi)
		}
	}
	return gp, nil
}

// valueInfo describes a tensor's type. A static dim becomes dim_value and a
// single symbol dim_param; a product of symbols ("197*batch") or an unknown
// dim has no ONNX spelling and is left anonymous.
func valueInfo(name string, t ir.Type) (*onnxpb.ValueInfoProto, error) {
	elem := onnxconv.ONNXType(t.DType)
	if elem == 0 {
		return nil, fmt.Errorf("element type %v has no ONNX equivalent", t.DType)
	}
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
	for _, d := range t.Shape {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch {
		case d.IsStatic():
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.C}
		case d.C == 1 && !d.IsUnknown() && !strings.Contains(d.Syms, "*"):
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Syms}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: elem, Shape: shape}},
	}}, nil
}

func sortedKeys(m map[string]string) []string {
	a := make(ir.Attrs, len(m))
	for k := range m {
		a[k] = nil
	}
	return a.Keys()
}
