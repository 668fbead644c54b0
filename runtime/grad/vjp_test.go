package grad

import (
	"math"
	"math/rand"
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// opCase builds a small graph whose f32 constants made with w are
// differentiated; the loss is Σ r·y for a fixed random r.
type opCase struct {
	name string
	// pos makes w's constants positive (Log, Sqrt, divisors, Pow bases).
	pos bool
	// kink marks piecewise ops: elements whose one-sided differences
	// disagree (a kink within h) are skipped, as a subgradient is
	// legitimately different there.
	kink  bool
	build func(b *builder) *ir.Value
}

type builder struct {
	t   *testing.T
	g   *ir.Graph
	rng *rand.Rand
	pos bool
	wrt []*ir.Value
}

// w adds a random f32 constant to differentiate. Magnitudes lie in
// [0.2, 1.2] so finite differences stay away from the kinks of Relu, Abs,
// Max and Clip.
func (b *builder) w(shape ...int64) *ir.Value {
	t := ir.MustTensor(ir.F32, shape...)
	for i := range t.F32() {
		x := 0.2 + b.rng.Float32()
		if !b.pos && b.rng.Intn(2) == 0 {
			x = -x
		}
		t.F32()[i] = x
	}
	v := b.g.AddConst("w", t)
	b.wrt = append(b.wrt, v)
	return v
}

func (b *builder) ints(xs ...int64) *ir.Value {
	return b.g.AddConst("i", ir.I64Tensor([]int64{int64(len(xs))}, xs))
}

func (b *builder) scalar(x float32) *ir.Value { return b.g.AddConst("s", ir.ScalarF32(x)) }

func (b *builder) op(op string, attrs ir.Attrs, args ...*ir.Value) *ir.Value {
	v, err := b.g.Add(op, op, attrs, args...)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func bin(op string, s1, s2 []int64) opCase {
	return opCase{name: op, pos: op == "Div", kink: op == "Max" || op == "Min", build: func(b *builder) *ir.Value {
		return b.op(op, nil, b.w(s1...), b.w(s2...))
	}}
}

func un(op string, attrs ir.Attrs, pos bool) opCase {
	kink := op == "Relu" || op == "Abs" || op == "LeakyRelu"
	return opCase{name: op, pos: pos, kink: kink, build: func(b *builder) *ir.Value { return b.op(op, attrs, b.w(3, 5)) }}
}

func sh(xs ...int64) []int64 { return xs }

var opCases = []opCase{
	bin("Add", sh(2, 3, 4), sh(2, 3, 4)),
	bin("Add", sh(2, 3, 4), sh(4)),
	bin("Sub", sh(2, 1, 4), sh(3, 1)),
	bin("Mul", sh(2, 3, 4), sh(3, 1)),
	bin("Mul", sh(1), sh(2, 3)),
	bin("Div", sh(2, 3, 4), sh(2, 1, 4)),
	bin("Max", sh(2, 3), sh(2, 3)),
	bin("Min", sh(2, 3), sh(3)),
	{name: "Pow2", build: func(b *builder) *ir.Value { return b.op("Pow", nil, b.w(2, 3), b.scalar(2)) }},
	{name: "Pow0.5", pos: true, build: func(b *builder) *ir.Value { return b.op("Pow", nil, b.w(2, 3), b.scalar(0.5)) }},
	{name: "PowInt", build: func(b *builder) *ir.Value {
		return b.op("Pow", nil, b.w(2, 3), b.g.AddConst("e", ir.ScalarI64(3)))
	}},
	un("Sqrt", nil, true), un("Erf", nil, false), un("Relu", nil, false), un("Neg", nil, false),
	un("Exp", nil, false), un("Log", nil, true), un("Tanh", nil, false), un("Sigmoid", nil, false),
	un("Abs", nil, false), un("Reciprocal", nil, true), un("Gelu", nil, false),
	un("Gelu", ir.Attrs{"approximate": "tanh"}, false), un("Identity", nil, false),
	un("Cast", ir.Attrs{"to": "f32"}, false), un("LeakyRelu", nil, false),
	{name: "Clip", kink: true, build: func(b *builder) *ir.Value {
		return b.op("Clip", nil, b.w(4, 5), b.scalar(-0.5), b.scalar(0.7))
	}},
	{name: "SoftmaxLast", build: func(b *builder) *ir.Value { return b.op("Softmax", nil, b.w(2, 3, 5)) }},
	{name: "SoftmaxMid", build: func(b *builder) *ir.Value {
		return b.op("Softmax", ir.Attrs{"axis": int64(1)}, b.w(2, 3, 5))
	}},
	{name: "LogSoftmax", build: func(b *builder) *ir.Value { return b.op("LogSoftmax", nil, b.w(3, 6)) }},
	{name: "LayerNorm", build: func(b *builder) *ir.Value {
		return b.op("LayerNormalization", nil, b.w(2, 3, 6), b.w(6), b.w(6))
	}},
	{name: "LayerNormAxis1", build: func(b *builder) *ir.Value {
		return b.op("LayerNormalization", ir.Attrs{"axis": int64(1)}, b.w(2, 3, 4), b.w(3, 4))
	}},
	{name: "ReduceMean", build: func(b *builder) *ir.Value {
		return b.op("ReduceMean", ir.Attrs{"axes": []int64{-1}}, b.w(2, 3, 4))
	}},
	{name: "ReduceSum", build: func(b *builder) *ir.Value {
		return b.op("ReduceSum", ir.Attrs{"axes": []int64{0, 2}, "keepdims": int64(0)}, b.w(2, 3, 4))
	}},
	{name: "ReduceSumAll", build: func(b *builder) *ir.Value { return b.op("ReduceSum", nil, b.w(2, 3)) }},
	{name: "ReduceSumSquare", build: func(b *builder) *ir.Value {
		return b.op("ReduceSumSquare", ir.Attrs{"axes": []int64{1}}, b.w(2, 3, 4))
	}},
	{name: "ReduceL2", build: func(b *builder) *ir.Value {
		return b.op("ReduceL2", ir.Attrs{"axes": []int64{1}}, b.w(2, 3, 4))
	}},
	{name: "MatMul2D", build: func(b *builder) *ir.Value { return b.op("MatMul", nil, b.w(3, 4), b.w(4, 5)) }},
	{name: "MatMulFold", build: func(b *builder) *ir.Value { return b.op("MatMul", nil, b.w(2, 3, 4), b.w(4, 5)) }},
	{name: "MatMulBatched", build: func(b *builder) *ir.Value {
		return b.op("MatMul", nil, b.w(2, 2, 3, 4), b.w(2, 2, 4, 5))
	}},
	{name: "MatMulBroadcast", build: func(b *builder) *ir.Value {
		return b.op("MatMul", nil, b.w(2, 1, 3, 4), b.w(3, 4, 2))
	}},
	{name: "MatMulVecL", build: func(b *builder) *ir.Value { return b.op("MatMul", nil, b.w(4), b.w(4, 5)) }},
	{name: "MatMulVecR", build: func(b *builder) *ir.Value { return b.op("MatMul", nil, b.w(3, 4), b.w(4)) }},
	{name: "Gemm", build: func(b *builder) *ir.Value {
		return b.op("Gemm", ir.Attrs{"alpha": float32(0.7), "beta": float32(1.3)}, b.w(3, 4), b.w(4, 5), b.w(5))
	}},
	{name: "GemmTA", build: func(b *builder) *ir.Value {
		return b.op("Gemm", ir.Attrs{"transA": int64(1)}, b.w(4, 3), b.w(4, 5), b.w(3, 5))
	}},
	{name: "GemmTB", build: func(b *builder) *ir.Value {
		return b.op("Gemm", ir.Attrs{"transB": int64(1), "alpha": float32(1.5)}, b.w(3, 4), b.w(5, 4), b.w(1, 5))
	}},
	{name: "GemmTATB", build: func(b *builder) *ir.Value {
		return b.op("Gemm", ir.Attrs{"transA": int64(1), "transB": int64(1)}, b.w(4, 3), b.w(5, 4))
	}},
	{name: "ConvGroupStridePad", build: func(b *builder) *ir.Value {
		return b.op("Conv", ir.Attrs{"group": int64(2), "strides": []int64{2, 2}, "pads": []int64{1, 1, 1, 1}},
			b.w(2, 4, 6, 6), b.w(6, 2, 3, 3), b.w(6))
	}},
	{name: "ConvDilated", build: func(b *builder) *ir.Value {
		return b.op("Conv", ir.Attrs{"dilations": []int64{2, 2}, "pads": []int64{0, 1, 2, 1}}, b.w(1, 2, 7, 6), b.w(3, 2, 2, 3))
	}},
	{name: "ConvPatch", build: func(b *builder) *ir.Value {
		return b.op("Conv", ir.Attrs{"strides": []int64{4, 4}}, b.w(1, 3, 8, 8), b.w(4, 3, 4, 4), b.w(4))
	}},
	{name: "Reshape", build: func(b *builder) *ir.Value { return b.op("Reshape", nil, b.w(2, 6), b.ints(3, -1)) }},
	{name: "Flatten", build: func(b *builder) *ir.Value { return b.op("Flatten", nil, b.w(2, 3, 2)) }},
	{name: "Squeeze", build: func(b *builder) *ir.Value { return b.op("Squeeze", nil, b.w(2, 1, 3), b.ints(1)) }},
	{name: "Unsqueeze", build: func(b *builder) *ir.Value { return b.op("Unsqueeze", nil, b.w(2, 3), b.ints(0, 3)) }},
	{name: "Transpose", build: func(b *builder) *ir.Value {
		return b.op("Transpose", ir.Attrs{"perm": []int64{2, 0, 1}}, b.w(2, 3, 4))
	}},
	{name: "SliceSteps", build: func(b *builder) *ir.Value {
		return b.op("Slice", nil, b.w(5, 7), b.ints(1, -1), b.ints(5, 0), b.ints(0, 1), b.ints(2, -2))
	}},
	{name: "SliceClamp", build: func(b *builder) *ir.Value {
		return b.op("Slice", nil, b.w(3, 4), b.ints(1), b.ints(math.MaxInt64), b.ints(-1))
	}},
	{name: "Gather", build: func(b *builder) *ir.Value {
		return b.op("Gather", ir.Attrs{"axis": int64(1)}, b.w(2, 4, 3), b.ints(3, 0, -1, 1))
	}},
	{name: "GatherScalar", build: func(b *builder) *ir.Value {
		return b.op("Gather", nil, b.w(3, 2, 4), b.g.AddConst("i", ir.ScalarI64(1)))
	}},
	{name: "Concat", build: func(b *builder) *ir.Value {
		return b.op("Concat", ir.Attrs{"axis": int64(1)}, b.w(2, 1, 3), b.w(2, 2, 3), b.w(2, 3, 3))
	}},
	{name: "Expand", build: func(b *builder) *ir.Value { return b.op("Expand", nil, b.w(3, 1), b.ints(2, 3, 4)) }},
	{name: "Where", build: func(b *builder) *ir.Value {
		cond := b.g.AddConst("c", &ir.Tensor{DType: ir.Bool, Shape: []int64{2, 1, 4}, Data: []bool{true, false, true, true, false, false, true, false}})
		return b.op("Where", nil, cond, b.w(3, 1), b.w(2, 3, 4))
	}},
	{name: "SelfAdd", build: func(b *builder) *ir.Value { x := b.w(2, 3); return b.op("Add", nil, x, x) }},
	{name: "Chain", build: func(b *builder) *ir.Value {
		// x used twice through different paths: accumulation of fan-out.
		x := b.w(2, 3)
		return b.op("Mul", nil, b.op("Tanh", nil, x), b.op("Softmax", nil, x))
	}},
}

func TestOpVJPs(t *testing.T) {
	for i, tc := range opCases {
		t.Run(tc.name, func(t *testing.T) { checkOp(t, tc, int64(i)) })
	}
}

func checkOp(t *testing.T, tc opCase, seed int64) {
	b := &builder{t: t, g: ir.NewGraph(tc.name), rng: rand.New(rand.NewSource(seed)), pos: tc.pos}
	out := tc.build(b)
	b.g.SetOutput("y", out)
	e, err := NewEngine(b.g, Options{Wrt: b.wrt})
	if err != nil {
		t.Fatal(err)
	}
	y := evalGraph(t, b.g)
	r := make([]float32, y.Len())
	for i := range r {
		r[i] = float32(b.rng.NormFloat64())
	}
	loss := func() float64 {
		var s float64
		for i, x := range evalGraph(t, b.g).F32() {
			s += float64(r[i]) * float64(x)
		}
		return s
	}
	res, err := e.prog.RunWith(nil, runtime.RunOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	grads := map[*ir.Value][]float32{}
	err = e.backward(res.Values, out, append([]float32{}, r...), func(w *ir.Value, g []float32) { grads[w] = g })
	if err != nil {
		t.Fatal(err)
	}
	const h = 1e-2
	for _, w := range b.wrt {
		data := w.Const.F32()
		gw := grads[w]
		if gw == nil {
			gw = make([]float32, len(data))
		}
		for j := range data {
			orig := data[j]
			data[j] = orig + h
			lp := loss()
			data[j] = orig - h
			lm := loss()
			data[j] = orig
			fd := (lp - lm) / (2 * h)
			if tc.kink {
				l0 := loss()
				if math.Abs((lp-l0)-(l0-lm))/h > 1e-2 {
					continue
				}
			}
			if d := math.Abs(fd - float64(gw[j])); d > 3e-3+1e-2*math.Abs(fd) {
				t.Errorf("%s: d/d %s[%d]: analytic %.6g, finite difference %.6g", tc.name, w, j, gw[j], fd)
			}
		}
	}
}

// evalGraph compiles afresh each time: programs cache packed weights, and
// the finite differences change weights in place.
func evalGraph(t *testing.T, g *ir.Graph) *ir.Tensor {
	t.Helper()
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(nil)
	if err != nil {
		t.Fatal(err)
	}
	return out[g.Outputs[0].Name]
}

func TestUnsupportedOpIsError(t *testing.T) {
	b := &builder{t: t, g: ir.NewGraph("u"), rng: rand.New(rand.NewSource(1))}
	y := b.op("Floor", nil, b.w(2, 3))
	b.g.SetOutput("y", y)
	_, err := NewEngine(b.g, Options{})
	if err == nil {
		t.Fatal("want an error for Floor on the gradient path")
	}
	t.Log(err)
}
