package runtime_test

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// qb builds small graphs for the quantized-kernel tests.
type qb struct {
	t *testing.T
	g *ir.Graph
}

func (b qb) add(op, name string, attrs ir.Attrs, args ...*ir.Value) *ir.Value {
	b.t.Helper()
	v, err := b.g.Add(op, name, attrs, args...)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func (b qb) c(name string, dt ir.DType, shape []int64, xs ...float64) *ir.Value {
	t := ir.MustTensor(dt, shape...)
	for i, x := range xs {
		switch d := t.Data.(type) {
		case []float32:
			d[i] = float32(x)
		case []uint8:
			d[i] = uint8(x)
		case []int8:
			d[i] = int8(x)
		case []int32:
			d[i] = int32(x)
		}
	}
	return b.g.AddConst(name, t)
}

func run1(t *testing.T, g *ir.Graph, in map[string]*ir.Tensor) map[string]*ir.Tensor {
	t.Helper()
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestQuantizeLinearHand checks ties, saturation and per-axis parameters
// against values worked out by hand from the ONNX spec.
func TestQuantizeLinearHand(t *testing.T) {
	g := ir.NewGraph("q")
	b := qb{t, g}
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(2, 4)))
	one := b.c("one", ir.F32, nil, 1)
	g.SetOutput("u8", b.add("QuantizeLinear", "u8", nil, x, one, b.c("z0", ir.U8, nil, 0)))
	g.SetOutput("u8z", b.add("QuantizeLinear", "u8z", nil, x, one, b.c("z10", ir.U8, nil, 10)))
	g.SetOutput("i8", b.add("QuantizeLinear", "i8", nil, x, one, b.c("zi", ir.I8, nil, 0)))
	g.SetOutput("ax0", b.add("QuantizeLinear", "ax0", ir.Attrs{"axis": int64(0)}, x,
		b.c("s0", ir.F32, []int64{2}, 1, 0.5), b.c("zp0", ir.I8, []int64{2}, 0, -3)))
	g.SetOutput("ax1", b.add("QuantizeLinear", "ax1", ir.Attrs{"axis": int64(1)}, x,
		b.c("s1", ir.F32, []int64{4}, 1, 2, 4, 0.25), b.c("zp1", ir.U8, []int64{4}, 0, 1, 2, 3)))
	q := b.add("QuantizeLinear", "q", nil, x, b.c("half", ir.F32, nil, 0.5), b.c("z7", ir.I8, nil, 7))
	g.SetOutput("dq", b.add("DequantizeLinear", "dq", nil, q, b.c("half2", ir.F32, nil, 0.5), b.c("z7b", ir.I8, nil, 7)))
	in := ir.F32Tensor([]int64{2, 4}, []float32{0.5, 1.5, 2.5, -0.5, -1.5, 300, -300, 126.5})
	out := run1(t, g, map[string]*ir.Tensor{"x": in})
	want := map[string][]int64{
		"u8":  {0, 2, 2, 0, 0, 255, 0, 126},     // half to even; saturate at 0 and 255
		"u8z": {10, 12, 12, 10, 8, 255, 0, 136}, // zp added after rounding
		"i8":  {0, 2, 2, 0, -2, 127, -128, 126}, // -1.5 → -2 (even)
		"ax0": {0, 2, 2, 0, -6, 127, -128, 127}, // row 1: x/0.5 − 3
		// Columns with scales (1, 2, 4, 0.25) and zero points (0, 1, 2, 3).
		// Row 0: 0.5→0; 0.75→1, +1; 0.625→1, +2; −2, +3.
		// Row 1: −1.5→−2 saturates to 0; 150+1; −75+2 saturates; 506 saturates.
		"ax1": {0, 2, 3, 1, 0, 151, 0, 255},
	}
	for name, w := range want {
		got, err := out[name].AsInt64s()
		if err != nil || !slices.Equal(got, w) {
			t.Errorf("%s = %v, want %v (%v)", name, got, w, err)
		}
	}
	// DequantizeLinear(QuantizeLinear(x)) with scale 0.5, zp 7 (i8): the
	// result is on the 0.5 grid and saturates at (−128−7)·0.5 and (127−7)·0.5.
	wantDQ := []float32{0.5, 1.5, 2.5, -0.5, -1.5, 60, -67.5, 60}
	if got := out["dq"].F32(); !slices.Equal(got, wantDQ) {
		t.Errorf("dq = %v, want %v", got, wantDQ)
	}
}

