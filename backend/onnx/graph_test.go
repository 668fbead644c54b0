package onnx

import (
	"testing"

	"github.com/pqvc/pqvc/ir"
)

// builder adds values to a graph and fails the test on the first error, so
// test graphs read like the IR they build.
type builder struct {
	t *testing.T
	g *ir.Graph
}

func (b *builder) op(op, name string, attrs ir.Attrs, args ...*ir.Value) *ir.Value {
	b.t.Helper()
	v, err := b.g.Add(op, name, attrs, args...)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func (b *builder) f32(name string, shape []int64, data ...float32) *ir.Value {
	if len(data) == 0 {
		n := 1
		for _, d := range shape {
			n *= int(d)
		}
		data = make([]float32, n)
		for i := range data {
			data[i] = float32(i%7)*0.25 - 0.5
		}
	}
	return b.g.AddConst(name, ir.F32Tensor(shape, data))
}

func (b *builder) i64(name string, vals ...int64) *ir.Value {
	return b.g.AddConst(name, ir.I64Tensor([]int64{int64(len(vals))}, vals))
}

func (b *builder) scalar(name string, dt ir.DType, x float64) *ir.Value {
	t := ir.MustTensor(dt)
	switch d := t.Data.(type) {
	case []float32:
		d[0] = float32(x)
	case []uint8:
		d[0] = uint8(x)
	case []int8:
		d[0] = int8(x)
	case []int32:
		d[0] = int32(x)
	case []int64:
		d[0] = int64(x)
	}
	return b.g.AddConst(name, t)
}

// allOpsGraph builds a graph that uses every op of the IR that ONNX has at
// the given opset (Gelu from 20, LayerNormalization from 17) except
// Identity, which the frontend reads as an alias, so that a round trip
// through the frontend prints identically. Every value reaches an output
// and every name is unique.
func allOpsGraph(t *testing.T, opset int) *ir.Graph {
	t.Helper()
	g := ir.NewGraph("allops")
	g.Opset = opset
	g.Meta = map[string]string{"producer_name": "pqvc-test", "producer_version": "0", "doc": "every op"}
	b := &builder{t: t, g: g}
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.Shape{ir.Sym("batch"), ir.Static(4), ir.Static(8), ir.Static(8)}))

	// Convolutions and unary elementwise ops.
	c := b.op("Conv", "conv", ir.Attrs{"pads": []int64{1, 1, 1, 1}, "strides": []int64{1, 1}, "kernel_shape": []int64{3, 3}},
		x, b.f32("conv.w", []int64{4, 4, 3, 3}), b.f32("conv.b", []int64{4}))
	h := c
	for _, op := range []string{"Relu", "Sigmoid", "Tanh", "Exp", "Log", "Abs", "Neg", "Erf", "Sin", "Cos",
		"Floor", "Ceil", "Round", "Sign", "Reciprocal"} {
		h = b.op(op, "u."+op, nil, h)
	}
	h = b.op("Sqrt", "u.sqrt", nil, b.op("Abs", "u.abs2", nil, h))
	h = b.op("LeakyRelu", "u.leaky", ir.Attrs{"alpha": float32(0.1)}, h)
	h = b.op("HardSigmoid", "u.hsig", ir.Attrs{"alpha": float32(0.25), "beta": float32(0.5)}, h)
	h = b.op("Clip", "u.clip", nil, h, b.scalar("clip.min", ir.F32, -1), b.scalar("clip.max", ir.F32, 1))
	h = b.op("Clip", "u.clip_hi", nil, h, nil, b.scalar("clip.max2", ir.F32, 0.75)) // omitted optional input
	if opset >= 20 {
		h = b.op("Gelu", "u.gelu", ir.Attrs{"approximate": "tanh"}, h)
		h = b.op("Gelu", "u.gelu_erf", nil, h)
	}

	// Binary and logical elementwise ops.
	two := b.scalar("two", ir.F32, 2)
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"} {
		h = b.op(op, "b."+op, nil, h, two)
	}
	h = b.op("Mod", "b.fmod", ir.Attrs{"fmod": int64(1)}, h, two)
	cond := b.op("Less", "l.less", nil, h, two)
	for _, op := range []string{"Equal", "Greater", "LessOrEqual", "GreaterOrEqual"} {
		cond = b.op("And", "l.and_"+op, nil, cond, b.op(op, "l."+op, nil, h, two))
	}
	cond = b.op("Or", "l.or", nil, cond, b.op("Xor", "l.xor", nil, cond, b.op("Not", "l.not", nil, cond)))
	h = b.op("Where", "l.where", nil, cond, h, two)
	h = b.op("Cast", "cast.f16", ir.Attrs{"to": "f16"}, h)
	h = b.op("Cast", "cast.f32", ir.Attrs{"to": "f32"}, h)

	// Shape ops: [batch,4,8,8] → [batch,64,4] and back through most of them.
	flat := b.op("Reshape", "s.reshape", nil, h, b.i64("s.shape", 0, 4, 64))
	tr := b.op("Transpose", "s.transpose", ir.Attrs{"perm": []int64{0, 2, 1}}, flat) // [batch,64,4]
	sl := b.op("Slice", "s.slice", nil, tr, b.i64("s.starts", 0), b.i64("s.ends", 3), b.i64("s.axes", 2), b.i64("s.steps", 1))
	un := b.op("Unsqueeze", "s.unsqueeze", nil, sl, b.i64("s.uaxes", 1)) // [batch,1,64,3]
	sq := b.op("Squeeze", "s.squeeze", nil, un, b.i64("s.saxes", 1))
	cat := b.op("Concat", "s.concat", ir.Attrs{"axis": int64(2)}, sq, b.op("Slice", "s.slice1", nil, tr,
		b.i64("s.starts1", 3), b.i64("s.ends1", 4), b.i64("s.axes1", -1))) // [batch,64,4]
	gat := b.op("Gather", "s.gather", ir.Attrs{"axis": int64(1)}, cat, b.i64("s.idx", 0, 2, 4, 6)) // [batch,4,4]
	var shp *ir.Value
	if opset >= 15 {
		shp = b.op("Shape", "s.shape_tail", ir.Attrs{"start": int64(1)}, gat)
		shp = b.op("Concat", "s.shape_cat", ir.Attrs{"axis": int64(0)}, b.i64("s.one", 1), shp)
	} else {
		shp = b.op("Shape", "s.shape_of", nil, gat)
	}
	ex := b.op("Expand", "s.expand", nil, b.f32("s.bias", []int64{4}), shp)
	fill := b.op("ConstantOfShape", "s.fill", ir.Attrs{"value": ir.F32Tensor([]int64{1}, []float32{0.5})}, shp)
	rng := b.op("Range", "s.range", nil, b.scalar("r.start", ir.F32, 0), b.scalar("r.limit", ir.F32, 4), b.scalar("r.delta", ir.F32, 1))
	tile := b.op("Tile", "s.tile", nil, rng, b.i64("s.reps", 1))
	h = b.op("Add", "s.sum", nil, b.op("Add", "s.sum0", nil, gat, ex), b.op("Mul", "s.sum1", nil, fill, tile))
	fl := b.op("Flatten", "s.flatten", ir.Attrs{"axis": int64(1)}, h) // [batch,16]

	// Matrix ops, normalisation and reductions.
	mm := b.op("MatMul", "m.matmul", nil, fl, b.f32("m.w", []int64{16, 8}))
	gm := b.op("Gemm", "m.gemm", ir.Attrs{"transB": int64(1), "alpha": float32(0.5)}, mm, b.f32("m.w2", []int64{6, 8}), b.f32("m.b2", []int64{6}))
	if opset >= 17 {
		gm = b.op("LayerNormalization", "m.ln", ir.Attrs{"epsilon": float32(1e-6)}, gm, b.f32("m.gamma", []int64{6}), b.f32("m.beta", []int64{6}))
	}
	sm := b.op("Softmax", "m.softmax", ir.Attrs{"axis": int64(1)}, gm)
	lsm := b.op("LogSoftmax", "m.logsoftmax", nil, sm)
	var reds []*ir.Value
	for _, op := range []string{"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare"} {
		reds = append(reds, b.op(op, "r."+op, ir.Attrs{"axes": []int64{-1}}, lsm))
	}
	reds = append(reds, b.op("ReduceSum", "r.sum", ir.Attrs{"axes": []int64{1}, "keepdims": int64(1)}, lsm))
	reds = append(reds, b.op("ReduceMean", "r.all", ir.Attrs{"keepdims": int64(0)}, lsm)) // every axis, no axes
	gap := b.op("GlobalAveragePool", "m.gap", nil, c)
	if opset >= 18 {
		reds = append(reds, b.op("ReduceMax", "r.noop", ir.Attrs{"noop_with_empty_axes": int64(1)}, lsm))
	}

	// Quantization.
	qs, qz := b.scalar("q.scale", ir.F32, 0.05), b.scalar("q.zp", ir.U8, 128)
	q := b.op("QuantizeLinear", "q.x", nil, fl, qs, qz) // u8 [batch,16]
	dq := b.op("DequantizeLinear", "q.dq", nil, q, qs, qz)
	w8 := b.g.AddConst("q.w8", &ir.Tensor{DType: ir.I8, Shape: []int64{16, 8}, Data: make([]int8, 128)})
	wsc := b.f32("q.wscale", []int64{8}, 0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2)
	wzp := b.g.AddConst("q.wzp", &ir.Tensor{DType: ir.I8, Shape: []int64{8}, Data: make([]int8, 8)})
	dqw := b.op("DequantizeLinear", "q.dqw", ir.Attrs{"axis": int64(1)}, w8, wsc, wzp) // per channel
	mi := b.op("MatMulInteger", "q.mmi", nil, q, b.g.AddConst("q.wu8", &ir.Tensor{DType: ir.U8, Shape: []int64{16, 8}, Data: make([]uint8, 128)}), qz)
	qmm := b.op("QLinearMatMul", "q.qmm", nil, q, qs, qz,
		b.g.AddConst("q.wu8b", &ir.Tensor{DType: ir.U8, Shape: []int64{16, 8}, Data: make([]uint8, 128)}), qs, qz, qs, qz)
	qx := b.op("QuantizeLinear", "q.xc", nil, x, qs, qz) // u8 [batch,4,8,8]
	wc := b.g.AddConst("q.wc", &ir.Tensor{DType: ir.U8, Shape: []int64{2, 4, 1, 1}, Data: make([]uint8, 8)})
	ci := b.op("ConvInteger", "q.convi", nil, qx, wc, qz, qz)
	qc := b.op("QLinearConv", "q.qconv", nil, qx, qs, qz, wc, qs, qz, qs, qz,
		b.g.AddConst("q.bias", &ir.Tensor{DType: ir.I32, Shape: []int64{2}, Data: []int32{1, -1}}))

	g.SetOutput("logits", lsm)
	for i, r := range reds {
		g.SetOutput(r.Name, reds[i])
	}
	for _, v := range []*ir.Value{gap, dq, dqw, mi, qmm, ci, qc} {
		g.SetOutput(v.Name, v)
	}
	if err := ir.Verify(g); err != nil {
		t.Fatalf("test graph: %v", err)
	}
	return g
}
