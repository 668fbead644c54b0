package sweep

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	backendonnx "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/eval"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/atomicfile"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/measure"
	"github.com/pqvc/pqvc/passes"
)

// ReferenceID names the unmodified input model among the results.
const ReferenceID = "original"

// Base is what every point starts from.
type Base struct {
	Recipe    *dsl.Recipe
	ModelPath string        // the input model, loaded afresh for every point
	Calib     *data.Dataset // nil when the recipe has none
	Eval      *data.Dataset // nil: accuracy is not measured
	// Hash identifies the base (recipe text, model and data files, and any
	// option that changes results): results recorded under another hash are
	// not reused.
	Hash string
}

// Config is a sweep run.
type Config struct {
	Base   Base
	Points []Point
	OutDir string // holds sweep.jsonl, points/ and the reports
	Unit   string // prune unit override ("" keeps the base recipe's)
	Jobs   int    // points built at once; 0 means GOMAXPROCS
	// EvalLimit evaluates only the first EvalLimit images (0: all).
	EvalLimit int
	// ORT, when not nil, also times every point in ONNX Runtime.
	ORT *ort.Runner
	// Latency says how points are timed; Threads 0 means 1.
	Latency measure.Options
	// Verify runs ir.Verify after every transform.
	Verify bool
	// Retime times every point again, even those an earlier run timed
	// (for a quieter machine, or other timing options).
	Retime bool
	// Progress, when set, is called as points finish: stage is "build" or
	// "latency", done counts the points of that stage done so far
	// (including ones a previous run finished).
	Progress func(stage string, done, total int)
	// Logf receives one line per finished point (nil: discard).
	Logf func(format string, args ...any)
}

// Run builds and times every point not already done, then returns the
// results in grid order, the reference (the unmodified model) first. A
// point that fails is recorded with its error and the others go on; the
// returned error then says how many failed.
func Run(cfg Config) ([]*Result, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, int, int) {}
	}
	if cfg.Jobs <= 0 {
		cfg.Jobs = runtime.GOMAXPROCS(0)
	}
	if err := os.MkdirAll(filepath.Join(cfg.OutDir, "points"), 0o755); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	log, err := OpenLog(filepath.Join(cfg.OutDir, "sweep.jsonl"))
	if err != nil {
		return nil, err
	}
	defer log.Close()

	todo := []Point{}
	results := map[string]*Result{}
	ref := log.Lookup(cfg.Base.Hash, ReferenceID)
	if ref == nil || ref.Error != "" {
		ref = nil
	}
	for _, p := range cfg.Points {
		r := log.Lookup(cfg.Base.Hash, p.ID())
		if r != nil && r.Error == "" && r.Stage != "" && fileExists(cfg.path(r)) {
			results[p.ID()] = r
			cfg.Logf("%s: built by an earlier run, skipped", p.ID())
			continue
		}
		todo = append(todo, p)
	}
	total := len(cfg.Points)
	cfg.Progress("build", total-len(todo), total)

	if ref == nil {
		if ref, err = cfg.reference(); err != nil {
			return nil, err
		}
		if err := log.Append(ref); err != nil {
			return nil, err
		}
	}

	// Build phase: cfg.Jobs workers; results are appended as they finish
	// so an interrupted sweep keeps what it did.
	var mu sync.Mutex
	done := total - len(todo)
	var logErr error
	work := make(chan Point)
	var wg sync.WaitGroup
	for range min(cfg.Jobs, max(len(todo), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				r := cfg.build(p)
				mu.Lock()
				results[p.ID()] = r
				if err := log.Append(r); err != nil && logErr == nil {
					logErr = err
				}
				done++
				if r.Error != "" {
					cfg.Logf("%s: failed: %s", p.ID(), r.Error)
				} else {
					cfg.Logf("%s: built in %.1f s", p.ID(), r.BuildSeconds)
				}
				cfg.Progress("build", done, total)
				mu.Unlock()
			}
		}()
	}
	for _, p := range todo {
		work <- p
	}
	close(work)
	wg.Wait()
	if logErr != nil {
		return nil, logErr
	}

	// Latency phase: one point at a time, on Latency.Threads threads.
	all := []*Result{ref}
	for _, p := range cfg.Points {
		all = append(all, results[p.ID()])
	}
	var need []*Result
	for _, r := range all {
		if r.Error == "" && (cfg.Retime || r.RuntimeMs == 0 || cfg.ORT != nil && r.ORTMs == 0) {
			need = append(need, r)
		}
	}
	cfg.Progress("latency", len(all)-len(need), len(all))
	for i, r := range need {
		if err := cfg.time(r); err != nil {
			r.Error = err.Error()
			cfg.Logf("%s: timing failed: %s", r.ID, r.Error)
		} else {
			r.Stage = StageTimed
			cfg.Logf("%s: %.3f ms in pqvc, %s in ONNX Runtime", r.ID, r.RuntimeMs, msOrDash(r.ORTMs))
		}
		if err := log.Append(r); err != nil {
			return nil, err
		}
		cfg.Progress("latency", len(all)-len(need)+i+1, len(all))
	}
	MarkFrontiers(all)
	var failed []error
	for _, r := range all {
		if r.Error != "" {
			failed = append(failed, fmt.Errorf("%s: %s", r.ID, r.Error))
		}
	}
	if len(failed) > 0 {
		return all, fmt.Errorf("sweep: %d of %d points failed: %w", len(failed), len(all), errors.Join(failed...))
	}
	return all, nil
}

