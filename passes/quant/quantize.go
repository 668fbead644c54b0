package quant

// The quantize transform, three ways, after ONNX Runtime's quantization
// tool (quantize_static in QDQ format, quantize_dynamic, and onnxconverter's
// float16 conversion):
//
//   - int8 mode=static: every MatMul, Gemm and Conv with a constant weight
//     gets QuantizeLinear→DequantizeLinear on its activation input, with the
//     scale and zero point from the calibrate analysis, and on its weight
//     (symmetric int8, per tensor or per output channel). fold_qdq then
//     stores the weights as int8.
//   - int8 mode=dynamic: weights become int8 constants now; activations are
//     quantized at run time (u8 asymmetric as ONNX's DynamicQuantizeLinear,
//     or s8 symmetric) and multiplied by MatMulInteger, then rescaled in
//     float. DynamicQuantizeLinear has three results, which the IR's
//     single-result values cannot hold, so its function body is emitted
//     instead: ReduceMin/ReduceMax, Div, Clip, Round, Cast, QuantizeLinear.
//   - fp16: float constants and computations become f16, except the ops in
//     block (LayerNormalization and Softmax by default, whose reductions
//     lose too much in f16) and the quantized ops; graph inputs and outputs
//     keep their types, with Casts at every boundary.
//
// Scale and zero-point arithmetic follows ORT's compute_scale_zp exactly, in
// float32: ranges widened to include zero, scale = (rmax−rmin)/(qmax−qmin),
// zero point = round half to even(qmin − rmin/scale), weights symmetric in
// [−127, 127] (or [−64, 64] with reduce_range). It requires calibrate
// (used by static mode only) and leaves a graph that verifies.

import (
	"fmt"
	"math"
	"path"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/runtime"
)

// QuantizeOptions are quantize's options.
type QuantizeOptions struct {
	Precision   string   `pqv:"precision,positional" enum:"int8|fp16" doc:"target precision"`
	Mode        string   `pqv:"mode" enum:"static|dynamic" doc:"int8: activation scales from calibration (static) or computed at run time (dynamic)"`
	PerChannel  bool     `pqv:"per_channel" doc:"one weight scale per output channel"`
	Symmetric   bool     `pqv:"symmetric" doc:"symmetric activations (zero point 0)"`
	Activations string   `pqv:"activations" enum:"auto|u8|s8" doc:"activation type; auto follows target"`
	ReduceRange bool     `pqv:"reduce_range" doc:"7-bit weights, as ORT advises for x86 without VNNI"`
	Exclude     []string `pqv:"exclude" doc:"value names (path.Match patterns) or op names to leave in float"`
	Target      string   `pqv:"target" enum:"x86|arm|generic" doc:"profile: x86 u8 activations, arm s8 symmetric"`
	Block       []string `pqv:"block" doc:"fp16: ops kept in f32"`
}

// Quantize is the quantize transform.
var Quantize = &passes.Pass{
	Name: "quantize",
	Doc: `quantize to int8 (static QDQ or dynamic) or convert to fp16
int8 quantizes MatMul, Gemm and Conv with constant weights, as ONNX
Runtime's quantization tool does; fp16 converts everything but the ops in
block. Static mode takes activation ranges from calibrate.`,
	Requires: []*passes.Pass{Calibrate},
	Options: &QuantizeOptions{Precision: "int8", Mode: "dynamic", Activations: "auto", Target: "x86",
		Block: []string{"LayerNormalization", "Softmax"}},
	Run: runQuantize,
}

// Stats is what quantize and fold_qdq report.
type Stats struct {
	Quantized int `json:"quantized"`
	Skipped   int `json:"skipped,omitempty"`
	Casts     int `json:"casts,omitempty"`
	Folded    int `json:"folded,omitempty"`
	Removed   int `json:"removed,omitempty"`
	Lowered   int `json:"lowered,omitempty"`
}

