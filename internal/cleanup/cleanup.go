// Package cleanup removes a run's temporary files and folders when the run
// is interrupted.
//
// Outputs are written to temporary files and renamed into place
// (internal/atomicfile, the recipe's staging folder), so a failing run
// leaves nothing behind: its deferred clean-ups run. A run stopped by
// Ctrl-C or by a CI job's timeout (SIGINT, SIGTERM) runs no deferred
// function, and left hidden staging folders and half-written temporary
// files in the user's output folder. Writers register what they create
// with Track; on a signal, OnSignal removes everything still registered
// and exits. Hold marks a critical section (moving staged outputs into
// place) that a signal waits for, so an interrupted run never leaves some
// outputs of the new run next to others of the old.
package cleanup

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
)

var (
	mu      sync.Mutex
	next    int
	tracked = map[int]entry{}
	hold    sync.RWMutex // writers hold it shared; a signal takes it exclusively
)

type entry struct {
	path      string
	onlyEmpty bool // remove only an empty folder (one the run created)
}

// Track registers path (a file or a folder, removed with everything in
// it) for removal on a signal. Call the returned function once path is
// renamed into place or removed.
func Track(path string) (untrack func()) { return add(entry{path: path}) }

// TrackEmptyDir registers a folder the run created, removed on a signal
// only if it is empty by then.
func TrackEmptyDir(path string) (untrack func()) { return add(entry{path: path, onlyEmpty: true}) }

func add(e entry) func() {
	mu.Lock()
	defer mu.Unlock()
	id := next
	next++
	tracked[id] = e
	return func() {
		mu.Lock()
		delete(tracked, id)
		mu.Unlock()
	}
}

// Hold starts a section a signal must not cut into; call the returned
// function to end it.
func Hold() (release func()) {
	hold.RLock()
	return hold.RUnlock
}

// RemoveAll removes every tracked path, the latest first (a staging
// folder before the output folder that holds it), and forgets them.
func RemoveAll() {
	mu.Lock()
	ids := make([]int, 0, len(tracked))
	for id := range tracked {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ids)))
	es := make([]entry, len(ids))
	for i, id := range ids {
		es[i] = tracked[id]
		delete(tracked, id)
	}
	mu.Unlock()
	for _, e := range es {
		if e.onlyEmpty {
			os.Remove(e.path) // fails, as it should, on a folder with files
		} else {
			os.RemoveAll(e.path)
		}
	}
}

// OnSignal makes SIGINT and SIGTERM remove the tracked paths, print one
// line to stderr and exit with 128 + the signal's number, as shells do.
// Call the returned function to restore the default handling.
func OnSignal(stderr io.Writer, prog string) (stop func()) {
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			hold.Lock() // let a commit in progress finish
			RemoveAll()
			fmt.Fprintf(stderr, "%s: interrupted (%v); temporary files removed\n", prog, s)
			code := 130
			if s == syscall.SIGTERM {
				code = 143
			}
			os.Exit(code)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
