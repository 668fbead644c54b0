// Package backend is the registry of output formats. Each backend (onnx,
// ptl, go) lives in its own package and registers an Emitter by name from
// init; recipes name them in `emit FORMAT "path"` lines. Backends write
// files; they never change the graph.
package backend

import (
	"fmt"
	"sort"
	"sync"

	"github.com/pqvc/pqvc/ir"
)

// Emitter writes g to path. Options are the emit line's name=value pairs in
// recipe syntax; an emitter rejects names it does not know. It must write
// atomically (temporary file, then rename).
type Emitter func(path string, g *ir.Graph, options map[string]string) error

// Backend is a registered output format.
type Backend struct {
	Name string // the recipe word
	Doc  string // one line
	Emit Emitter
}

var (
	mu       sync.RWMutex
	backends = map[string]*Backend{}
)

// Register adds a backend; it panics on an empty or duplicate name.
func Register(b *Backend) {
	mu.Lock()
	defer mu.Unlock()
	if b == nil || b.Name == "" || b.Emit == nil {
		panic("backend: Register needs a name and an Emit func")
	}
	if _, dup := backends[b.Name]; dup {
		panic("backend: Register called twice for " + b.Name)
	}
	backends[b.Name] = b
}

// Lookup returns the backend called name, or nil.
func Lookup(name string) *Backend {
	mu.RLock()
	defer mu.RUnlock()
	return backends[name]
}

// Names lists registered backend names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	var ns []string
	for n := range backends {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// UnknownOption is the error for an emit option a backend does not take.
func UnknownOption(format string, options map[string]string, known ...string) error {
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok := false
		for _, kn := range known {
			ok = ok || kn == k
		}
		if !ok {
			return fmt.Errorf("emit %s has no option %q (it takes %v)", format, k, known)
		}
	}
	return nil
}