func runQuantize(ctx *passes.Context, g *ir.Graph) (any, error) {
	o := *ctx.Options.(*QuantizeOptions)
	if o.Precision == "fp16" {
		return toFP16(g, o)
	}
	q := &quantizer{g: g, o: o, acts: map[*ir.Value]*ir.Value{}}
	q.act = ir.U8
	if o.Activations == "s8" || o.Activations == "auto" && o.Target == "arm" {
		q.act = ir.I8
	}
	q.symAct = o.Symmetric || o.Target == "arm"
	if o.Mode == "static" {
		r, _ := ctx.ResultOf[Calibrate].(*Ranges)
		if r == nil {
			return nil, fmt.Errorf("quantize: static mode needs the calibrate analysis")
		}
		m, err := r.Get()
		if err != nil {
			return nil, fmt.Errorf("quantize: static mode: %w", err)
		}
		// Say which method: a transform between an explicit calibrate and
		// this step invalidates its result, and the runner then reruns
		// calibrate with default options.
		ctx.Logf("quantize: static, %s ranges for %d tensors", r.opts.Method, len(m))
		q.ranges = m
	}
	order, err := g.Topo()
	if err != nil {
		return nil, err
	}
	st := &Stats{}
	for _, v := range order {
		if !quantizable(v) || excluded(v, o.Exclude) {
			continue
		}
		var ok bool
		if o.Mode == "static" {
			ok, err = q.static(v)
		} else {
			ok, err = q.dynamic(v)
		}
		if err != nil {
			return nil, fmt.Errorf("quantize: %s: %w", v, err)
		}
		if ok {
			st.Quantized++
		} else {
			st.Skipped++
		}
	}
	g.RemoveDead()
	return st, nil
}

func excluded(v *ir.Value, pats []string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, v.Name); ok || p == v.Name || p == v.Op {
			return true
		}
	}
	return false
}

type quantizer struct {
	g      *ir.Graph
	o      QuantizeOptions
	act    ir.DType // activation type
	symAct bool
	ranges map[*ir.Value]Range
	acts   map[*ir.Value]*ir.Value // activation → its dequantized (static) or quantized (dynamic) form
	n      int
}

func (q *quantizer) name(base, suffix string) string {
	q.n++
	return fmt.Sprintf("%s_%s%d", base, suffix, q.n)
}

// qRange is the integer range of dt: weights are symmetric ([−127, 127]),
// reduce_range takes a bit off the weights.
func qRange(dt ir.DType, weights, reduce bool) (lo, hi float32) {
	switch {
	case dt == ir.U8 && reduce:
		return 0, 127
	case dt == ir.U8:
		return 0, 255
	case reduce:
		return -64, 64
	case weights:
		return -127, 127
	}
	return -128, 127
}

// ScaleZP is ORT's compute_scale_zp in float32: the range widened to hold
// zero (and made symmetric if asked), the scale spanning it over [lo, hi],
// the zero point rounded half to even. A zero-width range gets scale 1.
func ScaleZP(rmin, rmax, lo, hi float32, symmetric bool) (float32, int32) {
	rmin, rmax = min(rmin, 0), max(rmax, 0)
	if symmetric {
		a := max(-rmin, rmax)
		rmin, rmax = -a, a
	}
	scale := (rmax - rmin) / (hi - lo)
	if !(scale >= float32(math.SmallestNonzeroFloat32)) || math.IsInf(float64(scale), 0) {
		return 1, 0
	}
	zp := float32(math.RoundToEven(float64(lo - rmin/scale)))
	return scale, int32(min(max(zp, lo), hi))
}

// scalar builds a rank-0 constant of dt holding x.
func (q *quantizer) scalar(name string, dt ir.DType, x float64) *ir.Value {
	t := ir.MustTensor(dt)
	setAt(t, 0, x)
	return q.g.AddConst(q.name(name, "c"), t)
}

