package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pqvc/pqvc/backend"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/eval"
	"github.com/pqvc/pqvc/internal/atomicfile"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

func init() {
	addCommand(&command{name: "recipe", summary: "run a recipe (also: pqvc RECIPE.pqv)", run: runRecipe})
}

// RecipeOptions are the command-line overrides of a recipe run.
type RecipeOptions struct {
	Model, Calib, Eval string // override the recipe's paths ("" keeps them)
	OutDir             string // output folder
	DumpAfter          string // pass after which to write the IR
	Verify             bool
	RefuseNonfinite    bool // refuse a model with NaN/Inf weights instead of warning
	Latency            bool // time the model before and after (pqvc runtime, and ONNX Runtime when installed)
	Quiet              bool
}

func runRecipe(env *Env, args []string) error {
	fs := flag.NewFlagSet("recipe", flag.ContinueOnError)
	var o RecipeOptions
	fs.StringVar(&o.Model, "model", "", "model to use instead of the recipe's")
	fs.StringVar(&o.Calib, "calib", "", "calibration data to use instead of the recipe's")
	fs.StringVar(&o.Eval, "eval", "", "evaluation data to use instead of the recipe's")
	fs.StringVar(&o.OutDir, "o", "out", "output folder (created if its parent exists)")
	fs.StringVar(&o.DumpAfter, "dump-after", "", "write the textual IR after this pass to OUT/after_PASS.ir")
	fs.BoolVar(&o.Verify, "verify", true, "verify the IR after every transform")
	fs.BoolVar(&o.Quiet, "q", false, "print only errors")
	fs.BoolVar(&o.Latency, "latency", true, "time the model before and after for the report (batch 1, 1 thread)")
	fs.BoolVar(&o.RefuseNonfinite, "refuse-nonfinite", false, "refuse a model whose weights hold NaN or Inf (default: warn)")
	pos, err := parse(env, fs, args, "RECIPE.pqv [--model PATH] [--calib PATH] [--eval PATH] [-o DIR] [--dump-after=PASS] [--verify=false]")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one recipe file, have %d arguments", len(pos))
	}
	if o.DumpAfter != "" && passes.Lookup(o.DumpAfter) == nil {
		return usagef("--dump-after: no pass called %q", o.DumpAfter)
	}
	rep, err := RunRecipe(env, pos[0], o)
	if err != nil {
		return err
	}
	if !o.Quiet {
		fmt.Fprintf(env.Stdout, "params %d → %d, MACs %d → %d", rep.ParamsBefore, rep.ParamsAfter, rep.MACsBefore, rep.MACsAfter)
		if rep.AccuracyBefore != nil && rep.AccuracyAfter != nil {
			fmt.Fprintf(env.Stdout, ", accuracy %.2f%% → %.2f%%", 100**rep.AccuracyBefore, 100**rep.AccuracyAfter)
		}
		fmt.Fprintln(env.Stdout)
		for _, out := range rep.Outputs {
			fmt.Fprintf(env.Stdout, "wrote %s\n", filepath.Join(o.OutDir, filepath.FromSlash(out)))
		}
	}
	return nil
}

