package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/measure"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/sweep"
)

func init() {
	addCommand(&command{name: "sweep", summary: "run a grid of pruning ratios × criteria × quantization modes", run: runSweep})
}

// SweepOptions are the flags of `pqvc sweep`.
type SweepOptions struct {
	Model, Calib, Eval string // override the base recipe's paths ("" keeps them)
	OutDir             string
	Ratios             string // comma-separated fractions or percentages
	Criteria           string // comma-separated importance criteria
	Quants             string // comma-separated sweep.QuantModes
	Unit               string // prune unit override
	Jobs               int
	ORT                string // auto, on or off
	EvalLimit          int
	Runs, Warmup       int // latency: timed and untimed runs per point
	Verify             bool
	RefuseNonfinite    bool // refuse a model with NaN/Inf weights instead of warning
	Retime             bool // time every point again
	Quiet              bool
}

func runSweep(env *Env, args []string) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	var o SweepOptions
	fs.StringVar(&o.Model, "model", "", "model to use instead of the base recipe's")
	fs.StringVar(&o.Calib, "calib", "", "calibration data to use instead of the base recipe's")
	fs.StringVar(&o.Eval, "eval", "", "evaluation data to use instead of the base recipe's")
	fs.StringVar(&o.OutDir, "o", "sweep", "output folder (created if its parent exists); rerunning into it resumes")
	fs.StringVar(&o.Ratios, "ratios", "0,4.6875%,9.375%,18.75%", "pruning ratios, fractions or percentages (0 skips pruning)")
	fs.StringVar(&o.Criteria, "criteria", "magnitude,taylor,hessian", "importance criteria")
	fs.StringVar(&o.Quants, "quant", "none,fp16,int8-dynamic,int8-static", "quantization modes: "+strings.Join(sweep.QuantModes, ", "))
	fs.StringVar(&o.Unit, "unit", "", "prune unit (channels, mlp, heads, ...) instead of the base recipe's")
	fs.IntVar(&o.Jobs, "jobs", runtime.GOMAXPROCS(0), "points built at once (timing is always one at a time)")
	fs.StringVar(&o.ORT, "ort", "auto", "time in ONNX Runtime too: auto (when installed), on, off")
	fs.IntVar(&o.EvalLimit, "eval-limit", 0, "evaluate only the first N images (0: all)")
	fs.IntVar(&o.Runs, "runs", 10, "timed runs per point (the median is reported)")
	fs.IntVar(&o.Warmup, "warmup", 2, "untimed runs per point before timing")
	fs.BoolVar(&o.Verify, "verify", true, "verify the IR after every transform")
	fs.BoolVar(&o.RefuseNonfinite, "refuse-nonfinite", false, "refuse a model whose weights hold NaN or Inf (default: warn)")
	fs.BoolVar(&o.Retime, "retime", false, "time every point again, including points an earlier run timed")
	fs.BoolVar(&o.Quiet, "q", false, "print only errors")
	pos, err := parse(env, fs, args, "sweep BASE.pqv [-o DIR] [--ratios LIST] [--criteria LIST] [--quant LIST] [--unit UNIT] [--jobs N] [--ort auto|on|off] [--eval-limit N]")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one base recipe file, have %d arguments", len(pos))
	}
	if o.Unit != "" {
		if pr := passes.Lookup("prune"); pr != nil {
			if err := passes.SetOption(pr, passes.NewOptions(pr), "unit", passes.Literal{Kind: passes.LitIdent, Text: o.Unit}); err != nil {
				return usagef("--unit: %v", err)
			}
		}
	}
	switch o.ORT {
	case "auto", "on", "off":
	default:
		return usagef("--ort: want auto, on or off, got %q", o.ORT)
	}
	if o.Jobs < 1 || o.Runs < 1 || o.Warmup < 0 || o.EvalLimit < 0 {
		return usagef("--jobs and --runs must be at least 1, --warmup and --eval-limit at least 0")
	}
	_, err = RunSweep(env, pos[0], o)
	return err
}

