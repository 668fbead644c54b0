// Package passes holds pqvc's pass API, registry and runner, and (one file
// each) the passes themselves.
//
// A Pass is shaped like golang.org/x/tools/go/analysis: a name (the recipe
// word), a doc, the analyses it requires, an options struct filled from the
// recipe, and a Run function. Analyses return results and never mutate the
// IR; transforms mutate it and return stats. Passes never touch files or
// flags: data reaches them through the Context.
//
// Custom passes are ordinary Go packages that call Register from init; a
// user's own main imports them for that side effect and calls cli.Main.
package passes

import (
	"fmt"
	"sort"
	"sync"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/ir"
)

// Pass is one analysis or transform.
type Pass struct {
	Name     string  // snake_case; the recipe word
	Doc      string  // first line is the title
	Requires []*Pass // analyses whose results Run reads from ctx.ResultOf
	// Options is a pointer to a struct holding the defaults. Each recipe
	// step gets its own copy, filled from the recipe (see options.go).
	Options any
	// Analysis marks a pass that only computes a result: the runner may
	// reuse its result instead of running it again, and skips Verify.
	Analysis bool
	Run      func(ctx *Context, g *ir.Graph) (any, error)
}

// Title is the first line of Doc.
func (p *Pass) Title() string {
	for i, c := range p.Doc {
		if c == '\n' {
			return p.Doc[:i]
		}
	}
	return p.Doc
}

// Context is what a pass sees while it runs.
type Context struct {
	Pass    *Pass
	Options any // this step's options: a pointer to the pass's options struct
	// ResultOf holds the results of the pass's Requires.
	ResultOf map[*Pass]any
	// Available holds every analysis result still valid for the current
	// graph, required or not: a pass can use an analysis the recipe ran
	// explicitly (prune uses importance scores when a step computed them)
	// without forcing it to run when the recipe did not.
	Available map[*Pass]any
	// Calib and Eval are the recipe's datasets (nil when not given).
	Calib, Eval *data.Dataset
	// Logf reports progress to the user (never nil).
	Logf func(format string, args ...any)
}

var (
	regMu    sync.RWMutex
	registry = map[string]*Pass{}
)

// Register adds a pass. Like database/sql.Register it panics on an empty or
// duplicate name or a malformed options struct: both are programming errors
// caught the first time the binary starts.
func Register(p *Pass) {
	regMu.Lock()
	defer regMu.Unlock()
	if p == nil || p.Name == "" {
		panic("passes: Register of a pass without a name")
	}
	if !isSnake(p.Name) {
		panic(fmt.Sprintf("passes: pass name %q is not snake_case", p.Name))
	}
	if _, dup := registry[p.Name]; dup {
		panic(fmt.Sprintf("passes: Register called twice for pass %q", p.Name))
	}
	if p.Run == nil {
		panic(fmt.Sprintf("passes: pass %q has no Run", p.Name))
	}
	if _, err := optionSpecs(p.Options); err != nil {
		panic(fmt.Sprintf("passes: pass %q: %v", p.Name, err))
	}
	registry[p.Name] = p
}

// Lookup returns the registered pass called name, or nil.
func Lookup(name string) *Pass {
	regMu.RLock()
	defer regMu.RUnlock()
	return registry[name]
}

// All returns every registered pass, sorted by name.
func All() []*Pass {
	regMu.RLock()
	defer regMu.RUnlock()
	ps := make([]*Pass, 0, len(registry))
	for _, p := range registry {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

// Names returns every registered pass name, sorted.
func Names() []string {
	var ns []string
	for _, p := range All() {
		ns = append(ns, p.Name)
	}
	return ns
}

func isSnake(s string) bool {
	for i, c := range s {
		if c == '_' && i > 0 || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return s != ""
}