func setAt(t *ir.Tensor, i int, x float64) {
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

// weightAxis is the output-channel axis of a quantizable op's weight.
func weightAxis(v *ir.Value) int {
	if v.Op == "Conv" || v.Op == "Gemm" && v.Int("transB") != 0 {
		return 0
	}
	return 1
}

// weightScales computes symmetric weight scales, per tensor or per channel
// along axis, and returns them with the channel of each element.
func weightScales(w *ir.Tensor, axis int, perChannel, reduce bool) ([]float64, []float32, func(int) int, error) {
	xs, err := w.AsFloat64s()
	if err != nil {
		return nil, nil, nil, err
	}
	lo, hi := qRange(ir.I8, true, reduce)
	nch, inner := 1, len(xs)
	if perChannel {
		nch, inner = int(w.Shape[axis]), 1
		for _, d := range w.Shape[axis+1:] {
			inner *= int(d)
		}
	}
	ch := func(i int) int { return i / inner % nch }
	amax := make([]float32, nch)
	for i, x := range xs {
		c := ch(i)
		amax[c] = max(amax[c], float32(math.Abs(x)))
	}
	scales := make([]float32, nch)
	for c := range scales {
		scales[c], _ = ScaleZP(-amax[c], amax[c], lo, hi, true)
	}
	return xs, scales, ch, nil
}

// scaleTensor is rank 0 for one scale, rank 1 per channel.
func scaleTensor(scales []float32, perChannel bool) *ir.Tensor {
	if perChannel {
		return ir.F32Tensor([]int64{int64(len(scales))}, scales)
	}
	return ir.ScalarF32(scales[0])
}

// quantWeight quantizes a constant weight symmetrically, per tensor or per
// channel along axis, into int8 and its scale tensor.
func quantWeight(w *ir.Tensor, axis int, perChannel, reduce bool) (*ir.Tensor, *ir.Tensor, error) {
	xs, scales, ch, err := weightScales(w, axis, perChannel, reduce)
	if err != nil {
		return nil, nil, err
	}
	lo, hi := qRange(ir.I8, true, reduce)
	out := ir.MustTensor(ir.I8, w.Shape...)
	od := out.Data.([]int8)
	for i, x := range xs {
		od[i] = int8(runtime.QuantizeValue(float32(x), scales[ch(i)], 0, lo, hi))
	}
	return out, scaleTensor(scales, perChannel), nil
}

// static rewrites v's activation and weight inputs into Q→DQ form.
func (q *quantizer) static(v *ir.Value) (bool, error) {
	w := v.Arg(1)
	if w == nil || !w.IsConst() || w.Type.DType != ir.F32 || v.Arg(0).Type.DType != ir.F32 {
		return false, nil
	}
	a := v.Arg(0)
	if _, ok := q.ranges[a]; !ok && q.acts[a] == nil {
		return false, nil // no range: the value was never computed in calibration
	}
	dq, err := q.qdqActivation(a)
	if err != nil {
		return false, err
	}
	axis := weightAxis(v)
	perCh := q.o.PerChannel && w.Type.Rank() >= 2
	_, scales, _, err := weightScales(w.Const, axis, perCh, q.o.ReduceRange)
	if err != nil {
		return false, err
	}
	// The float weight stays behind a QuantizeLinear, so the graph says what
	// it computes; fold_qdq stores it as int8.
	ws := scaleTensor(scales, perCh)
	s := q.g.AddConst(q.name(w.Name, "scale"), ws)
	zt := ir.MustTensor(ir.I8, ws.Shape...)
	z := q.g.AddConst(q.name(w.Name, "zero_point"), zt)
	attrs := ir.Attrs{}
	if perCh {
		attrs["axis"] = int64(axis)
	}
	qw, err := q.g.Add("QuantizeLinear", q.name(w.Name, "quantized"), attrs.Clone(), w, s, z)
	if err != nil {
		return false, err
	}
	dw, err := q.g.Add("DequantizeLinear", q.name(w.Name, "dequantized"), attrs, qw, s, z)
	if err != nil {
		return false, err
	}
	v.SetArg(0, dq)
	v.SetArg(1, dw)
	return true, nil
}

// qdqActivation returns DQ(Q(a)) with a's calibrated parameters, shared by
// all of a's quantized users.
func (q *quantizer) qdqActivation(a *ir.Value) (*ir.Value, error) {
	if d := q.acts[a]; d != nil {
		return d, nil
	}
	r := q.ranges[a]
	lo, hi := qRange(q.act, false, false)
	scale, zp := ScaleZP(r.Min, r.Max, lo, hi, q.symAct)
	s := q.scalar(a.Name+"_scale", ir.F32, float64(scale))
	z := q.scalar(a.Name+"_zero_point", q.act, float64(zp))
	qa, err := q.g.Add("QuantizeLinear", q.name(a.Name, "quantized"), ir.Attrs{}, a, s, z)
	if err != nil {
		return nil, err
	}
	d, err := q.g.Add("DequantizeLinear", q.name(a.Name, "dequantized"), ir.Attrs{}, qa, s, z)
	if err != nil {
		return nil, err
	}
	q.acts[a] = d
	return d, nil
}

// qparams is a dynamically quantized activation: the quantized tensor, its
// scale and zero point (values computed at run time).
type qparams struct{ x, scale, zp *ir.Value }

// dynamic rewrites MatMul(x, W) as MatMulInteger(q(x), Wq)·(sx·sW) and Gemm
// likewise plus its bias.
func (q *quantizer) dynamic(v *ir.Value) (bool, error) {
	w := v.Arg(1)
	if w == nil || !w.IsConst() || w.Type.DType != ir.F32 || v.Arg(0).Type.DType != ir.F32 || w.Type.Rank() != 2 {
		return false, nil
	}
	wt := w.Const
	switch v.Op {
	case "Conv":
		return false, nil // ConvInteger is slower than float Conv in ORT for the patch embedding
	case "Gemm":
		if v.Int("transA") != 0 || v.Float("alpha") != 1 || v.Float("beta") != 1 {
			return false, nil
		}
		if v.Int("transB") != 0 {
			wt = transpose2(wt)
		}
	}
	wq, ws, err := quantWeight(wt, 1, q.o.PerChannel, q.o.ReduceRange)
	if err != nil {
		return false, err
	}
	p, err := q.dynActivation(v.Arg(0))
	if err != nil {
		return false, err
	}
	g := q.g
	wc := g.AddConst(q.name(w.Name, "quantized"), wq)
	var b *ir.Value
	if v.Op == "Gemm" {
		b = v.Arg(2)
	}
	y, err := q.integerMatMul(v.Name, p.x, p.zp, p.scale, wc, g.AddConst(q.name(w.Name, "scale"), ws), nil, b)
	if err != nil {
		return false, err
	}
	if !y.Type.Equal(v.Type) {
		return false, fmt.Errorf("rewrite gives %v, want %v", y.Type, v.Type)
	}
	v.ReplaceUses(y)
	for i, o := range g.Outputs {
		if o.Value == v {
			g.Outputs[i].Value = y
		}
	}
	return true, nil
}

func transpose2(t *ir.Tensor) *ir.Tensor {
	xs, _ := t.AsFloat64s()
	r, c := int(t.Shape[0]), int(t.Shape[1])
	out := make([]float32, len(xs))
	for i := range r {
		for j := range c {
			out[j*r+i] = float32(xs[i*c+j])
		}
	}
	return ir.F32Tensor([]int64{int64(c), int64(r)}, out)
}

// dynActivation emits run-time quantization of a, once per activation.
// u8: DynamicQuantizeLinear's function body (range widened to 0, scale
// (max−min)/255, zero point round(clip(−min/scale))). s8: symmetric,
// scale max|a|/127, zero point 0. The scale is floored at minScale so an
// all-zero tensor quantizes to zeros, not NaN (ORT's DynamicQuantizeLinear
// uses scale 1 there, with the same result).
// minScale floors run-time scales; it is a normal float32, so no
// flush-to-zero setting turns it into a division by zero.
const minScale = 1e-30

func (q *quantizer) dynActivation(a *ir.Value) (qparams, error) {
	if d := q.acts[a]; d != nil {
		return qparams{d, d.Arg(1), d.Arg(2)}, nil
	}
	g := q.g
	var err error
	add := func(op string, attrs ir.Attrs, args ...*ir.Value) *ir.Value {
		if err != nil {
			return nil
		}
		var v *ir.Value
		v, err = g.Add(op, q.name(a.Name, op), attrs, args...)
		return v
	}
	c := func(x float64) *ir.Value { return q.scalar(a.Name, ir.F32, x) }
	all := ir.Attrs{"keepdims": int64(0)}
	var scale, zp *ir.Value
	if q.act == ir.I8 {
		amax := add("ReduceMax", all, add("Abs", ir.Attrs{}, a))
		scale = add("Max", ir.Attrs{}, add("Div", ir.Attrs{}, amax, c(127)), c(minScale))
		zp = q.scalar(a.Name+"_zero_point", ir.I8, 0)
	} else {
		lo := add("Min", ir.Attrs{}, add("ReduceMin", all, a), c(0))
		hi := add("Max", ir.Attrs{}, add("ReduceMax", all, a), c(0))
		scale = add("Max", ir.Attrs{}, add("Div", ir.Attrs{}, add("Sub", ir.Attrs{}, hi, lo), c(255)), c(minScale))
		z := add("Clip", ir.Attrs{}, add("Neg", ir.Attrs{}, add("Div", ir.Attrs{}, lo, scale)), c(0), c(255))
		zp = add("Cast", ir.Attrs{"to": "u8"}, add("Round", ir.Attrs{}, z))
	}
	x := add("QuantizeLinear", ir.Attrs{}, a, scale, zp)
	if err != nil {
		return qparams{}, err
	}
	q.acts[a] = x
	return qparams{x, scale, zp}, nil
}
