// Copyright 2026 The pqvc Authors.

package gocode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// SampleInputs returns deterministic inputs for the static graph sg:
// values in [-1, 1) from a fixed linear congruential sequence, so emits
// are reproducible.
func SampleInputs(sg *ir.Graph) (map[string]*ir.Tensor, error) {
	ins := map[string]*ir.Tensor{}
	state := uint64(0x9e3779b97f4a7c15)
	for _, in := range sg.Inputs {
		d, err := staticDims(in)
		if err != nil {
			return nil, err
		}
		data := make([]float32, numel(d))
		for i := range data {
			state = state*6364136223846793005 + 1442695040888963407
			data[i] = float32(state>>40)/float32(1<<24)*2 - 1
		}
		shape := make([]int64, len(d))
		for i, x := range d {
			shape[i] = int64(x)
		}
		ins[in.Name] = ir.F32Tensor(shape, data)
	}
	return ins, nil
}

// Tolerance is the largest difference the generated test accepts between
// the generated code and pqvc's runtime on output o: 1e-4 (relative to
// magnitudes above 1) for float graphs. In a dynamically quantized graph
// the two differ in the last float bits (the generated code uses the vector
// exp and erf, the runtime the scalar ones), so an activation on a rounding
// boundary can land on the neighbouring int8 step. When o comes from an
// int8 product (MatMulInteger, Cast, Mul by the scale product, optional
// bias Add), the tolerance is one step of that product's input on every
// element: scale·max_j Σ_k |W_kj|, with scale the run-time
// activation·weight scale product. Otherwise it is three steps of the
// output's range, 3·max|y|/127.
func Tolerance(o *ir.Value, scalars map[*ir.Value]float32, want []float32, quant bool) float32 {
	if !quant {
		return 1e-4
	}
	v := o
	if v.Op == "Add" {
		for _, a := range v.Args() {
			if a != nil && a.Op == "Mul" {
				v = a
			}
		}
	}
	if v.Op == "Mul" {
		for i, a := range v.Args() {
			other := v.Arg(1 - i)
			if a == nil || other == nil || a.Op != "Cast" || a.Arg(0).Op != "MatMulInteger" {
				continue
			}
			w := a.Arg(0).Arg(1)
			st, ok := scalars[other]
			if !w.IsConst() || w.Const.DType != ir.I8 || w.Type.Rank() != 2 || !ok {
				continue
			}
			k, n := int(w.Type.Shape[0].C), int(w.Type.Shape[1].C)
			wd := w.Const.Data.([]int8)
			var worst float64
			for j := 0; j < n; j++ {
				var s float64
				for r := 0; r < k; r++ {
					s += math.Abs(float64(wd[r*n+j]))
				}
				worst = math.Max(worst, s)
			}
			return max(1e-4, float32(math.Abs(float64(st))*worst))
		}
	}
	var m float32
	for _, x := range want {
		m = max(m, float32(math.Abs(float64(x))))
	}
	return max(1e-4, 3*m/127)
}

// addTest computes expected outputs with pqvc's runtime on g (the
// caller's graph, batch bound by the inputs) and writes them with the
// inputs and model_test.go.
func addTest(files map[string][]byte, g, sg *ir.Graph, pkg string, quant bool) error {
	ins, err := SampleInputs(sg)
	if err != nil {
		return err
	}
	p, err := runtime.Compile(g)
	if err != nil {
		return fmt.Errorf("computing the test's expected outputs: %w", err)
	}
	// Keep the f32 scalars (scale products among them) for Tolerance.
	scalars := map[*ir.Value]float32{}
	observe := func(v *ir.Value, t *ir.Tensor) {
		if t.DType == ir.F32 && t.Len() == 1 {
			scalars[v] = t.F32()[0]
		}
	}
	res, err := p.RunWith(ins, runtime.RunOptions{Observe: observe})
	if err != nil {
		return fmt.Errorf("computing the test's expected outputs: %w", err)
	}
	for i, in := range sg.Inputs {
		files[fmt.Sprintf("testdata/input%d.bin", i)] = f32Bytes(ins[in.Name].F32())
	}
	var spread map[string]float32
	if quant {
		if spread, err = roundingSpread(p, ins, res.Outputs); err != nil {
			return fmt.Errorf("computing the test's tolerance: %w", err)
		}
	}
	var tols []string
	for i, o := range g.Outputs {
		t := res.Outputs[o.Name]
		if t == nil || t.DType != ir.F32 {
			return fmt.Errorf("runtime gave no f32 output %q", o.Name)
		}
		files[fmt.Sprintf("testdata/output%d.bin", i)] = f32Bytes(t.F32())
		tols = append(tols, floatLit(max(Tolerance(o.Value, scalars, t.F32(), quant), 2*spread[o.Name])))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, testTemplate, pkg, len(sg.Inputs), len(sg.Outputs), joinComma(tols))
	files["model_test.go"] = b.Bytes()
	return nil
}

