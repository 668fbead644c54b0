package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/internal/cleanup"
)

// staging collects a recipe run's outputs in a hidden folder inside the
// output folder and moves them into place only when every step succeeded.
// A run that fails at any point (a pass, an emit, a report) leaves the
// output folder as it was: outputs of an earlier run stay byte-identical
// and no partial or temporary file remains.
type staging struct {
	out       string // the output folder
	dir       string // the hidden staging folder inside it
	created   bool   // out did not exist before this run
	committed bool
	untrack   []func() // for cleanup's signal handler
}

// newStaging prepares the output folder (creating it when its parent
// exists) and a staging folder inside it, so that the final moves are
// renames within one file system.
func newStaging(out string) (*staging, error) {
	_, statErr := os.Stat(out)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := prepareOutDir(out); err != nil {
		return nil, err
	}
	s := &staging{out: out, created: created}
	if created {
		s.untrack = append(s.untrack, cleanup.TrackEmptyDir(out))
	}
	removeStaleStaging(out)
	dir, err := os.MkdirTemp(out, fmt.Sprintf("%s%d-*", stagePrefix, os.Getpid()))
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("output folder %s is not writable: %w", out, err)
	}
	s.dir = dir
	s.untrack = append(s.untrack, cleanup.Track(dir))
	return s, nil
}

// stagePrefix starts a staging folder's name; the owner's process id and a
// random suffix follow.
const stagePrefix = ".pqvc-stage-"

// removeStaleStaging removes staging folders that a run killed outright
// (SIGKILL, a power cut: nothing could clean up) left in out. A folder is
// stale when the process its name records no longer exists; one of a run
// still going, here or in another pqvc writing to the same folder, stays.
func removeStaleStaging(out string) {
	ents, err := os.ReadDir(out)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), stagePrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(out, e.Name()))
	}
}

// path is where the output at rel (relative to the output folder) is
// written before the commit.
func (s *staging) path(rel string) string { return filepath.Join(s.dir, rel) }

// unstage rewrites an error that mentions the staging folder so that it
// names the output folder the user asked for.
func (s *staging) unstage(err error) error {
	if err == nil || !strings.Contains(err.Error(), s.dir) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), s.dir, s.out))
}

// commit moves every staged file into the output folder. Every target is
// checked before the first move, so a target that cannot be written (a
// folder in the way, a file where a folder should be) fails the run with
// nothing moved.
func (s *staging) commit() error {
	// A signal during the moves would leave some new outputs next to old
	// ones: it waits until they are done.
	defer cleanup.Hold()()
	var rels []string
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(s.dir, p)
			if err != nil {
				return err
			}
			rels = append(rels, rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("collecting outputs: %w", s.unstage(err))
	}
	sort.Strings(rels)
	for _, rel := range rels {
		if err := checkTarget(s.out, rel); err != nil {
			return err
		}
	}
	for _, rel := range rels {
		dst := filepath.Join(s.out, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", dst, err)
		}
		if err := os.Rename(s.path(rel), dst); err != nil {
			return fmt.Errorf("writing %s: %w", dst, s.unstage(err))
		}
	}
	s.committed = true
	return nil
}

// checkTarget reports why out/rel cannot receive a file: a folder at the
// path itself, or a file where one of its parent folders should be.
func checkTarget(out, rel string) error {
	dst := filepath.Join(out, rel)
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		return fmt.Errorf("cannot write %s: it is a folder", dst)
	}
	for p := filepath.Dir(rel); p != "." && p != string(filepath.Separator); p = filepath.Dir(p) {
		if st, err := os.Stat(filepath.Join(out, p)); err == nil && !st.IsDir() {
			return fmt.Errorf("cannot write %s: %s is a file, not a folder", dst, filepath.Join(out, p))
		}
	}
	return nil
}

// cleanup removes the staging folder, and the output folder too when this
// run created it and failed (os.Remove only removes an empty folder).
func (s *staging) cleanup() {
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	if s.created && !s.committed {
		os.Remove(s.out)
	}
	for _, u := range s.untrack {
		u()
	}
}
