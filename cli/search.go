package cli

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/backend"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/measure"
	"github.com/pqvc/pqvc/search"
)

func init() {
	addCommand(&command{name: "search", summary: "find per-block pruning and float layers within an accuracy budget", run: runSearch})
}

const searchUsage = "search BASE.pqv -o OUTDIR [--max-drop 0.5%] [--objective latency|size] [--quant int8-dynamic|int8-static|fp16|none] [--model PATH] [--calib PATH] [--eval PATH] [--sensitivity-images N] [--ratios 12.5%,25%,50%] [--units heads,head_dim,mlp] [--ort]"

func runSearch(env *Env, args []string) error {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	var ro RecipeOptions
	fs.StringVar(&ro.Model, "model", "", "model to use instead of the base recipe's")
	fs.StringVar(&ro.Calib, "calib", "", "calibration data to use instead of the base recipe's")
	fs.StringVar(&ro.Eval, "eval", "", "evaluation data to use instead of the base recipe's")
	fs.StringVar(&ro.OutDir, "o", "out", "output folder: found.pqv, search.md, search.json, and found/ (the found recipe's run)")
	maxDrop := fs.String("max-drop", "0.5%", "largest top-1 accuracy drop allowed, in points (0.5%) or as a fraction (0.005)")
	objective := fs.String("objective", "latency", "what to minimise: latency or size")
	quantMode := fs.String("quant", "", "quantization: int8-dynamic, int8-static, fp16 or none (default: the base recipe's quantize step)")
	images := fs.Int("sensitivity-images", 500, "evaluation images the sensitivity runs use (the final check uses all)")
	ratios := fs.String("ratios", "12.5%,25%,50%", "pruning ratios tried per group, comma-separated")
	units := fs.String("units", "heads,head_dim,mlp", "prunable unit kinds searched, comma-separated (heads, head_dim, mlp)")
	useORT := fs.Bool("ort", false, "also time the model and the result in ONNX Runtime (1 thread)")
	quiet := fs.Bool("q", false, "print only errors")
	fs.BoolVar(&ro.RefuseNonfinite, "refuse-nonfinite", false, "refuse a model whose weights hold NaN or Inf (default: warn)")
	pos, err := parse(env, fs, args, searchUsage)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one base recipe, have %d arguments", len(pos))
	}
	drop, err := parseFraction(*maxDrop)
	if err != nil || drop < 0 || drop >= 1 {
		return usagef("--max-drop: want a percentage like 0.5%% or a fraction in [0, 1), have %q", *maxDrop)
	}
	if *objective != "latency" && *objective != "size" {
		return usagef("--objective: want latency or size, have %q", *objective)
	}
	switch *quantMode {
	case "", "none", "int8-dynamic", "int8-static", "fp16":
	default:
		return usagef("--quant: want int8-dynamic, int8-static, fp16 or none, have %q", *quantMode)
	}
	var rs []float64
	for _, f := range strings.Split(*ratios, ",") {
		r, err := parseFraction(strings.TrimSpace(f))
		if err != nil || r <= 0 || r >= 1 {
			return usagef("--ratios: %q is not a ratio in (0, 1)", f)
		}
		rs = append(rs, r)
	}
	var kinds []string
	for _, u := range strings.Split(*units, ",") {
		switch u = strings.TrimSpace(u); u {
		case "heads", "head_dim", "mlp":
			kinds = append(kinds, u)
		default:
			return usagef("--units: want heads, head_dim or mlp, have %q", u)
		}
	}
	logf := func(format string, args ...any) {
		if !*quiet {
			fmt.Fprintf(env.Stderr, "pqvc: "+format+"\n", args...)
		}
	}

	in, err := searchInputs(env, pos[0], ro)
	if err != nil {
		return err
	}
	if err := prepareOutDir(ro.OutDir); err != nil {
		return err
	}
	res, err := search.Run(in, search.Options{MaxDrop: drop, Objective: *objective, Quant: *quantMode, Ratios: rs,
		SensitivityImages: *images, Kinds: kinds, Timing: true, Logf: logf})
	if err != nil {
		return err
	}
	found, err := res.WriteRecipe(ro.OutDir)
	if err != nil {
		return err
	}
	// Re-run the written recipe the ordinary way: this is the check that
	// it reproduces what the search reported, and its outputs are the
	// found model.
	rep, err := RunRecipe(&Env{Stdout: env.Stdout, Stderr: env.Stderr}, found, RecipeOptions{OutDir: filepath.Join(ro.OutDir, "found"), Verify: true, Quiet: true})
	if err != nil {
		return fmt.Errorf("re-running %s: %w", found, err)
	}
	if rep.AccuracyAfter != nil {
		res.Reproduced = rep.AccuracyAfter
	}
	var ortLine string
	if *useORT {
		ortLine = ortTimes(in, res, logf)
	}
	if err := res.WriteReports(ro.OutDir); err != nil {
		return err
	}
	if res.Reproduced == nil || *res.Reproduced != res.After.Accuracy {
		return fmt.Errorf("%s did not reproduce the search's accuracy %.4f%% (see %s)", found, 100*res.After.Accuracy, filepath.Join(ro.OutDir, search.MarkdownFile))
	}
	if !*quiet {
		fmt.Fprintf(env.Stdout, "accuracy %.2f%% → %.2f%% (budget %.2f points), MACs %d → %d, latency %.3f → %.3f ms (pqvc runtime, 1 thread)%s\n",
			100*res.Before.Accuracy, 100*res.After.Accuracy, 100*drop, res.Before.MACs, res.After.MACs, res.Before.LatencyMs, res.After.LatencyMs, ortLine)
		fmt.Fprintf(env.Stdout, "chosen: %s\n", res.Chosen.Describe())
		for _, f := range []string{found, filepath.Join(ro.OutDir, search.MarkdownFile), filepath.Join(ro.OutDir, search.JSONFile)} {
			fmt.Fprintf(env.Stdout, "wrote %s\n", f)
		}
	}
	return nil
}

