package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

// TestScaleZP holds ScaleZP to values worked out from ORT's
// compute_scale_zp (numpy, float32, round half to even).
func TestScaleZP(t *testing.T) {
	for _, c := range []struct {
		rmin, rmax, lo, hi float32
		sym                bool
		scale              float32
		zp                 int32
	}{
		{-1, 3, 0, 255, false, 4.0 / 255, 64},    // zp = round(63.75)
		{0.5, 2, 0, 255, false, 2.0 / 255, 0},    // range widened to hold 0
		{-3, -1, 0, 255, false, 3.0 / 255, 255},  // all negative
		{-1, 3, 0, 255, true, 6.0 / 255, 128},    // round(127.5) = 128 (even)
		{-1, 1, -128, 127, false, 2.0 / 255, -1}, // f32 scale rounds up: −128 + 127.49999 → −1
		{-2, 1, -127, 127, true, 2.0 / 127, 0},   // symmetric weights
		{-2, 1, -64, 64, true, 2.0 / 64, 0},      // reduce_range
		{0, 0, 0, 255, false, 1, 0},              // empty range
	} {
		s, z := ScaleZP(c.rmin, c.rmax, c.lo, c.hi, c.sym)
		if s != c.scale || z != c.zp {
			t.Errorf("ScaleZP(%v, %v, [%v,%v], sym=%v) = %v, %d; want %v, %d", c.rmin, c.rmax, c.lo, c.hi, c.sym, s, z, c.scale, c.zp)
		}
	}
}

func TestQuantWeight(t *testing.T) {
	w := ir.F32Tensor([]int64{2, 3}, []float32{1, -2, 0.5, 0.25, 0.125, -0.0625})
	q, s, err := quantWeight(w, 0, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Data.([]int8); got[0] != 64 || got[1] != -127 || got[2] != 32 || got[3] != 127 || got[4] != 64 || got[5] != -32 {
		t.Errorf("per-row int8 = %v", got)
	}
	if sc := s.F32(); len(sc) != 2 || sc[0] != float32(2)/127 || sc[1] != float32(0.25)/127 {
		t.Errorf("scales = %v", sc)
	}
}

func tinyGraph(t *testing.T) (*ir.Graph, *ir.Value) {
	g := ir.NewGraph("tiny")
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.Shape{ir.Sym("N"), ir.Static(8)}))
	w := g.AddConst("w", ir.F32Tensor([]int64{8, 2}, make([]float32, 16)))
	h, err := g.Add("Relu", "h", nil, x)
	if err != nil {
		t.Fatal(err)
	}
	y, err := g.Add("MatMul", "y", nil, h, w)
	if err != nil {
		t.Fatal(err)
	}
	g.SetOutput("y", y)
	return g, h
}

func calib(t *testing.T, g *ir.Graph, ds *data.Dataset, o CalibOptions) map[*ir.Value]Range {
	t.Helper()
	m, err := calibrate(g, ds, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCalibrateMethods runs each method over synthetic data with known
// statistics: Gaussian values plus a few large outliers.
func TestCalibrateMethods(t *testing.T) {
	g, h := tinyGraph(t)
	const n = 4096
	xs := make([]float32, n*8)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	xs[5], xs[77] = 40, -50 // outliers: Relu keeps only the 40
	ds := &data.Dataset{X: ir.F32Tensor([]int64{n, 8}, xs)}
	def := *Calibrate.Options.(*CalibOptions)
	def.Batch = 512

	o := def
	mm := calib(t, g, ds, o)[h]
	if mm.Min != 0 || mm.Max != 40 {
		t.Errorf("minmax = %v, want [0, 40]", mm)
	}
	o.Method = "percentile"
	o.Percentile = 99
	pc := calib(t, g, ds, o)[h]
	// Relu of a standard normal is below Φ⁻¹(0.99) ≈ 2.33 with
	// probability 0.99 (the zeros count); bins add up to one bin width.
	if pc.Min != 0 || math.Abs(float64(pc.Max)-2.33) > 0.1 {
		t.Errorf("percentile 99 = %v, want about [0, 2.33]", pc)
	}
	o.Method = "entropy"
	en := calib(t, g, ds, o)[h]
	if en.Min != 0 || en.Max < 2 || en.Max > 10 {
		t.Errorf("entropy = %v, want the outlier clipped (max in [2, 10])", en)
	}
	o.Method, o.Momentum = "moving_average", 0
	ma := calib(t, g, ds, o)[h]
	// Momentum 0 keeps the last batch, which holds no outlier.
	if ma.Min != 0 || ma.Max > 6 {
		t.Errorf("moving_average(0) = %v, want the last batch's range", ma)
	}
	if _, err := calibrate(g, nil, def); err == nil {
		t.Error("calibrate without data succeeded")
	}
}

// TestStaticQuantizeTiny runs calibrate then quantize static on a tiny graph
// through the pass runner, checking the activation parameters.
func TestStaticQuantizeTiny(t *testing.T) {
	g, _ := tinyGraph(t)
	xs := make([]float32, 64)
	for i := range xs {
		xs[i] = float32(i%17) * 0.25 // Relu output spans [0, 4]
	}
	ds := &data.Dataset{X: ir.F32Tensor([]int64{8, 8}, xs)}
	o := passes.NewOptions(Quantize).(*QuantizeOptions)
	o.Mode = "static"
	pl := &passes.Pipeline{Steps: []passes.Step{{Pass: Quantize, Options: o}}}
	if _, err := passes.Run(g, pl, passes.Config{Verify: true, Calib: ds}); err != nil {
		t.Fatal(err)
	}
	var q *ir.Value
	for _, v := range g.Values() {
		if v.Op == "QuantizeLinear" && v.Arg(0).Name == "h" {
			q = v
		}
	}
	if q == nil {
		t.Fatalf("no QuantizeLinear on h:\n%s", g)
	}
	if s, z := q.Arg(1).Const.F32()[0], q.Arg(2).Const.Data.([]uint8)[0]; s != 4.0/255 || z != 0 {
		t.Errorf("h quantized with scale %v zero point %d, want 4/255 and 0", s, z)
	}
}
