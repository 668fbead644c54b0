package conformance

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	onnxout "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// opCase builds a one-op graph over a random f32 input x of shape in.
type opCase struct {
	name  string
	in    []int64
	build func(g *ir.Graph, x *ir.Value) (*ir.Value, error)
}

func randTensor(rng *rand.Rand, shape []int64) *ir.Tensor {
	t := ir.MustTensor(ir.F32, shape...)
	for i := range t.F32() {
		t.F32()[i] = float32(rng.NormFloat64())
	}
	return t
}

func i64(g *ir.Graph, xs ...int64) *ir.Value {
	return g.AddConst("", ir.I64Tensor([]int64{int64(len(xs))}, xs))
}

// TestOpsAgainstORT checks each runtime kernel, including edge forms the
// DeiT exports do not exercise, against ONNX Runtime on random data.
func TestOpsAgainstORT(t *testing.T) {
	r := ort.NewTestRunner(t)
	rng := rand.New(rand.NewSource(7))
	w := func(g *ir.Graph, shape ...int64) *ir.Value { return g.AddConst("", randTensor(rng, shape)) }
	cases := []opCase{
		{"matmul_batched_broadcast", []int64{2, 3, 5, 4}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("MatMul", "", nil, x, w(g, 3, 4, 6))
		}},
		{"matmul_weight", []int64{2, 7, 4}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("MatMul", "", nil, x, w(g, 4, 9))
		}},
		{"matmul_vector", []int64{4}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("MatMul", "", nil, x, w(g, 4, 3))
		}},
		{"gemm_transA_alpha_beta", []int64{4, 3}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("Gemm", "", ir.Attrs{"transA": int64(1), "transB": int64(1), "alpha": float32(0.5), "beta": float32(2)}, x, w(g, 5, 4), w(g, 3, 1))
		}},
		{"gemm_bias", []int64{6, 8}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("Gemm", "", ir.Attrs{"transB": int64(1)}, x, w(g, 5, 8), w(g, 5))
		}},
		{"conv_pad_stride_group", []int64{2, 4, 9, 7}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("Conv", "", ir.Attrs{"pads": []int64{1, 2, 1, 0}, "strides": []int64{2, 1}, "group": int64(2), "dilations": []int64{1, 2}}, x, w(g, 6, 2, 3, 3), w(g, 6))
		}},
		{"softmax_axis1", []int64{2, 5, 3}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("Softmax", "", ir.Attrs{"axis": int64(1)}, x)
		}},
		{"logsoftmax", []int64{3, 7}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("LogSoftmax", "", nil, x)
		}},
		{"layernorm_axis1", []int64{2, 3, 4}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("LayerNormalization", "", ir.Attrs{"axis": int64(1), "epsilon": float32(1e-3)}, x, w(g, 3, 4), w(g, 3, 4))
		}},
		{"reducemean_middle", []int64{2, 3, 4}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("ReduceMean", "", ir.Attrs{"axes": []int64{1}, "keepdims": int64(0)}, x)
		}},
		{"reducesum_all", []int64{2, 3, 4}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("ReduceSum", "", ir.Attrs{"axes": []int64{0, 2}}, x)
		}},
		{"reducemax_last", []int64{3, 5}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("ReduceMax", "", ir.Attrs{"axes": []int64{-1}}, x)
		}},
		{"transpose", []int64{2, 3, 4, 5}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("Transpose", "", ir.Attrs{"perm": []int64{2, 0, 3, 1}}, x)
		}},
		{"slice_negative_step", []int64{6, 5}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("Slice", "", nil, x, i64(g, -1, 1), i64(g, -7, 5), i64(g, 0, 1), i64(g, -2, 2))
		}},
		{"gather_axis1_matrix_indices", []int64{3, 5, 2}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			idx := g.AddConst("", ir.I64Tensor([]int64{2, 2}, []int64{0, -1, 2, 2}))
			return g.Add("Gather", "", ir.Attrs{"axis": int64(1)}, x, idx)
		}},
		{"concat_expand", []int64{2, 1, 3}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			e, err := g.Add("Expand", "", nil, x, i64(g, 2, 4, 3))
			if err != nil {
				return nil, err
			}
			return g.Add("Concat", "", ir.Attrs{"axis": int64(1)}, x, e)
		}},
		{"tile", []int64{2, 3}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			return g.Add("Tile", "", nil, x, i64(g, 2, 3))
		}},
		{"broadcast_arith", []int64{3, 1, 4}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			a, err := g.Add("Sub", "", nil, x, w(g, 5, 1))
			if err != nil {
				return nil, err
			}
			b, err := g.Add("Div", "", nil, a, w(g, 4))
			if err != nil {
				return nil, err
			}
			c, err := g.Add("Max", "", nil, b, w(g, 1, 5, 4))
			if err != nil {
				return nil, err
			}
			two := g.AddConst("", ir.ScalarF32(2))
			return g.Add("Pow", "", nil, c, two)
		}},
		{"unary_chain", []int64{4, 6}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			v := x
			for _, op := range []string{"Erf", "Tanh", "Sigmoid", "Exp", "Sqrt", "Neg", "Abs", "Relu", "Log", "Reciprocal", "Floor", "Sin", "Cos"} {
				var err error
				if v, err = g.Add(op, "", nil, v); err != nil {
					return nil, err
				}
			}
			return v, nil
		}},
		{"gelu_tanh_leakyrelu_clip", []int64{3, 8}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			a, err := g.Add("Gelu", "", ir.Attrs{"approximate": "tanh"}, x)
			if err != nil {
				return nil, err
			}
			b, err := g.Add("LeakyRelu", "", ir.Attrs{"alpha": float32(0.1)}, a)
			if err != nil {
				return nil, err
			}
			return g.Add("Clip", "", nil, b, g.AddConst("", ir.ScalarF32(-0.2)), g.AddConst("", ir.ScalarF32(0.7)))
		}},
		{"where_equal_cast", []int64{2, 5}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			pos, err := g.Add("Greater", "", nil, x, g.AddConst("", ir.ScalarF32(0)))
			if err != nil {
				return nil, err
			}
			f, err := g.Add("Cast", "", ir.Attrs{"to": "f32"}, pos)
			if err != nil {
				return nil, err
			}
			return g.Add("Where", "", nil, pos, f, x)
		}},
		{"flatten_reshape_squeeze", []int64{2, 3, 1, 4}, func(g *ir.Graph, x *ir.Value) (*ir.Value, error) {
			s, err := g.Add("Squeeze", "", nil, x, i64(g, 2))
			if err != nil {
				return nil, err
			}
			r, err := g.Add("Reshape", "", nil, s, i64(g, 0, -1))
			if err != nil {
				return nil, err
			}
			u, err := g.Add("Unsqueeze", "", nil, r, i64(g, 0, 3))
			if err != nil {
				return nil, err
			}
			return g.Add("Flatten", "", ir.Attrs{"axis": int64(2)}, u)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := ir.NewGraph(tc.name)
			x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(tc.in...)))
			y, err := tc.build(g, x)
			if err != nil {
				t.Fatal(err)
			}
			g.SetOutput("y", y)
			if err := ir.Verify(g); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "m.onnx")
			if err := onnxout.Write(path, g, onnxout.Options{}); err != nil {
				t.Fatal(err)
			}
			xt := randTensor(rng, tc.in)
			xa, _ := data.FromTensor(xt)
			want, err := r.Run(path, map[string]*tensorio.Array{"x": xa}, 1)
			if err != nil {
				t.Fatal(err)
			}
			p, err := runtime.Compile(g)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Run(map[string]*ir.Tensor{"x": xt})
			if err != nil {
				t.Fatal(err)
			}
			wy := want["y"]
			if fmt.Sprint(wy.Shape) != fmt.Sprint(got["y"].Shape) && !(len(wy.Shape) == len(got["y"].Shape)) {
				t.Fatalf("shape %v, ORT %v", got["y"].Shape, wy.Shape)
			}
			for i, d := range got["y"].Shape {
				if int(d) != wy.Shape[i] {
					t.Fatalf("shape %v, ORT %v", got["y"].Shape, wy.Shape)
				}
			}
			if d := maxRelDiff(got["y"].F32(), wy.Data.([]float32)); d > 1e-5 {
				t.Errorf("max diff %.3g vs ONNX Runtime\nours %v\nORT  %v", d, got["y"].F32(), wy.Data)
			}
		})
	}
}

// maxRelDiff is |a-b| / max(1, |b|), elementwise max; NaNs must agree.
func maxRelDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return 1e9
	}
	var m float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		if x != x || y != y {
			if (x != x) != (y != y) {
				return 1e9
			}
			continue
		}
		d := x - y
		if d < 0 {
			d = -d
		}
		s := y
		if s < 0 {
			s = -s
		}
		m = max(m, d/max(1, s))
	}
	return m
}
