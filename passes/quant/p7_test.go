package quant_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/eval"
	frontend "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/fuse"
	_ "github.com/pqvc/pqvc/passes/quant"
	"github.com/pqvc/pqvc/runtime"
)

const (
	p7Model = "../../assets/deit_fmnist_p7.onnx"
	p7Calib = "../../assets/fmnist_calib.npz"
	p7Eval  = "../../assets/fmnist_eval.npz"
)

// p7Recipes are the quantizations measured on the Fashion-MNIST DeiT.
var p7Recipes = []struct{ name, recipe string }{
	{"fp32", ""},
	{"fp16", "quantize fp16"},
	{"dynamic", "quantize int8 mode=dynamic"},
	{"dynamic_pc", "quantize int8 mode=dynamic per_channel=true"},
	{"static_minmax", "calibrate minmax\nquantize int8 mode=static\nfold_qdq"},
	{"static_percentile", "calibrate percentile\nquantize int8 mode=static\nfold_qdq"},
	{"static_entropy", "calibrate entropy\nquantize int8 mode=static\nfold_qdq"},
	{"static_moving_average", "calibrate moving_average\nquantize int8 mode=static\nfold_qdq"},
	{"static_pc_lower", "calibrate minmax\nquantize int8 mode=static per_channel=true\nfold_qdq lower=true"},
	{"static_arm", "calibrate minmax\nquantize int8 mode=static target=arm per_channel=true\nfold_qdq"},
	// ONNX Runtime's fused int8 ops (fuse's qmatmul pattern).
	{"dynamic_fused", "quantize int8 mode=dynamic\nfuse patterns=[qmatmul]"},
	{"static_pc_lower_fused", "calibrate minmax\nquantize int8 mode=static per_channel=true\nfold_qdq lower=true\nfuse patterns=[qmatmul]"},
}

func loadP7(t *testing.T) (*ir.Graph, *data.Dataset, *data.Dataset) {
	t.Helper()
	for _, f := range []string{p7Model, p7Calib, p7Eval} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("missing %s", f)
		}
	}
	g, err := frontend.Load(p7Model)
	if err != nil {
		t.Fatal(err)
	}
	calib, err := data.Load(p7Calib)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := data.Load(p7Eval)
	if err != nil {
		t.Fatal(err)
	}
	return g, calib, ev
}

// TestP7Accuracy quantizes the trained Fashion-MNIST DeiT every way and
// measures top-1 accuracy with our runtime and with ONNX Runtime on the
// written file, which the onnx checker must accept. Quantization may cost
// at most 0.5 points against fp32. Subtests run in order; each needs the
// fp32 one's reference accuracy.
func TestP7Accuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	base, calib, ev := loadP7(t)
	r := ort.NewTestRunner(t)
	dir := t.TempDir()
	ref := -1.0
	for _, rc := range p7Recipes {
		t.Run(rc.name, func(t *testing.T) {
			if ref < 0 && rc.name != "fp32" {
				t.Skip("needs the fp32 subtest first")
			}
			p7Case(t, r, base, calib, ev, filepath.Join(dir, rc.name+".onnx"), rc.name, rc.recipe, &ref)
		})
	}
}