// searchInputs reads the base recipe and loads what it names (or the
// overrides), with absolute paths so the found recipe works from anywhere.
func searchInputs(env *Env, path string, o RecipeOptions) (search.Inputs, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return search.Inputs{}, err
	}
	rec, err := dsl.Parse(path, src, backend.Names())
	if err != nil {
		return search.Inputs{}, err
	}
	base := filepath.Dir(path)
	pick := func(flagVal, recipeVal string) (string, error) {
		p := flagVal
		if p == "" {
			if recipeVal == "" {
				return "", nil
			}
			p = recipeVal
			if !filepath.IsAbs(p) {
				p = filepath.Join(base, p)
			}
		}
		return filepath.Abs(p)
	}
	in := search.Inputs{Base: rec, Dir: o.OutDir}
	if in.ModelPath, err = pick(o.Model, rec.Model); err != nil {
		return in, err
	}
	if in.CalibPath, err = pick(o.Calib, rec.Calib); err != nil {
		return in, err
	}
	if in.EvalPath, err = pick(o.Eval, rec.Eval); err != nil {
		return in, err
	}
	if in.ModelPath == "" {
		return in, fmt.Errorf("%s: no model (add a model line or pass --model)", path)
	}
	if in.EvalPath == "" {
		return in, fmt.Errorf("%s: the search needs labelled evaluation data (evaluate_with or --eval)", path)
	}
	if in.Model, err = loadModelChecked(env, in.ModelPath, o.RefuseNonfinite); err != nil {
		return in, err
	}
	var ds *data.Dataset
	if in.CalibPath != "" {
		if ds, err = loadData(in.CalibPath, in.Model); err != nil {
			return in, err
		}
		in.Calib = ds
	}
	if in.Eval, err = loadData(in.EvalPath, in.Model); err != nil {
		return in, err
	}
	if in.Eval.Y == nil {
		return in, fmt.Errorf("%s: evaluation data has no labels (member y)", in.EvalPath)
	}
	return in, nil
}

// parseFraction reads "0.5%" as 0.005 and "0.005" as itself.
func parseFraction(s string) (float64, error) {
	scale := 1.0
	if v, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = v, 0.01
	}
	x, err := strconv.ParseFloat(s, 64)
	return x * scale, err
}

// ortTimes times the model and the search's result in ONNX Runtime, or
// says why it could not.
func ortTimes(in search.Inputs, res *search.Result, logf func(string, ...any)) string {
	rn, err := ort.Start()
	if err != nil {
		logf("search: no ONNX Runtime timing: %v", err)
		return ""
	}
	defer rn.Close()
	o := measure.Options{Threads: 1, Runs: 20, Warmup: 5}
	before, err := measure.ORT(rn, in.Model, in.ModelPath, o)
	if err != nil {
		logf("search: ONNX Runtime timing: %v", err)
		return ""
	}
	after, err := measure.ORT(rn, res.Graph(), "", o)
	if err != nil {
		logf("search: ONNX Runtime timing: %v", err)
		return ""
	}
	res.ORTBeforeMs, res.ORTAfterMs = before.Ms(), after.Ms()
	return fmt.Sprintf(", ONNX Runtime %.3f → %.3f ms", before.Ms(), after.Ms())
}