func msOrDash(ms float64) string {
	if ms == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f ms", ms)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// reference measures the unmodified input model.
func (cfg *Config) reference() (*Result, error) {
	t0 := time.Now()
	g, err := loadModel(cfg.Base.ModelPath)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.Base.ModelPath)
	if err != nil {
		return nil, err
	}
	r := &Result{Hash: cfg.Base.Hash, ID: ReferenceID, Criterion: NoCriterion, Quant: QuantNone, Reference: true, File: abs}
	if err := cfg.measureGraph(r, g); err != nil {
		return nil, fmt.Errorf("sweep: the input model %s: %w", cfg.Base.ModelPath, err)
	}
	r.BuildSeconds, r.Stage = time.Since(t0).Seconds(), StageBuilt
	return r, nil
}

// build runs one point's passes, evaluates it and writes its ONNX file. Its
// pass log goes to points/ID.log and its recipe to points/ID.pqv.
func (cfg *Config) build(p Point) *Result {
	t0 := time.Now()
	id := p.ID()
	r := &Result{Hash: cfg.Base.Hash, ID: id, Ratio: p.Ratio, Criterion: p.Criterion, Quant: p.Quant}
	fail := func(err error) *Result {
		r.Error = err.Error()
		r.BuildSeconds = time.Since(t0).Seconds()
		return r
	}
	rec, err := Recipe(cfg.Base.Recipe, p, cfg.Unit)
	if err != nil {
		return fail(err)
	}
	dir := filepath.Join(cfg.OutDir, "points")
	if err := atomicfile.WriteFile(filepath.Join(dir, id+".pqv"), []byte(dsl.Format(rec))); err != nil {
		return fail(err)
	}
	g, err := loadModel(cfg.Base.ModelPath)
	if err != nil {
		return fail(err)
	}
	var plog bytes.Buffer
	pcfg := passes.Config{Verify: cfg.Verify, Calib: cfg.Base.Calib, Eval: cfg.Base.Eval,
		Logf: func(format string, args ...any) { fmt.Fprintf(&plog, format+"\n", args...) }}
	_, err = passes.Run(g, rec.Pipeline(), pcfg)
	if werr := atomicfile.WriteFile(filepath.Join(dir, id+".log"), plog.Bytes()); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fail(err)
	}
	r.File = filepath.Join("points", id+".onnx") // relative, so the folder can move
	if err := backendonnx.Write(cfg.path(r), g, backendonnx.Options{}); err != nil {
		return fail(err)
	}
	if err := cfg.measureGraph(r, g); err != nil {
		return fail(err)
	}
	r.BuildSeconds, r.Stage = time.Since(t0).Seconds(), StageBuilt
	return r
}

// measureGraph fills in everything but latency: counts, sizes, accuracy.
func (cfg *Config) measureGraph(r *Result, g *ir.Graph) error {
	st := ir.ComputeStats(g)
	r.Params, r.MACs, r.WeightBytes = st.Params, st.MACs, st.Bytes
	fi, err := os.Stat(cfg.path(r))
	if err != nil {
		return err
	}
	r.FileBytes = fi.Size()
	if r.PeakActivationBytes, err = measure.PeakActivationBytes(g, 1); err != nil {
		return fmt.Errorf("peak activation memory: %w", err)
	}
	if cfg.Base.Eval != nil {
		res, err := eval.Accuracy(g, cfg.Base.Eval, eval.Options{Limit: cfg.EvalLimit})
		if err != nil {
			return fmt.Errorf("evaluating: %w", err)
		}
		acc := 100 * res.Accuracy
		r.AccuracyPct, r.EvalImages = &acc, res.N
	}
	return nil
}

// time measures r's latency from its ONNX file, the same way for points
// built now and points an earlier run built.
func (cfg *Config) time(r *Result) error {
	g, err := loadModel(cfg.path(r))
	if err != nil {
		return err
	}
	o := cfg.Latency
	if o.Threads <= 0 {
		o.Threads = 1
	}
	lat, err := measure.Runtime(g, o)
	if err != nil {
		return fmt.Errorf("timing in pqvc's runtime: %w", err)
	}
	r.RuntimeMs = lat.Ms()
	if cfg.ORT != nil {
		lat, err := measure.ORT(cfg.ORT, g, cfg.path(r), o)
		if err != nil {
			return fmt.Errorf("timing in ONNX Runtime: %w", err)
		}
		r.ORTMs = lat.Ms()
	}
	return nil
}

// path is where r's ONNX file is: points' files are recorded relative to
// the output folder, the reference's as an absolute path.
func (cfg *Config) path(r *Result) string {
	if filepath.IsAbs(r.File) {
		return r.File
	}
	return filepath.Join(cfg.OutDir, r.File)
}

// loadModel reads an ONNX model and verifies the IR it gives.
func loadModel(path string) (*ir.Graph, error) {
	g, err := onnx.Load(path)
	if err != nil {
		return nil, err
	}
	if err := ir.Verify(g); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}
