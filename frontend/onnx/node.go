package onnx

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pqvc/pqvc/internal/onnxconv"
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

// nodeCtx is what a converter sees of one node.
type nodeCtx struct {
	c     *converter
	n     *onnxpb.NodeProto
	ins   []*ir.Value // nil for omitted optional inputs
	attrs ir.Attrs
	name  string // name for the first result
}

type convertFunc func(x *nodeCtx) ([]*ir.Value, error)

func (c *converter) node(n *onnxpb.NodeProto) error {
	conv := converters[n.GetOpType()]
	switch d := n.GetDomain(); d {
	case "", "ai.onnx":
	default:
		if conv = contribConverter(d, n.GetOpType()); conv == nil {
			return fmt.Errorf("%s: op %s of domain %q is not supported (pqvc reads the default ONNX domain and some com.microsoft ops)", nodeName(n), n.GetOpType(), d)
		}
	}
	if conv == nil {
		return fmt.Errorf("%s: op %s (opset %d) is not supported", nodeName(n), n.GetOpType(), c.opset)
	}
	x := &nodeCtx{c: c, n: n}
	for _, name := range n.GetInput() {
		if name == "" {
			x.ins = append(x.ins, nil)
			continue
		}
		v, ok := c.vals[name]
		if !ok || v == nil {
			return fmt.Errorf("%s: input %q is not available (an optional output pqvc does not support?)", nodeName(n), name)
		}
		x.ins = append(x.ins, v)
	}
	for len(x.ins) > 0 && x.ins[len(x.ins)-1] == nil {
		x.ins = x.ins[:len(x.ins)-1] // trailing omitted inputs are just absent
	}
	var err error
	if x.attrs, err = convertAttrs(n, c.dir); err != nil {
		return fmt.Errorf("%s: %w", nodeName(n), err)
	}
	if len(n.GetOutput()) > 0 {
		x.name = n.GetOutput()[0]
	}
	outs, err := conv(x)
	if err != nil {
		return fmt.Errorf("%s: %w", nodeName(n), err)
	}
	for _, v := range outs {
		// A shape constant can make a result absurd (Expand to 2^40 rows):
		// refuse it at load, naming the node, not when a kernel allocates.
		if v == nil {
			continue
		}
		if _, err := ir.CheckedNumElements(staticPart(v.Type.Shape)); err != nil {
			return fmt.Errorf("%s: result %q: %w", nodeName(n), v.Name, err)
		}
	}
	for i, name := range n.GetOutput() {
		if name == "" {
			continue
		}
		if i < len(outs) && outs[i] != nil {
			c.vals[name] = outs[i]
		} else {
			c.vals[name] = nil // produced by ONNX, not representable: an error if used
		}
	}
	return nil
}

func convertAttrs(n *onnxpb.NodeProto, dir string) (ir.Attrs, error) {
	attrs := ir.Attrs{}
	for _, a := range n.GetAttribute() {
		if a.GetRefAttrName() != "" {
			return nil, fmt.Errorf("attribute %q refers to a function attribute", a.GetName())
		}
		var x any
		switch a.GetType() {
		case onnxpb.AttributeProto_INT:
			x = a.GetI()
		case onnxpb.AttributeProto_FLOAT:
			x = a.GetF()
		case onnxpb.AttributeProto_STRING:
			x = string(a.GetS())
		case onnxpb.AttributeProto_INTS:
			x = append([]int64{}, a.GetInts()...)
		case onnxpb.AttributeProto_FLOATS:
			x = append([]float32{}, a.GetFloats()...)
		case onnxpb.AttributeProto_STRINGS:
			var ss []string
			for _, s := range a.GetStrings() {
				ss = append(ss, string(s))
			}
			x = ss
		case onnxpb.AttributeProto_TENSOR:
			t, err := onnxconv.Tensor(a.GetT(), dir)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", a.GetName(), err)
			}
			x = t
		default:
			return nil, fmt.Errorf("attribute %q has unsupported type %v", a.GetName(), a.GetType())
		}
		attrs[a.GetName()] = x
	}
	return attrs, nil
}

// add appends an IR value named after the node's first output.
func (x *nodeCtx) add(op string, attrs ir.Attrs, args ...*ir.Value) (*ir.Value, error) {
	return x.c.g.Add(op, x.name, attrs, args...)
}

// take removes and returns attribute name (nil if absent), so what remains can
// be checked against the IR op's schema.
func (x *nodeCtx) take(name string) any {
	v := x.attrs[name]
	delete(x.attrs, name)
	return v
}

func (x *nodeCtx) constI64(name string, vals []int64) *ir.Value {
	return x.c.g.AddConst(name, ir.I64Tensor([]int64{int64(len(vals))}, vals))
}

// direct converts a node whose ONNX semantics at this opset are the IR op's.
func direct(op string) convertFunc {
	return func(x *nodeCtx) ([]*ir.Value, error) {
		v, err := x.add(op, x.attrs, x.ins...)
		return []*ir.Value{v}, err
	}
}

