package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An interrupted run (Ctrl-C, or a CI job's timeout sending SIGTERM) must
// leave the output folder as it was, like a failed one: no staging folder,
// no temporary file, earlier outputs untouched, and no output folder when
// the run created it. The run gets the signal in the middle of its passes,
// with its staging folder already made.
func TestInterruptedRunLeavesOutputsUntouched(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pqvc")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pqvc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	assets, err := filepath.Abs("../../assets")
	if err != nil {
		t.Fatal(err)
	}
	recipe := filepath.Join(dir, "r.pqv")
	// Taylor importance over 256 images: seconds of work to interrupt.
	body := "model \"" + assets + "/deit_fmnist.onnx\"\ncalibrate_with \"" + assets + "/fmnist_calib.npz\"\n" +
		"canonicalize\nimportance taylor batches=8\nprune mlp ratio=25%\nemit onnx \"a.onnx\"\nemit go \"pkg\"\n"
	if err := os.WriteFile(recipe, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		sig      syscall.Signal
		code     int
		existing bool // the output folder holds an earlier run's outputs
	}{
		{"SIGINT into an existing folder", syscall.SIGINT, 130, true},
		{"SIGTERM into a new folder", syscall.SIGTERM, 143, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			var before map[string]string
			if tc.existing {
				if err := os.MkdirAll(filepath.Join(out, "pkg"), 0o755); err != nil {
					t.Fatal(err)
				}
				for p, s := range map[string]string{"a.onnx": "an earlier model", "report.json": "{}", "pkg/x.go": "package x"} {
					if err := os.WriteFile(filepath.Join(out, p), []byte(s), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				before = snapshot(t, out)
			}
			cmd := exec.Command(bin, recipe, "-o", out, "-q", "--latency=false")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			staged := false
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if m, _ := filepath.Glob(filepath.Join(out, ".pqvc-stage-*")); len(m) > 0 {
					staged = true
					break
				}
			}
			if !staged {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no staging folder appeared; stderr %q", stderr.String())
			}
			time.Sleep(300 * time.Millisecond) // into the passes
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit %v, want %d; stderr %q", err, tc.code, stderr.String())
			}
			want := "pqvc: interrupted (" + tc.sig.String() + "); temporary files removed\n"
			if tc.sig == syscall.SIGINT {
				want = "pqvc: interrupted (interrupt); temporary files removed\n"
			}
			if stderr.String() != want {
				t.Errorf("stderr %q, want %q", stderr.String(), want)
			}
			if tc.existing {
				sameTree(t, tc.name, snapshot(t, out), before)
			} else if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the output folder the run created is still there (%v): %v", err, strings.Join(names(out), ", "))
			}
		})
	}
}

// names lists what is under dir, for a failure message.
func names(dir string) []string {
	var s []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, _ error) error {
		s = append(s, p)
		return nil
	})
	return s
}
