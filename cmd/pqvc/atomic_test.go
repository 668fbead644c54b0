package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/backend"
	"github.com/pqvc/pqvc/cli"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

// A recipe run that fails, wherever it fails, must leave the output folder
// exactly as it was: earlier outputs byte-identical, no new, partial or
// temporary files, and no output folder at all when the run created it.
//
// The test pass and backend live here rather than in package cli so that
// cli's docs test sees only the real registry (testscript's pqvc, the same
// binary, does list them).

func init() {
	passes.Register(&passes.Pass{Name: "test_fail", Doc: "a transform that always fails (tests only)",
		Run: func(*passes.Context, *ir.Graph) (any, error) {
			return nil, errors.New("failing on purpose")
		}})
	// A careless backend: writes half its file in place, then fails.
	backend.Register(&backend.Backend{Name: "test_partial", Doc: "writes a partial file, then fails (tests only)",
		Emit: func(path string, _ *ir.Graph, _ map[string]string) error {
			if err := os.WriteFile(path, []byte("half a mod"), 0o644); err != nil {
				return err
			}
			return errors.New("disk full, say")
		}})
}

// snapshot maps every file and folder under dir (relative paths) to its
// content ("<dir>" for folders).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			m[rel] = "<dir>"
			return nil
		}
		b, err := os.ReadFile(p)
		m[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: %s disappeared", what, p)
		case g != w:
			t.Errorf("%s: %s changed (%d bytes, was %d)", what, p, len(g), len(w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: %s appeared", what, p)
		}
	}
}

// runPQVC runs the CLI in process and returns its exit code and stderr.
func runPQVC(args ...string) (int, string) {
	var stdout, stderr bytes.Buffer
	code := cli.Main(args, &stdout, &stderr)
	return code, stderr.String()
}

func writeRecipe(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("model \"m.onnx\"\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFailedRunLeavesOutputsUntouched(t *testing.T) {
	model, err := filepath.Abs("testdata/corpus/good.onnx")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	good := writeRecipe(t, dir, "good.pqv", "canonicalize\nemit onnx \"a.onnx\"\nemit onnx \"sub/b.onnx\"\n")
	if code, msg := runPQVC(good, "--model", model, "--dump-after=canonicalize", "-o", out, "-q", "--latency=false"); code != cli.ExitOK {
		t.Fatalf("good run: exit %d: %s", code, msg)
	}
	before := snapshot(t, out)
	for _, f := range []string{"a.onnx", "sub/b.onnx", "report.json", "report.md", "after_canonicalize.ir"} {
		if _, ok := before[filepath.FromSlash(f)]; !ok {
			t.Fatalf("good run did not write %s (have %v)", f, before)
		}
	}
	for _, tc := range []struct {
		name, body, want string
		args             []string
		existingOnly     bool // the failure needs something already in the folder
	}{
		{"failing pass", "canonicalize\ntest_fail\nemit onnx \"a.onnx\"\nemit onnx \"sub/b.onnx\"\n",
			"fail_pass.pqv:3:1: test_fail: failing on purpose", []string{"--dump-after=canonicalize"}, false},
		{"failing pass after the dump", "canonicalize\ntest_fail\nemit onnx \"a.onnx\"\n",
			"test_fail: failing on purpose", []string{"--dump-after=canonicalize"}, false},
		{"second emit fails halfway", "canonicalize\nemit onnx \"a.onnx\"\nemit test_partial \"sub/b.onnx\"\n",
			"fail_emit.pqv:4:1: emit test_partial: disk full, say", nil, false},
		{"second emit path blocked by a file", "canonicalize\nemit onnx \"a.onnx\"\nemit onnx \"a.onnx/c.onnx\"\n",
			"cannot write " + filepath.Join(out, "a.onnx", "c.onnx") + ": " + filepath.Join(out, "a.onnx") + " is a file", nil, false},
		{"report path is a folder", "canonicalize\nemit onnx \"a.onnx\"\nreport \"sub\"\n",
			"cannot write " + filepath.Join(out, "sub") + ": it is a folder", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "fail_pass.pqv"
			if strings.Contains(tc.body, "test_partial") {
				name = "fail_emit.pqv"
			}
			r := writeRecipe(t, dir, name, tc.body)
			args := append([]string{r, "--model", model, "-o", out, "-q", "--latency=false"}, tc.args...)
			code, msg := runPQVC(args...)
			if code != cli.ExitError {
				t.Fatalf("exit %d, want 1; stderr %q", code, msg)
			}
			if !strings.Contains(msg, tc.want) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Errorf("stderr %q: want one line containing %q", msg, tc.want)
			}
			sameTree(t, tc.name, snapshot(t, out), before)

			if tc.existingOnly {
				return
			}
			// Into a fresh folder: the folder this run created is gone again.
			fresh := filepath.Join(dir, "fresh")
			args = append([]string{r, "--model", model, "-o", fresh, "-q", "--latency=false"}, tc.args...)
			if code, msg := runPQVC(args...); code != cli.ExitError {
				t.Fatalf("fresh folder: exit %d, want 1; stderr %q", code, msg)
			}
			if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("failed run left its new output folder behind: %v", snapshot(t, fresh))
			}
		})
	}
}

// The staged outputs of a successful run replace the earlier ones in
// place, and the staging folder is gone afterwards.
func TestSuccessfulRunReplacesOutputs(t *testing.T) {
	model, err := filepath.Abs("testdata/corpus/good.onnx")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(out, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"sub/b.onnx", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(out, f), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := writeRecipe(t, dir, "r.pqv", "canonicalize\nemit onnx \"sub/b.onnx\"\n")
	if code, msg := runPQVC(r, "--model", model, "-o", out, "-q", "--latency=false"); code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, msg)
	}
	got := snapshot(t, out)
	if got[filepath.FromSlash("sub/b.onnx")] == "old" {
		t.Error("sub/b.onnx was not replaced")
	}
	if got["keep.txt"] != "old" {
		t.Error("a file the recipe does not write was touched")
	}
	for p := range got {
		if strings.Contains(p, ".pqvc-") || strings.Contains(p, ".tmp") {
			t.Errorf("temporary %s left behind", p)
		}
	}
}

// A staging folder whose run was killed outright (no signal handler runs
// on SIGKILL) is removed by the next run into the same folder; one whose
// process is alive, and anything not named like a staging folder, stays.
func TestStaleStagingRemoved(t *testing.T) {
	model, err := filepath.Abs("testdata/corpus/good.onnx")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	// Linux pids stop at 2^22; this one was never alive.
	stale := filepath.Join(out, ".pqvc-stage-999999999-123")
	live := filepath.Join(out, fmt.Sprintf(".pqvc-stage-%d-456", os.Getpid()))
	other := filepath.Join(out, ".pqvc-stage-notapid")
	for _, d := range []string{stale, live, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "half.onnx"), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := writeRecipe(t, dir, "r.pqv", "canonicalize\nemit onnx \"a.onnx\"\n")
	if code, msg := runPQVC(r, "--model", model, "-o", out, "-q", "--latency=false"); code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale staging folder kept: %v", err)
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(filepath.Join(d, "half.onnx")); err != nil {
			t.Errorf("%s was touched: %v", d, err)
		}
	}
}