// alias makes the node's first output another name for its first input.
func alias(x *nodeCtx) ([]*ir.Value, error) {
	if len(x.ins) == 0 {
		return nil, errors.New("missing input")
	}
	return []*ir.Value{x.ins[0]}, nil
}

// chain folds a variadic op (Sum, Max, Min) into binary IR ops.
func chain(op string) convertFunc {
	return func(x *nodeCtx) ([]*ir.Value, error) {
		if len(x.ins) == 0 {
			return nil, errors.New("no inputs")
		}
		acc := x.ins[0]
		if len(x.ins) == 1 {
			return []*ir.Value{acc}, nil
		}
		for _, in := range x.ins[1:] {
			var err error
			if acc, err = x.add(op, nil, acc, in); err != nil {
				return nil, err
			}
		}
		return []*ir.Value{acc}, nil
	}
}

var converters map[string]convertFunc

func init() {
	converters = map[string]convertFunc{
		"Identity": alias, "Constant": convConstant, "Cast": convCast, "Dropout": convDropout,
		"Sum": chain("Add"), "Max": chain("Max"), "Min": chain("Min"),
		"Squeeze": convSqueeze("Squeeze"), "Unsqueeze": convSqueeze("Unsqueeze"), "Split": convSplit,
		"Softmax": convSoftmax("Softmax"), "LogSoftmax": convSoftmax("LogSoftmax"),
		"LayerNormalization": convLayerNorm,
	}
	for _, op := range []string{
		"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
		"And", "Or", "Xor", "Not", "Where", "Sqrt", "Erf", "Relu", "Neg", "Exp", "Log", "Tanh", "Sigmoid",
		"Abs", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Gelu", "LeakyRelu", "HardSigmoid",
		"Clip", "MatMul", "Gemm", "Conv", "Reshape", "Transpose", "Flatten", "Concat", "Slice", "Gather",
		"Expand", "Shape", "ConstantOfShape", "Range", "Tile", "GlobalAveragePool",
		"QuantizeLinear", "DequantizeLinear", "MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv",
	} {
		converters[op] = direct(op)
	}
	for _, op := range []string{"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare"} {
		converters[op] = convReduce(op)
	}
}

func convConstant(x *nodeCtx) ([]*ir.Value, error) {
	if len(x.attrs) != 1 {
		return nil, fmt.Errorf("want exactly one value attribute, have %d", len(x.attrs))
	}
	var t *ir.Tensor
	for k, a := range x.attrs {
		switch k {
		case "value":
			t, _ = a.(*ir.Tensor)
		case "value_float":
			f, _ := a.(float32)
			t = ir.ScalarF32(f)
		case "value_floats":
			fs, _ := a.([]float32)
			t = ir.F32Tensor([]int64{int64(len(fs))}, fs)
		case "value_int":
			i, _ := a.(int64)
			t = ir.ScalarI64(i)
		case "value_ints":
			is, _ := a.([]int64)
			t = ir.I64Tensor([]int64{int64(len(is))}, is)
		default:
			return nil, fmt.Errorf("constant attribute %q is not supported", k)
		}
	}
	if t == nil {
		return nil, errors.New("constant value has the wrong attribute type")
	}
	return []*ir.Value{x.c.g.AddConst(x.name, t)}, nil
}

func convCast(x *nodeCtx) ([]*ir.Value, error) {
	to, ok := x.take("to").(int64)
	if !ok {
		return nil, errors.New("missing attribute \"to\"")
	}
	if s, ok := x.take("saturate").(int64); ok && s == 0 {
		return nil, errors.New("saturate=0 is not supported")
	}
	dt, err := onnxconv.DType(int32(to))
	if err != nil {
		return nil, err
	}
	x.attrs["to"] = dt.String()
	return direct("Cast")(x)
}

func convDropout(x *nodeCtx) ([]*ir.Value, error) {
	// Inference mode: Dropout is the identity. A used mask output is refused
	// by leaving it unbound.
	if len(x.ins) > 2 && x.ins[2] != nil {
		if b, ok := ir.ConstInts(x.ins[2]); !ok || len(b) != 1 || b[0] != 0 {
			return nil, errors.New("training_mode must be a constant false")
		}
	}
	return alias(x)
}

// convSqueeze moves opset-11 axes attributes into the opset-13 axes input.
func convSqueeze(op string) convertFunc {
	return func(x *nodeCtx) ([]*ir.Value, error) {
		if axes, ok := x.take("axes").([]int64); ok {
			if len(x.ins) > 1 {
				return nil, errors.New("axes given as both attribute and input")
			}
			x.ins = append(x.ins[:1], x.constI64(x.name+"_axes", axes))
		}
		return direct(op)(x)
	}
}