// TestMatMulIntegerHand checks zero points on both sides, per-column B
// zero points, and QLinearMatMul's requantization, against a loop.
func TestMatMulIntegerHand(t *testing.T) {
	const m, k, n = 5, 37, 9
	g := ir.NewGraph("mmi")
	b := qb{t, g}
	a := g.AddInput("a", ir.TensorType(ir.U8, ir.StaticShape(m, k)))
	as := g.AddInput("as", ir.TensorType(ir.I8, ir.StaticShape(m, k)))
	wv := make([]float64, k*n)
	for i := range wv {
		wv[i] = float64((i*37)%255 - 127)
	}
	w := b.c("w", ir.I8, []int64{k, n}, wv...)
	bz := make([]float64, n)
	for j := range bz {
		bz[j] = float64(j - 4)
	}
	g.SetOutput("u8s8", b.add("MatMulInteger", "u8s8", nil, a, w, b.c("az", ir.U8, nil, 3), b.c("bz", ir.I8, []int64{n}, bz...)))
	g.SetOutput("s8s8", b.add("MatMulInteger", "s8s8", nil, as, w, b.c("asz", ir.I8, nil, -2), b.c("bz1", ir.I8, nil, 5)))
	g.SetOutput("ql", b.add("QLinearMatMul", "ql", nil, a, b.c("sa", ir.F32, nil, 0.02), b.c("az2", ir.U8, nil, 3),
		w, b.c("sw", ir.F32, nil, 0.01), b.c("wz", ir.I8, nil, 0), b.c("sy", ir.F32, nil, 0.5), b.c("yz", ir.U8, nil, 128)))
	ad, asd := make([]uint8, m*k), make([]int8, m*k)
	for i := range ad {
		ad[i], asd[i] = uint8(i*13%256), int8(i*29%256-128)
	}
	out := run1(t, g, map[string]*ir.Tensor{"a": {DType: ir.U8, Shape: []int64{m, k}, Data: ad}, "as": {DType: ir.I8, Shape: []int64{m, k}, Data: asd}})
	u8s8, s8s8, ql := out["u8s8"].Data.([]int32), out["s8s8"].Data.([]int32), out["ql"].Data.([]uint8)
	for i := range m {
		for j := range n {
			var s1, s2, s3 int32
			for kk := range k {
				wq := int32(wv[kk*n+j])
				s1 += (int32(ad[i*k+kk]) - 3) * (wq - int32(bz[j]))
				s2 += (int32(asd[i*k+kk]) + 2) * (wq - 5)
				s3 += (int32(ad[i*k+kk]) - 3) * wq
			}
			if u8s8[i*n+j] != s1 || s8s8[i*n+j] != s2 {
				t.Fatalf("(%d,%d): u8s8 %d want %d, s8s8 %d want %d", i, j, u8s8[i*n+j], s1, s8s8[i*n+j], s2)
			}
			mult := float32(0.02) * float32(0.01) / float32(0.5)
			q := math.RoundToEven(float64(float32(s3)*mult)) + 128
			if want := uint8(min(max(q, 0), 255)); ql[i*n+j] != want {
				t.Fatalf("ql (%d,%d) = %d, want %d", i, j, ql[i*n+j], want)
			}
		}
	}
}

