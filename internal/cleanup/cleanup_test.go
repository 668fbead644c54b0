package cleanup

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestRemoveAll(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out") // a folder the run created
	stage := filepath.Join(out, ".stage")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".a.onnx.tmp1")
	done := filepath.Join(dir, "renamed.tmp")
	for _, p := range []string{filepath.Join(stage, "half"), tmp, done} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	TrackEmptyDir(out)
	Track(stage)
	Track(tmp)
	Track(done)() // renamed into place: no longer the handler's business
	RemoveAll()
	for _, p := range []string{out, stage, tmp} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived: %v", p, err)
		}
	}
	if _, err := os.Stat(done); err != nil {
		t.Errorf("an untracked file was removed: %v", err)
	}

	// A folder the run created is kept when it holds files of its own.
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "kept"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	TrackEmptyDir(out)
	RemoveAll()
	if _, err := os.Stat(filepath.Join(out, "kept")); err != nil {
		t.Errorf("a non-empty folder was removed: %v", err)
	}
}

// TestSignalWaitsForHold runs a helper process that holds a critical
// section when it is interrupted: the handler must let the section finish,
// then remove the tracked file and exit 130.
func TestSignalWaitsForHold(t *testing.T) {
	if dir := os.Getenv("PQVC_CLEANUP_HELPER"); dir != "" {
		helper(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalWaitsForHold$")
	cmd.Env = append(os.Environ(), "PQVC_CLEANUP_HELPER="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "held\n" {
		cmd.Process.Kill()
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(stderr)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("helper exit %v, want 130", err)
	}
	if string(msg) != "helper: interrupted (interrupt); temporary files removed\n" {
		t.Errorf("stderr %q", msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "section-done")); err != nil {
		t.Errorf("the signal cut the held section short: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tracked file survived: %v", err)
	}
}

func helper(dir string) {
	tmp := filepath.Join(dir, "tmp")
	os.WriteFile(tmp, nil, 0o644)
	Track(tmp)
	OnSignal(os.Stderr, "helper")
	release := Hold()
	os.Stdout.WriteString("held\n")
	time.Sleep(300 * time.Millisecond)
	os.WriteFile(filepath.Join(dir, "section-done"), nil, 0o644)
	release()
	time.Sleep(10 * time.Second) // the handler exits before this ends
	os.Exit(3)
}
