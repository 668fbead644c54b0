package onnx

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/internal/onnxconv"
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

// opSince maps every IR op the backend can emit to the first default-domain
// opset in which ONNX has the op in the IR's form. The IR's semantics are
// those of opset 17, and between 13 and 21 the ops below changed only in the
// ways handled by node (reduction axes, Cast's `to`) or checked through
// attrSince; otherwise they only gained element types.
var opSince = map[string]int{
	"LayerNormalization": 17,
	"Gelu":               20,
}

func init() {
	for _, op := range []string{
		"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod", "Equal", "Less", "Greater", "LessOrEqual",
		"GreaterOrEqual", "And", "Or", "Xor", "Not", "Where", "Sqrt", "Erf", "Relu", "Neg", "Exp", "Log",
		"Tanh", "Sigmoid", "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Identity", "Sin", "Cos",
		"LeakyRelu", "HardSigmoid", "Clip", "Cast", "MatMul", "Gemm", "Conv", "Softmax", "LogSoftmax",
		"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare",
		"GlobalAveragePool", "Reshape", "Transpose", "Flatten", "Concat", "Slice", "Squeeze", "Unsqueeze",
		"Gather", "Expand", "Shape", "ConstantOfShape", "Range", "Tile",
		"QuantizeLinear", "DequantizeLinear", "MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv",
	} {
		opSince[op] = MinOpset
	}
}

// attrSince lists attributes that an op gained after opset 13; a graph that
// sets one to a non-default value needs at least that opset.
var attrSince = map[string][]attrReq{
	"Reshape": {{name: "allowzero", since: 14}},
	// Shape's end has no default value: absent means the rank.
	"Shape": {{name: "end", since: 15, presence: true}, {name: "start", since: 15}},
}

// attrReq says attribute name first appeared in opset since.
type attrReq struct {
	name     string
	since    int
	presence bool // any explicit value matters, not only a non-zero one
}

// used reports whether v's value of the attribute needs r.since, i.e. an
// older opset, which lacks the attribute, would mean something else.
func (r attrReq) used(v *ir.Value) bool {
	if r.presence {
		return v.HasAttr(r.name)
	}
	x, ok := v.Attrs[r.name].(int64)
	return ok && x != 0
}

// newAttr returns the opset that introduced attribute name of op (0 if the
// attribute is as old as opset 13).
func newAttr(op, name string) int {
	for _, r := range attrSince[op] {
		if r.name == name {
			return r.since
		}
	}
	return 0
}

// reductions are the IR's reduce ops; their axes are an attribute in the IR.
var reductions = map[string]bool{
	"ReduceMean": true, "ReduceSum": true, "ReduceMax": true, "ReduceMin": true,
	"ReduceProd": true, "ReduceL2": true, "ReduceSumSquare": true,
}

// axesAsInput reports whether op takes its axes as an input at opset: ReduceSum
// since 13, every other reduction since 18.
func axesAsInput(op string, opset int) bool {
	return op == "ReduceSum" && opset >= 13 || opset >= 18
}

// requiredOpset is the lowest opset that can express v, checking attributes
// that only later opsets have.
func requiredOpset(v *ir.Value) (int, error) {
	since, ok := opSince[v.Op]
	if !ok {
		return 0, fmt.Errorf("%s: op %s has no ONNX equivalent", v, v.Op)
	}
	for _, r := range attrSince[v.Op] {
		if r.used(v) {
			since = max(since, r.since)
		}
	}
	return since, nil
}

// node converts one computed value to a NodeProto. Initializers the node
// needs beyond its arguments (reduction axes) are appended to e.inits.
func (e *encoder) node(v *ir.Value) (*onnxpb.NodeProto, error) {
	need, err := requiredOpset(v)
	if err != nil {
		return nil, err
	}
	if e.opset < need {
		return nil, fmt.Errorf("%s: %s needs opset %d, emitting opset %d", v, describe(v), need, e.opset)
	}
	out := e.names[v]
	n := &onnxpb.NodeProto{Name: out, OpType: v.Op, Output: []string{out}}
	for _, a := range v.Args() {
		if a == nil {
			n.Input = append(n.Input, "") // omitted optional input
			continue
		}
		n.Input = append(n.Input, e.names[a])
	}
	attrs := v.Attrs
	if reductions[v.Op] {
		if attrs, err = e.reduction(v, n); err != nil {
			return nil, err
		}
	}
	for len(n.Input) > 0 && n.Input[len(n.Input)-1] == "" {
		n.Input = n.Input[:len(n.Input)-1] // trailing omitted inputs are just absent
	}
	for _, k := range attrs.Keys() {
		if e.opset < newAttr(v.Op, k) {
			// Only a default value gets here (requiredOpset saw to the
			// rest): the older opset lacks the attribute, so drop it.
			continue
		}
		a, err := attribute(v, k, attrs[k])
		if err != nil {
			return nil, err
		}
		n.Attribute = append(n.Attribute, a)
	}
	return n, nil
}