// oracleGraph has one output per quantized kernel, on inputs chosen so that
// many x/scale land exactly on .5 ties.
func oracleGraph(t *testing.T) *ir.Graph {
	g := ir.NewGraph("quant_oracle")
	b := qb{t, g}
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(6, 16)))
	img := g.AddInput("img", ir.TensorType(ir.F32, ir.StaticShape(1, 2, 6, 6)))
	s := b.c("s", ir.F32, nil, 0.05)
	qx := b.add("QuantizeLinear", "qx", nil, x, s, b.c("zx", ir.U8, nil, 120))
	qs := b.add("QuantizeLinear", "qs", nil, x, s, b.c("zs", ir.I8, nil, -5))
	sc := make([]float64, 16)
	for i := range sc {
		sc[i] = 0.01 * float64(i+1)
	}
	qc := b.add("QuantizeLinear", "qc", ir.Attrs{"axis": int64(1)}, x, b.c("sc", ir.F32, []int64{16}, sc...), b.c("zc", ir.I8, []int64{16}, make([]float64, 16)...))
	g.SetOutput("qx", qx)
	g.SetOutput("qs", qs)
	g.SetOutput("qc", qc)
	g.SetOutput("dqc", b.add("DequantizeLinear", "dqc", ir.Attrs{"axis": int64(1)}, qc, b.c("sc2", ir.F32, []int64{16}, sc...), b.c("zc2", ir.I8, []int64{16}, make([]float64, 16)...)))
	wv := make([]float64, 16*8)
	for i := range wv {
		wv[i] = float64((i*53)%255 - 127)
	}
	w := b.c("w", ir.I8, []int64{16, 8}, wv...)
	g.SetOutput("mmi", b.add("MatMulInteger", "mmi", nil, qx, w, b.c("zx2", ir.U8, nil, 120)))
	g.SetOutput("mmi_ss", b.add("MatMulInteger", "mmi_ss", nil, qs, w, b.c("zs2", ir.I8, nil, -5), b.c("wz0", ir.I8, nil, 0)))
	g.SetOutput("qlmm", b.add("QLinearMatMul", "qlmm", nil, qx, s, b.c("zx3", ir.U8, nil, 120), w, b.c("sw", ir.F32, nil, 0.004),
		b.c("wz", ir.I8, nil, 0), b.c("sy", ir.F32, nil, 0.07), b.c("zy", ir.U8, nil, 100)))
	qi := b.add("QuantizeLinear", "qi", nil, img, s, b.c("zi", ir.U8, nil, 128))
	cw := make([]float64, 3*2*3*3)
	for i := range cw {
		cw[i] = float64((i*31)%41 - 20)
	}
	wc := b.c("wc", ir.I8, []int64{3, 2, 3, 3}, cw...)
	conv := ir.Attrs{"pads": []int64{1, 1, 1, 1}, "strides": []int64{2, 1}}
	g.SetOutput("convi", b.add("ConvInteger", "convi", conv.Clone(), qi, wc, b.c("zi2", ir.U8, nil, 128)))
	g.SetOutput("qlconv", b.add("QLinearConv", "qlconv", conv, qi, s, b.c("zi3", ir.U8, nil, 128), wc, b.c("swc", ir.F32, []int64{3}, 0.01, 0.02, 0.03),
		b.c("wzc", ir.I8, []int64{3}, 0, 0, 0), b.c("syc", ir.F32, nil, 0.2), b.c("zyc", ir.U8, nil, 90), b.c("bias", ir.I32, []int64{3}, 100, -2000, 7)))
	// f16: computation in half precision between Casts, as quantize fp16 emits.
	h := b.add("Cast", "h", ir.Attrs{"to": "f16"}, x)
	wh := ir.MustTensor(ir.F16, 16, 4)
	for i := range wh.Data.([]uint16) {
		wh.Data.([]uint16)[i] = ir.F32ToF16(float32(i%7) * 0.125)
	}
	mm := b.add("MatMul", "mmh", nil, h, g.AddConst("wh", wh))
	act := b.add("Gelu", "gelu", nil, b.add("Add", "addh", nil, mm, mm))
	g.SetOutput("f16", b.add("Cast", "f16out", ir.Attrs{"to": "f32"}, b.add("Softmax", "smh", nil, act)))
	return g
}

func oracleInputs() map[string]*ir.Tensor {
	x := make([]float32, 6*16)
	for i := range x {
		x[i] = float32(i%23-11) * 0.025 * float32(1+i%3) // many multiples of 0.025: ties at scale 0.05
	}
	img := make([]float32, 72)
	for i := range img {
		img[i] = float32(i%17-8) * 0.075
	}
	return map[string]*ir.Tensor{"x": ir.F32Tensor([]int64{6, 16}, x), "img": ir.F32Tensor([]int64{1, 2, 6, 6}, img)}
}

// TestQuantKernelsORT runs every quantized kernel (and an f16 chain) in our
// runtime and in ONNX Runtime: integer outputs must match exactly, float
// outputs to 1e-6 (f32) or one f16 ulp.
func TestQuantKernelsORT(t *testing.T) {
	r := ort.NewTestRunner(t)
	g := oracleGraph(t)
	if err := ir.Verify(g); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "quant.onnx")
	if err := onnx.Write(file, g, onnx.Options{}); err != nil {
		t.Fatal(err)
	}
	in := oracleInputs()
	ours := run1(t, g, in)
	arrs := map[string]*tensorio.Array{}
	for k, v := range in {
		arrs[k], _ = data.FromTensor(v)
	}
	theirs, err := r.Run(file, arrs, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range g.Outputs {
		want, err := data.ToTensor(theirs[o.Name])
		if err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
		got := ours[o.Name]
		if got.DType != want.DType || fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
			t.Errorf("%s: ours %v%v, ORT %v%v", o.Name, got.DType, got.Shape, want.DType, want.Shape)
			continue
		}
		gf, _ := got.AsFloat64s()
		wf, _ := want.AsFloat64s()
		tol := 0.0
		if got.DType == ir.F32 {
			tol = 1e-6
			if o.Name == "f16" {
				tol = 1e-3 // one f16 ulp near 1
			}
		}
		d := 0.0
		for i := range gf {
			d = max(d, math.Abs(gf[i]-wf[i]))
		}
		if d > tol {
			t.Errorf("%s: ours and ORT differ by %g (tolerance %g)\nours %v\nORT  %v", o.Name, d, tol, gf, wf)
		}
	}
}