// roundingSpread measures how far a quantized graph's outputs move when its
// inputs move by float32 rounding noise (a relative 2⁻²², in 8 seeded
// trials). Tolerance's one-step bound covers a rounding flip in the last
// int8 product only; a flip in an earlier layer travels through the rest
// of the network, and how far it travels depends on the model. This
// measures it on the model itself: the generated test then accepts twice
// the largest movement seen, or Tolerance's bound if that is larger.
func roundingSpread(p *runtime.Program, ins, want map[string]*ir.Tensor) (map[string]float32, error) {
	rng := rand.New(rand.NewPCG(7, 11))
	spread := map[string]float32{}
	for range 8 {
		moved := map[string]*ir.Tensor{}
		for name, t := range ins {
			xs := slices.Clone(t.F32())
			for i := range xs {
				xs[i] *= 1 + float32(rng.NormFloat64())*(1.0/(1<<22))
			}
			moved[name] = ir.F32Tensor(t.Shape, xs)
		}
		out, err := p.Run(moved)
		if err != nil {
			return nil, err
		}
		for name, t := range want {
			got := out[name].F32()
			for i, w := range t.F32() {
				d := float32(math.Abs(float64(got[i] - w)))
				spread[name] = max(spread[name], d/float32(math.Max(1, math.Abs(float64(w)))))
			}
		}
	}
	return spread, nil
}

func f32Bytes(d []float32) []byte {
	b := make([]byte, 4*len(d))
	for i, x := range d {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

const testTemplate = `// Code generated by pqvc emit go. DO NOT EDIT.

package %[1]s

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"testing"
)

// tolerances per output: 1e-4 for float models; for quantized ones, one
// int8 step of the last product's input (see backend/gocode.Tolerance).
var tolerances = []float32{%[4]s}

func readF32(t testing.TB, path string) []float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func inputs(t testing.TB) [][]float32 {
	var ins [][]float32
	for i := 0; i < %[2]d; i++ {
		ins = append(ins, readF32(t, fmt.Sprintf("testdata/input%%d.bin", i)))
	}
	return ins
}

// TestRun checks the outputs against pqvc's runtime on the stored inputs,
// twice, since buffers are reused across calls.
func TestRun(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ins := inputs(t)
	for call := 0; call < 2; call++ {
		outs, err := m.Run(ins...)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < %[3]d; i++ {
			want := readF32(t, fmt.Sprintf("testdata/output%%d.bin", i))
			got := outs[i]
			if len(got) != len(want) {
				t.Fatalf("output %%d has %%d elements, want %%d", i, len(got), len(want))
			}
			worst := float32(0)
			for j := range want {
				d := float32(math.Abs(float64(got[j] - want[j])))
				lim := tolerances[i] * float32(math.Max(1, math.Abs(float64(want[j]))))
				if !(d <= lim) {
					t.Fatalf("call %%d: output %%d[%%d] = %%g, want %%g (tolerance %%g)", call, i, j, got[j], want[j], lim)
				}
				worst = max(worst, d)
			}
			t.Logf("output %%d: max abs difference %%g", i, worst)
		}
	}
}

func TestBadInput(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(make([]float32, 1)); err == nil && InputSize0 != 1 {
		t.Fatal("Run accepted an input of the wrong length")
	}
}

func BenchmarkRun(b *testing.B) {
	m, err := New()
	if err != nil {
		b.Fatal(err)
	}
	ins := inputs(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Run(ins...); err != nil {
			b.Fatal(err)
		}
	}
}
`