// describe names what an op needs a newer opset for.
func describe(v *ir.Value) string {
	for _, r := range attrSince[v.Op] {
		if r.used(v) && opSince[v.Op] < r.since {
			return fmt.Sprintf("%s with %s=%v", v.Op, r.name, v.Attrs[r.name])
		}
	}
	return v.Op
}

// reduction turns the IR's axes attribute into an input where the opset
// wants one, and drops noop_with_empty_axes where the opset lacks it. It
// returns the attributes left to emit.
func (e *encoder) reduction(v *ir.Value, n *onnxpb.NodeProto) (ir.Attrs, error) {
	attrs := v.Attrs.Clone()
	axes, hasAxes := attrs["axes"].([]int64)
	noop := v.Int("noop_with_empty_axes")
	noopAttr := v.Op == "ReduceSum" || e.opset >= 18 // opsets where the attribute exists
	if !noopAttr {
		if noop != 0 && len(axes) == 0 {
			return nil, fmt.Errorf("%s: %s with noop_with_empty_axes=1 and no axes needs opset 18", v, v.Op)
		}
		// With axes given (or noop off) the attribute changes nothing.
		delete(attrs, "noop_with_empty_axes")
	}
	if !axesAsInput(v.Op, e.opset) {
		return attrs, nil
	}
	delete(attrs, "axes")
	if hasAxes {
		name := e.fresh(e.names[v] + "_axes")
		t := ir.I64Tensor([]int64{int64(len(axes))}, append([]int64{}, axes...))
		p, err := onnxconv.Proto(name, t)
		if err != nil {
			return nil, fmt.Errorf("%s: axes: %w", v, err)
		}
		e.inits = append(e.inits, p)
		n.Input = append(n.Input, name)
	}
	return attrs, nil
}

// attribute converts one IR attribute to an AttributeProto.
func attribute(v *ir.Value, name string, x any) (*onnxpb.AttributeProto, error) {
	a := &onnxpb.AttributeProto{Name: name}
	if v.Op == "Cast" && name == "to" {
		// The IR spells Cast's target as a dtype name; ONNX as its enum.
		s, _ := x.(string)
		dt, ok := ir.ParseDType(s)
		code := onnxconv.ONNXType(dt)
		if !ok || code == 0 {
			return nil, fmt.Errorf("%s: cast to %q has no ONNX element type", v, s)
		}
		a.Type, a.I = onnxpb.AttributeProto_INT, proto.Int64(int64(code))
		return a, nil
	}
	switch y := x.(type) {
	case int64:
		a.Type, a.I = onnxpb.AttributeProto_INT, proto.Int64(y)
	case float32:
		a.Type, a.F = onnxpb.AttributeProto_FLOAT, proto.Float32(y)
	case string:
		a.Type, a.S = onnxpb.AttributeProto_STRING, []byte(y)
	case []int64:
		a.Type, a.Ints = onnxpb.AttributeProto_INTS, append([]int64{}, y...)
	case []float32:
		a.Type, a.Floats = onnxpb.AttributeProto_FLOATS, append([]float32{}, y...)
	case []string:
		a.Type = onnxpb.AttributeProto_STRINGS
		for _, s := range y {
			a.Strings = append(a.Strings, []byte(s))
		}
	case *ir.Tensor:
		t, err := onnxconv.Proto("", y)
		if err != nil {
			return nil, fmt.Errorf("%s: attribute %q: %w", v, name, err)
		}
		a.Type, a.T = onnxpb.AttributeProto_TENSOR, t
	default:
		return nil, fmt.Errorf("%s: attribute %q has unsupported type %T", v, name, x)
	}
	return a, nil
}