// RunSweep runs the sweep of the base recipe at path and writes sweep.csv,
// sweep.md and the plots into o.OutDir. It returns the results, the
// unmodified model first.
func RunSweep(env *Env, path string, o SweepOptions) ([]*sweep.Result, error) {
	start := time.Now()
	var grid sweep.Grid
	var err error
	if grid.Ratios, err = sweep.ParseRatios(o.Ratios); err != nil {
		return nil, usagef("--ratios: %v", err)
	}
	if grid.Criteria, err = sweep.ParseCriteria(o.Criteria); err != nil {
		return nil, usagef("--criteria: %v", err)
	}
	if grid.Quants, err = sweep.ParseQuants(o.Quants); err != nil {
		return nil, usagef("--quant: %v", err)
	}
	rec, modelPath, calibPath, evalPath, err := parseRecipe(path, RecipeOptions{Model: o.Model, Calib: o.Calib, Eval: o.Eval})
	if err != nil {
		return nil, err
	}
	g, err := loadModelChecked(env, modelPath, o.RefuseNonfinite)
	if err != nil {
		return nil, err
	}
	if err := prepareOutDir(o.OutDir); err != nil {
		return nil, err
	}
	calib, evalSet, err := loadRecipeData(g, calibPath, evalPath)
	if err != nil {
		return nil, err
	}
	hash, err := sweepHash(rec, o, modelPath, calibPath, evalPath)
	if err != nil {
		return nil, err
	}
	// The points' .pqv files name the files actually used, wherever the
	// sweep is run from.
	rec.Model, rec.Calib, rec.Eval = absPath(modelPath), absPath(calibPath), absPath(evalPath)
	logf := func(format string, args ...any) {
		if !o.Quiet {
			fmt.Fprintf(env.Stderr, "pqvc: "+format+"\n", args...)
		}
	}

	var runner *ort.Runner
	if o.ORT != "off" {
		if aerr := ort.Available(); aerr != nil {
			if o.ORT == "on" {
				return nil, fmt.Errorf("--ort on: %w", aerr)
			}
			logf("timing in pqvc's runtime only: %v", aerr)
		} else {
			if runner, err = ort.Start(); err != nil {
				return nil, fmt.Errorf("starting ONNX Runtime: %w", err)
			}
			defer runner.Close()
		}
	}

	points := grid.Points()
	cfg := sweep.Config{
		Base:      sweep.Base{Recipe: rec, ModelPath: modelPath, Calib: calib, Eval: evalSet, Hash: hash},
		Points:    points,
		OutDir:    o.OutDir,
		Unit:      o.Unit,
		Jobs:      o.Jobs,
		EvalLimit: o.EvalLimit,
		ORT:       runner,
		Latency:   measure.Options{Batch: 1, Threads: 1, Warmup: max(o.Warmup, 1), Runs: o.Runs},
		Verify:    o.Verify,
		Retime:    o.Retime,
	}
	bar := newSweepBar(env, o.Quiet)
	if bar != nil {
		cfg.Progress = bar.update
	} else {
		cfg.Logf = logf
	}
	logf("sweep of %d points (+ the original model) into %s, %d at a time", len(points), o.OutDir, o.Jobs)
	results, runErr := sweep.Run(cfg)
	if bar != nil {
		bar.finish()
	}
	if results == nil {
		return nil, runErr
	}
	evalImages := 0
	for _, r := range results {
		evalImages = max(evalImages, r.EvalImages)
	}
	timing := fmt.Sprintf("batch 1, 1 thread, median of %d runs after %d warm-up", o.Runs, max(o.Warmup, 1))
	outs, err := sweep.WriteAll(o.OutDir, results, sweep.Summary{Recipe: path, Model: modelPath, EvalImages: evalImages,
		Timing: timing, Seconds: time.Since(start).Seconds()})
	if err != nil {
		return nil, err
	}
	if !o.Quiet {
		printFrontier(env.Stdout, results)
		for _, p := range outs {
			fmt.Fprintf(env.Stdout, "wrote %s\n", p)
		}
	}
	return results, runErr
}

// sweepHash identifies everything a point's figures depend on apart from
// the point itself: the base recipe (canonical text, so comments do not
// matter), the model and data files' contents, and the options that change
// what is built or evaluated. Timing options are left out: re-timing does
// not need a rebuild.
func sweepHash(rec *dsl.Recipe, o SweepOptions, files ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "recipe\x00%s\x00unit\x00%s\x00eval-limit\x00%d\x00verify\x00%v\x00", dsl.Format(rec), o.Unit, o.EvalLimit, o.Verify)
	for _, f := range files {
		if f == "" {
			io.WriteString(h, "none\x00")
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("hashing %s: %w", f, err)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// absPath makes p absolute; "" stays "" and a path that cannot be made
// absolute stays as it is.
func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// printFrontier lists the latency frontier on stdout, the figure people
// usually want first.
func printFrontier(w io.Writer, rs []*sweep.Result) {
	useORT := sweep.UseORT(rs)
	rt := "pqvc runtime"
	if useORT {
		rt = "ONNX Runtime"
	}
	fmt.Fprintf(w, "Pareto frontier, accuracy against %s latency:\n", rt)
	for _, r := range rs {
		if !r.ParetoLatency {
			continue
		}
		acc := "–"
		if r.AccuracyPct != nil {
			acc = strconv.FormatFloat(*r.AccuracyPct, 'f', 2, 64) + "%"
		}
		fmt.Fprintf(w, "  %-28s %8s  %8.3f ms  %8.1f KiB\n", r.ID, acc, r.Latency(useORT), float64(r.FileBytes)/1024)
	}
}

// sweepBar is the progress bar on stderr: one bar per stage.
type sweepBar struct {
	w     io.Writer
	stage string
	bar   *progressbar.ProgressBar
}

// newSweepBar returns a bar when stderr is a terminal and the run is not
// quiet or under go test; otherwise nil, and progress goes to log lines.
func newSweepBar(env *Env, quiet bool) *sweepBar {
	if quiet || testing.Testing() {
		return nil
	}
	f, ok := env.Stderr.(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &sweepBar{w: f}
}

func (b *sweepBar) update(stage string, done, total int) {
	if b.stage != stage {
		b.finish()
		b.stage = stage
		desc := "building points"
		if stage == "latency" {
			desc = "timing points  "
		}
		b.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(b.w), progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(30))
	}
	b.bar.Set(done)
}

func (b *sweepBar) finish() {
	if b.bar != nil {
		b.bar.Finish()
		fmt.Fprintln(b.w)
		b.bar = nil
	}
}
