package passes

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/ir"
)

// Step is one pass invocation in a pipeline.
type Step struct {
	Pass    *Pass
	Options any    // from NewOptions(Pass), filled from the recipe
	Pos     string // where the recipe asked for it ("recipe.pqv:3:1"), for errors
}

// Pipeline is an ordered list of steps.
type Pipeline struct {
	Steps []Step
}

// Config controls a pipeline run.
type Config struct {
	// Verify runs ir.Verify after every transform; a failure names the pass.
	Verify bool
	// DumpAfter names a pass after which Dump is called with the graph.
	DumpAfter string
	Dump      func(step int, pass string, g *ir.Graph) error
	// Calib and Eval are handed to passes through the Context.
	Calib, Eval *data.Dataset
	// Logf receives progress messages (nil: discard).
	Logf func(format string, args ...any)
}

// StepReport is what one step did.
type StepReport struct {
	Name    string         `json:"name"`
	Seconds float64        `json:"seconds"`
	Params  int64          `json:"params"` // after the step
	MACs    int64          `json:"macs"`
	Bytes   int64          `json:"bytes"`
	Changed bool           `json:"changed"`
	Ops     map[string]int `json:"-"`
	Result  any            `json:"result,omitempty"` // the pass's result or stats
	// Implicit marks an analysis the runner ran because a later pass
	// required it and the recipe had not asked for it.
	Implicit bool `json:"implicit,omitempty"`
}

// Report is what a pipeline run did, step by step.
type Report struct {
	Steps []StepReport
}

// PassError is a failure inside a pass, naming the pass and where the recipe
// asked for it.
type PassError struct {
	Pass, Pos string
	Err       error
}

func (e *PassError) Error() string {
	msg := e.Err.Error()
	if !strings.HasPrefix(msg, e.Pass+": ") {
		msg = e.Pass + ": " + msg // passes usually prefix their own errors already
	}
	if e.Pos != "" {
		return e.Pos + ": " + msg
	}
	return msg
}

func (e *PassError) Unwrap() error { return e.Err }

type cached struct {
	result  any
	version int
}

// Run executes the pipeline over g, which it mutates.
func Run(g *ir.Graph, pl *Pipeline, cfg Config) (*Report, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if err := CheckOrder(pl); err != nil {
		return nil, err
	}
	r := &runner{g: g, cfg: cfg, cache: map[*Pass]cached{}, rep: &Report{}}
	r.fp = fingerprint(g)
	for i, st := range pl.Steps {
		if _, err := r.step(i, st, false); err != nil {
			return r.rep, err
		}
	}
	return r.rep, nil
}

type runner struct {
	g       *ir.Graph
	cfg     Config
	cache   map[*Pass]cached
	version int // bumped whenever a transform changes the graph
	fp      [32]byte
	rep     *Report
	depth   int
}

// step runs one pass (and, first, any required analysis with no current
// result), recording it in the report.
func (r *runner) step(i int, st Step, implicit bool) (any, error) {
	if r.depth > 16 {
		return nil, &PassError{Pass: st.Pass.Name, Pos: st.Pos, Err: errors.New("requirements nest too deeply (a cycle?)")}
	}
	ctx := &Context{Pass: st.Pass, Options: st.Options, ResultOf: map[*Pass]any{}, Calib: r.cfg.Calib, Eval: r.cfg.Eval, Logf: r.cfg.Logf}
	for _, req := range st.Pass.Requires {
		if c, ok := r.cache[req]; ok && c.version == r.version {
			ctx.ResultOf[req] = c.result
			continue
		}
		r.depth++
		res, err := r.step(i, Step{Pass: req, Options: NewOptions(req), Pos: st.Pos}, true)
		r.depth--
		if err != nil {
			return nil, err
		}
		ctx.ResultOf[req] = res
	}
	if ctx.Options == nil {
		ctx.Options = NewOptions(st.Pass)
	}
	ctx.Available = map[*Pass]any{}
	for p, c := range r.cache {
		if c.version == r.version {
			ctx.Available[p] = c.result
		}
	}
	t0 := time.Now()
	res, err := runSafely(st.Pass, ctx, r.g)
	secs := time.Since(t0).Seconds()
	if err != nil {
		return nil, &PassError{Pass: st.Pass.Name, Pos: st.Pos, Err: err}
	}
	changed := false
	if !st.Pass.Analysis {
		fp := fingerprint(r.g)
		changed = fp != r.fp
		r.fp = fp
		if changed {
			r.version++
		}
		if r.cfg.Verify {
			if err := ir.Verify(r.g); err != nil {
				return nil, &PassError{Pass: st.Pass.Name, Pos: st.Pos, Err: fmt.Errorf("broke the IR: %w", err)}
			}
		}
	} else {
		r.cache[st.Pass] = cached{res, r.version}
	}
	stats := ir.ComputeStats(r.g)
	r.rep.Steps = append(r.rep.Steps, StepReport{Name: st.Pass.Name, Seconds: secs, Params: stats.Params, MACs: stats.MACs,
		Bytes: stats.Bytes, Ops: stats.Ops, Changed: changed, Result: res, Implicit: implicit})
	if r.cfg.Dump != nil && r.cfg.DumpAfter == st.Pass.Name {
		if err := r.cfg.Dump(i, st.Pass.Name, r.g); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// runSafely turns a panicking pass into an error that names it: a plugin's
// bug must not take the whole compile down without saying where.
func runSafely(p *Pass, ctx *Context, g *ir.Graph) (res any, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("panic: %v", x)
		}
	}()
	return p.Run(ctx, g)
}

func fingerprint(g *ir.Graph) [32]byte {
	return sha256.Sum256([]byte(g.String()))
}