func p7Case(t *testing.T, r *ort.Runner, base *ir.Graph, calib, ev *data.Dataset, file, name, recipe string, ref *float64) {
	g := base.Clone()
	if recipe != "" {
		pl, err := parsePipeline(recipe)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := passes.Run(g, pl, passes.Config{Verify: true, Calib: calib}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := eval.Accuracy(g, ev, eval.Options{Batch: 250})
	if err != nil {
		t.Fatal(err)
	}
	if err := onnx.Write(file, g, onnx.Options{}); err != nil {
		t.Fatalf("write: %v", err)
	}
	checkModel(t, file)
	ortAcc, diff := ortAccuracy(t, r, file, g, ev)
	exact := exactDiff(t, r, file, g, ev)
	fi, _ := os.Stat(file)
	if name == "fp32" {
		*ref = ortAcc
	}
	t.Logf("%-22s ours %.4f  ORT %.4f  (%+.2f pp)  %7d bytes  logits max|ours-ORT| %.2g (ORT unoptimised %.2g)",
		name, res.Accuracy, ortAcc, 100*(ortAcc-*ref), fi.Size(), diff, exact)
	if tol := tolerance[name[:min(len(name), 6)]]; exact > tol || diff > 4*tol {
		t.Errorf("our logits differ from ORT's by %g (%g unoptimised); tolerance %g (%g)", diff, exact, 4*tol, tol)
	}
	if 100*(*ref-res.Accuracy) > 0.5 || 100*(*ref-ortAcc) > 0.5 {
		t.Errorf("loses more than 0.5 pp: ours %.4f ORT %.4f fp32 %.4f", res.Accuracy, ortAcc, *ref)
	}
}

// tolerance bounds max |ours − ORT| on the logits, by recipe kind, against
// ORT with graph optimisations off (four times as much with them on). fp32
// differs only by summation order; fp16 rounds each op's result, so an order
// difference can move one f16 ulp. Quantized graphs differ where a float
// difference of 1e-6 upstream moves x/scale across a rounding boundary: one
// quantization step, carried to the logits. ORT's optimiser fuses Q/DQ into
// QLinear ops that round at other points, hence the looser bound.
var tolerance = map[string]float64{"fp32": 1e-5, "fp16": 0.02, "dynami": 0.06, "static": 0.06}

// ortAccuracy runs file in ORT over ev and returns its accuracy and the
// largest difference between its logits and our runtime's on g.
func ortAccuracy(t *testing.T, r *ort.Runner, file string, g *ir.Graph, ev *data.Dataset) (float64, float64) {
	t.Helper()
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	diff := 0.0
	correct := 0
	n := ev.Len()
	for lo := 0; lo < n; lo += 500 {
		hi := min(n, lo+500)
		in, _ := data.FromTensor(ev.Batch(lo, hi))
		out, err := r.Run(file, map[string]*tensorio.Array{g.Inputs[0].Name: in}, 1)
		if err != nil {
			t.Fatalf("ORT on %s: %v", file, err)
		}
		logits := out[g.Outputs[0].Name].Data.([]float32)
		ours, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: ev.Batch(lo, hi)})
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range ours[g.Outputs[0].Name].F32() {
			diff = max(diff, math.Abs(float64(x-logits[i])))
		}
		k := len(logits) / (hi - lo)
		for i := range hi - lo {
			best := 0
			for j := range k {
				if logits[i*k+j] > logits[i*k+best] {
					best = j
				}
			}
			if int64(best) == ev.Y[lo+i] {
				correct++
			}
		}
	}
	return float64(correct) / float64(n), diff
}

// exactDiff compares our logits with ORT's on the first 500 images with
// ORT's graph optimisations off, so that ORT runs the very ops we run (no
// QDQ fusion into QLinear ops, which round at different points).
func exactDiff(t *testing.T, r *ort.Runner, file string, g *ir.Graph, ev *data.Dataset) float64 {
	t.Helper()
	x := ev.Batch(0, min(500, ev.Len()))
	in, _ := data.FromTensor(x)
	out, err := r.RunWith(file, map[string]*tensorio.Array{g.Inputs[0].Name: in}, ort.Options{Threads: 1, Opt: "disable"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: x})
	if err != nil {
		t.Fatal(err)
	}
	theirs := out[g.Outputs[0].Name].Data.([]float32)
	d := 0.0
	for i, v := range ours[g.Outputs[0].Name].F32() {
		d = max(d, math.Abs(float64(v-theirs[i])))
	}
	return d
}

// checkModel runs onnx.checker (with full shape inference) on file.
func checkModel(t *testing.T, file string) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import onnx").Run(); err != nil {
		t.Logf("onnx checker unavailable: %v", err)
		return
	}
	script := fmt.Sprintf("import onnx; onnx.checker.check_model(%q); onnx.checker.check_model(onnx.load(%q), full_check=True)", file, file)
	if out, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("onnx checker rejects %s: %v\n%s", file, err, out)
	}
}