// RunRecipe parses and runs a recipe file, writes its outputs and reports
// into o.OutDir, and returns the report.
func RunRecipe(env *Env, path string, o RecipeOptions) (*Report, error) {
	start := time.Now()
	rec, modelPath, calibPath, evalPath, err := parseRecipe(path, o)
	if err != nil {
		return nil, err
	}
	// Outputs go to a staging folder and move into o.OutDir only once the
	// whole run has succeeded: a failure leaves earlier outputs untouched.
	st, err := newStaging(o.OutDir)
	if err != nil {
		return nil, err
	}
	defer st.cleanup()
	logf := func(format string, args ...any) {
		if !o.Quiet {
			fmt.Fprintf(env.Stderr, "pqvc: "+format+"\n", args...)
		}
	}
	large := false
	if fi, err := os.Stat(modelPath); err == nil {
		large = softMemoryLimit(fi.Size())
	}
	g, err := loadModelChecked(env, modelPath, o.RefuseNonfinite)
	if err != nil {
		return nil, err
	}
	calib, evalSet, err := loadRecipeData(g, calibPath, evalPath)
	if err != nil {
		return nil, err
	}
	before := ir.ComputeStats(g)
	rep := &Report{Recipe: path, Model: modelPath, ParamsBefore: before.Params, MACsBefore: before.MACs, BytesBefore: before.Bytes, Outputs: []string{}}
	if evalSet != nil {
		r, err := eval.Accuracy(g, evalSet, eval.Options{})
		if err != nil {
			return nil, fmt.Errorf("evaluating %s before the passes: %w", modelPath, err)
		}
		rep.AccuracyBefore, rep.EvalImages = &r.Accuracy, r.N
		logf("accuracy before: %.2f%% on %d images", 100*r.Accuracy, r.N)
	}
	if err := rep.measureBefore(g, modelPath, o.Latency); err != nil {
		return nil, err
	}
	pl := rec.Pipeline()
	cfg := passes.Config{Verify: o.Verify, Calib: calib, Eval: evalSet, Logf: logf, DumpAfter: o.DumpAfter,
		Dump: func(step int, pass string, g *ir.Graph) error {
			var b bytes.Buffer
			if err := ir.Print(&b, g); err != nil {
				return err
			}
			rel := "after_" + pass + ".ir"
			rep.Outputs = append(rep.Outputs, filepath.ToSlash(rel))
			return st.unstage(atomicfile.WriteFile(st.path(rel), b.Bytes()))
		}}
	for i, step := range pl.Steps {
		logf("[%d/%d] %s", i+1, len(pl.Steps), step.Pass.Name)
	}
	prep, err := passes.Run(g, pl, cfg)
	if err != nil {
		return nil, err
	}
	rep.Passes = passReports(prep)
	after := ir.ComputeStats(g)
	rep.ParamsAfter, rep.MACsAfter, rep.BytesAfter = after.Params, after.MACs, after.Bytes
	if evalSet != nil {
		r, err := eval.Accuracy(g, evalSet, eval.Options{})
		if err != nil {
			return nil, fmt.Errorf("evaluating the result: %w", err)
		}
		rep.AccuracyAfter = &r.Accuracy
		logf("accuracy after: %.2f%%", 100*r.Accuracy)
	}
	onnxOut := "" // the first ONNX output, which ONNX Runtime times
	for _, e := range rec.Emits {
		b := backend.Lookup(e.Format)
		if err := checkTarget(o.OutDir, e.Path); err != nil {
			return nil, fmt.Errorf("%s: emit %s: %w", e.Pos, e.Format, err)
		}
		staged := st.path(e.Path)
		collectBeforeEmit(large)
		if err := os.MkdirAll(filepath.Dir(staged), 0o755); err != nil {
			return nil, fmt.Errorf("%s: emit %s: %w", e.Pos, e.Format, st.unstage(err))
		}
		if err := b.Emit(staged, g, emitOptions(e)); err != nil {
			return nil, fmt.Errorf("%s: emit %s: %w", e.Pos, e.Format, st.unstage(err))
		}
		rep.Outputs = append(rep.Outputs, filepath.ToSlash(e.Path))
		if e.Format == "onnx" && onnxOut == "" {
			onnxOut = staged
		}
	}
	if err := rep.measureAfter(g, onnxOut); err != nil {
		return nil, err
	}
	if rep.ortBefore != nil {
		// Drop the graph (dead from here on anyway; explicit so that a later
		// use cannot silently keep it alive) and return its memory to the
		// system before ONNX Runtime loads its own copies of the models.
		g = nil
		releaseMemory(large)
		rep.measureORT()
	}
	mdRel := "report.md"
	if rec.Report != "" {
		mdRel = rec.Report
	}
	rep.Outputs = append(rep.Outputs, "report.json", filepath.ToSlash(mdRel))
	rep.Seconds = time.Since(start).Seconds()
	js, err := rep.JSON()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(st.path("report.json"), js); err != nil {
		return nil, st.unstage(err)
	}
	var md bytes.Buffer
	rep.Markdown(&md)
	if err := os.MkdirAll(filepath.Dir(st.path(mdRel)), 0o755); err != nil {
		return nil, st.unstage(err)
	}
	if err := atomicfile.WriteFile(st.path(mdRel), md.Bytes()); err != nil {
		return nil, st.unstage(err)
	}
	if err := st.commit(); err != nil {
		return nil, err
	}
	return rep, nil
}

// prepareOutDir makes the output folder when its parent exists; a missing
// parent or a folder that cannot be written is an error before any work.
func prepareOutDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("output folder %s is a file", dir)
	case errors.Is(err, os.ErrNotExist):
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("cannot create output folder %s: %w", dir, err)
		}
	case err != nil:
		return err
	}
	f, err := os.CreateTemp(dir, ".pqvc-probe-*")
	if err != nil {
		return fmt.Errorf("output folder %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// parseRecipe reads and checks the recipe at path and resolves its model
// and data paths: a flag in o wins, else the recipe's path relative to the
// recipe's folder. RunRecipe and the sweep share it.
func parseRecipe(path string, o RecipeOptions) (rec *dsl.Recipe, modelPath, calibPath, evalPath string, err error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, "", "", "", err
	}
	if rec, err = dsl.Parse(path, src, backend.Names()); err != nil {
		return nil, "", "", "", err
	}
	base := filepath.Dir(path)
	pick := func(flagVal, recipeVal string) string {
		if flagVal != "" {
			return flagVal
		}
		if recipeVal == "" || filepath.IsAbs(recipeVal) {
			return recipeVal
		}
		return filepath.Join(base, recipeVal)
	}
	return rec, pick(o.Model, rec.Model), pick(o.Calib, rec.Calib), pick(o.Eval, rec.Eval), nil
}

// loadRecipeData loads the calibration and evaluation datasets ("" skips
// one) and checks them against g; evaluation data must be labelled.
func loadRecipeData(g *ir.Graph, calibPath, evalPath string) (calib, evalSet *data.Dataset, err error) {
	if calibPath != "" {
		if calib, err = loadData(calibPath, g); err != nil {
			return nil, nil, err
		}
	}
	if evalPath != "" {
		if evalSet, err = loadData(evalPath, g); err != nil {
			return nil, nil, err
		}
		if evalSet.Y == nil {
			return nil, nil, fmt.Errorf("%s: evaluation data has no labels (member y)", evalPath)
		}
	}
	return calib, evalSet, nil
}

// lazyDataBytes is the size from which a dataset's inputs stay on disk
// and are read as passes need them (about 28 images of 224×224).
const lazyDataBytes = 16 << 20

// loadData reads a dataset and checks its samples fit the model's input.
func loadData(path string, g *ir.Graph) (*data.Dataset, error) {
	ds, err := data.LoadLazy(path, lazyDataBytes)
	if err != nil {
		return nil, err
	}
	if len(g.Inputs) == 1 {
		if err := ds.CheckInput(g.Inputs[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return ds, nil
}

// emitOptions hands an emit line's options to its backend as text.
func emitOptions(e dsl.Emit) map[string]string {
	m := map[string]string{}
	for _, o := range e.Options {
		v := o.Value.Text
		if o.Value.Kind == passes.LitList {
			v = o.Value.String()
		}
		m[o.Name] = v
	}
	return m
}