// convReduce moves an axes input (ReduceSum from 13, all reductions from 18)
// into the IR's axes attribute; it must be a constant.
func convReduce(op string) convertFunc {
	return func(x *nodeCtx) ([]*ir.Value, error) {
		if len(x.ins) > 1 {
			axes, ok := ir.ConstInts(x.ins[1])
			if !ok {
				return nil, errors.New("reduction axes must be a constant")
			}
			x.attrs["axes"] = append([]int64{}, axes...)
			x.ins = x.ins[:1]
		}
		return direct(op)(x)
	}
}

func convSoftmax(op string) convertFunc {
	return func(x *nodeCtx) ([]*ir.Value, error) {
		if len(x.ins) > 0 {
			// The IR's Softmax infers its type as its input's, so an axis
			// past the rank would only show up as a kernel failure at run
			// time: refuse it here, naming the node.
			if a, ok := x.attrs["axis"].(int64); ok {
				if r := int64(x.ins[0].Type.Rank()); a < -r || a >= r {
					return nil, fmt.Errorf("axis %d out of range for a rank-%d input", a, r)
				}
			}
		}
		if x.c.opset < 13 && len(x.ins) > 0 {
			// Before opset 13 Softmax flattened to 2-D at axis (default 1):
			// the same as the IR's only when axis is the last dim.
			axis := int64(1)
			if a, ok := x.attrs["axis"].(int64); ok {
				axis = a
			}
			r := int64(x.ins[0].Type.Rank())
			if axis < 0 {
				axis += r
			}
			if axis != r-1 {
				return nil, fmt.Errorf("%s-%d over axis %d of a rank-%d input is not supported", op, x.c.opset, axis, r)
			}
			x.attrs["axis"] = int64(-1)
		}
		return direct(op)(x)
	}
}

func convLayerNorm(x *nodeCtx) ([]*ir.Value, error) {
	if x.c.opset < 17 {
		return nil, fmt.Errorf("LayerNormalization needs opset 17, model has %d", x.c.opset)
	}
	return direct("LayerNormalization")(x) // Mean/InvStdDev outputs stay unbound
}

// convSplit lowers Split to one Slice per output, so the IR needs no
// multi-result values; pruning then rewrites plain Slice bounds.
func convSplit(x *nodeCtx) ([]*ir.Value, error) {
	if len(x.ins) == 0 {
		return nil, errors.New("missing input")
	}
	in := x.ins[0]
	axis := int64(0)
	if a, ok := x.take("axis").(int64); ok {
		axis = a
	}
	r := int64(in.Type.Rank())
	if axis < -r || axis >= r {
		return nil, fmt.Errorf("axis %d out of range for rank %d", axis, r)
	}
	if axis < 0 {
		axis += r
	}
	nout := int64(len(x.n.GetOutput()))
	if k, ok := x.take("num_outputs").(int64); ok {
		nout = k
	}
	var sizes []int64
	if s, ok := x.take("split").([]int64); ok {
		sizes = s
	} else if len(x.ins) > 1 && x.ins[1] != nil {
		s, ok := ir.ConstInts(x.ins[1])
		if !ok {
			return nil, errors.New("split sizes must be a constant")
		}
		sizes = s
	}
	if len(x.attrs) > 0 {
		return nil, fmt.Errorf("unsupported attribute %q", x.attrs.Keys()[0])
	}
	d := in.Type.Shape[axis]
	if sizes == nil {
		if !d.IsStatic() {
			return nil, errors.New("an even split of a symbolic axis is not supported")
		}
		if nout <= 0 {
			return nil, errors.New("no outputs")
		}
		chunk := (d.C + nout - 1) / nout // opset 18 rule; exact when it divides
		for i := range nout {
			sizes = append(sizes, min(chunk, d.C-i*chunk))
		}
	}
	if int64(len(sizes)) != int64(len(x.n.GetOutput())) {
		return nil, fmt.Errorf("%d split sizes for %d outputs", len(sizes), len(x.n.GetOutput()))
	}
	total := int64(0)
	for _, s := range sizes {
		if s < 0 {
			return nil, fmt.Errorf("negative split size %d", s)
		}
		total += s
	}
	if d.IsStatic() && total != d.C {
		return nil, fmt.Errorf("split sizes %v sum to %d, axis %d has %d", sizes, total, axis, d.C)
	}
	outs := make([]*ir.Value, len(sizes))
	start := int64(0)
	for i, s := range sizes {
		name := x.n.GetOutput()[i]
		base := strings.TrimSuffix(name, "_output_0")
		st := x.constI64(base+"_starts", []int64{start})
		en := x.constI64(base+"_ends", []int64{start + s})
		ax := x.constI64(base+"_axes", []int64{axis})
		v, err := x.c.g.Add("Slice", name, nil, in, st, en, ax)
		if err != nil {
			return nil, err
		}
		outs[i] = v
		start += s
	}
	return outs, nil
}
