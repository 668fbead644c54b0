// Package ort runs ONNX models through ONNX Runtime (the onnxruntime-node
// npm package, CPU execution provider) so that pqvc's tests can use it as a
// numerical oracle and its benchmarks as a peer.
//
// A [Runner] keeps one `node scripts/ort/run.mjs serve` process and talks to
// it over newline-delimited JSON; tensors travel as .npy files in a private
// temporary directory. Starting node and loading the ORT library costs a
// fraction of a second, so start one Runner per test binary or benchmark and
// reuse it; ORT sessions are cached inside the process per model file.
//
// Set-up: `npm ci --ignore-scripts` at the repository root installs
// onnxruntime-node (the CPU library ships inside the package; its post-install
// download is not needed). Tests call [Require], which skips when node or the
// package is missing, except under CI=true where it fails.
package ort

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pqvc/pqvc/internal/tensorio"
)

// ModulePath is the Go module whose root holds node_modules and scripts/ort.
const ModulePath = "github.com/pqvc/pqvc"

// Environment variables that override discovery.
const (
	// EnvDir names a directory holding node_modules/onnxruntime-node, used
	// instead of the repository root.
	EnvDir = "PQVC_ORT_DIR"
	// EnvNode names the node binary, used instead of looking up "node" in PATH.
	EnvNode = "PQVC_NODE"
)

// setup is what Available finds.
type setup struct {
	node   string // node binary
	script string // scripts/ort/run.mjs
	ortDir string // directory with node_modules/onnxruntime-node
}

// Available reports whether ONNX Runtime can be used: it finds the node
// binary, the repository's scripts/ort/run.mjs and
// node_modules/onnxruntime-node with its native library for this platform.
// The error says what is missing and how to install it.
func Available() error {
	_, err := find()
	return err
}

func find() (*setup, error) {
	node := os.Getenv(EnvNode)
	if node == "" {
		p, err := exec.LookPath("node")
		if err != nil {
			return nil, fmt.Errorf("ort: node not found in PATH (install Node.js >= 18, or set %s)", EnvNode)
		}
		node = p
	} else if _, err := os.Stat(node); err != nil {
		return nil, fmt.Errorf("ort: %s=%s: %w", EnvNode, node, err)
	}

	root, rootErr := RepoRoot()
	ortDir := os.Getenv(EnvDir)
	if ortDir == "" {
		if rootErr != nil {
			return nil, rootErr
		}
		ortDir = root
	}
	ortDir, err := filepath.Abs(ortDir)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w", EnvDir, err)
	}
	pkg := filepath.Join(ortDir, "node_modules", "onnxruntime-node")
	if _, err := os.Stat(filepath.Join(pkg, "package.json")); err != nil {
		return nil, fmt.Errorf("ort: onnxruntime-node is not installed in %s (run `npm ci --ignore-scripts` there): %w", ortDir, err)
	}
	if bin := nativeBinding(pkg); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("ort: onnxruntime-node in %s has no native library for %s/%s: %w", ortDir, runtime.GOOS, runtime.GOARCH, err)
		}
	}

	var script string
	for _, dir := range []string{root, ortDir} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "scripts", "ort", "run.mjs")
		if _, err := os.Stat(p); err == nil {
			script = p
			break
		}
	}
	if script == "" {
		if rootErr != nil {
			return nil, fmt.Errorf("ort: cannot find scripts/ort/run.mjs: %w", rootErr)
		}
		return nil, fmt.Errorf("ort: %s is missing", filepath.Join(root, "scripts", "ort", "run.mjs"))
	}
	return &setup{node: node, script: script, ortDir: ortDir}, nil
}

// nativeBinding is the path of the ORT binding onnxruntime-node loads on
// this platform, or "" for platforms we do not know the layout of.
func nativeBinding(pkg string) string {
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	goos := map[string]string{"linux": "linux", "darwin": "darwin", "windows": "win32"}[runtime.GOOS]
	if arch == "" || goos == "" {
		return ""
	}
	return filepath.Join(pkg, "bin", "napi-v6", goos, arch, "onnxruntime_binding.node")
}

// RepoRoot walks up from the working directory to the directory whose
// go.mod declares module github.com/pqvc/pqvc.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("ort: finding repository root: %w", err)
	}
	for dir := wd; ; {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == ModulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("ort: no go.mod for module %s in %s or its parents (set %s)", ModulePath, wd, EnvDir)
		}
		dir = parent
	}
}

// modulePath returns the module path declared in go.mod content.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// Require skips the test when ONNX Runtime is unavailable, or fails it when
// the environment variable CI is "true" (CI must have it installed).
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ONNX Runtime is required in CI: %v", err)
			return
		}
		t.Skipf("ONNX Runtime unavailable: %v", err)
	}
}

// NewTestRunner calls Require, starts a Runner and closes it when the test
// ends.
func NewTestRunner(t testing.TB) *Runner {
	t.Helper()
	Require(t)
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("closing ORT runner: %v", err)
		}
	})
	return r
}

// BenchResult is what a benchmark run reports; latencies are per
// InferenceSession.run call, in milliseconds, measured inside node.
type BenchResult struct {
	MedianMs  float64 `json:"median_ms"`
	P10Ms     float64 `json:"p10_ms"`
	P90Ms     float64 `json:"p90_ms"`
	MinMs     float64 `json:"min_ms"`
	MaxMs     float64 `json:"max_ms"`
	MeanMs    float64 `json:"mean_ms"`
	Threads   int     `json:"threads"`
	Runs      int     `json:"runs"`
	Warmup    int     `json:"warmup"`
	Opt       string  `json:"opt"`        // graph optimization level used
	SessionMs float64 `json:"session_ms"` // session creation; 0 if cached
}

// Median returns the median latency as a Duration.
func (b BenchResult) Median() time.Duration { return ms(b.MedianMs) }

// Min returns the minimum latency as a Duration.
func (b BenchResult) Min() time.Duration { return ms(b.MinMs) }

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// Options are the session settings of a request. Threads is ORT's
// intraOpNumThreads (0: ORT's default, one per core); interOpNumThreads is
// always 1 and execution sequential. Opt is the graph optimization level:
// "all" (the default when empty), "extended", "basic" or "disable".
type Options struct {
	Threads int
	Opt     string
}

// Runner keeps one node process serving ORT requests. Its methods are safe
// for concurrent use; requests are handled one at a time.
type Runner struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	stderr  *tailBuffer
	tmp     string
	next    int
	broken  error // set once the process is unusable
	startup time.Duration
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// Start starts a node process serving ORT requests and waits until it has
// loaded onnxruntime-node.
func Start() (*Runner, error) {
	s, err := find()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "pqvc-ort-")
	if err != nil {
		return nil, fmt.Errorf("ort: %w", err)
	}
	begin := time.Now()
	cmd := exec.Command(s.node, s.script, "serve")
	cmd.Env = append(os.Environ(), EnvDir+"="+s.ortDir)
	cmd.Dir = tmp
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("ort: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("ort: %w", err)
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("ort: starting %s: %w", s.node, err)
	}
	r := &Runner{
		cmd: cmd, stdin: stdin, stdout: bufio.NewReaderSize(stdout, 1<<16),
		stderr: stderr, tmp: tmp, done: make(chan struct{}),
	}
	go func() {
		r.waitErr = cmd.Wait()
		close(r.done)
	}()
	var pong struct {
		ORT string `json:"ort"`
	}
	if err := r.call(map[string]any{"cmd": "ping"}, &pong); err != nil {
		r.Close()
		return nil, fmt.Errorf("ort: starting server: %w", err)
	}
	r.startup = time.Since(begin)
	return r, nil
}

// StartupTime is how long Start took: node start-up, loading
// onnxruntime-node and one round trip.
func (r *Runner) StartupTime() time.Duration { return r.startup }

// Run runs model once with the given inputs (by graph input name) and
// threads, and returns its outputs by name.
func (r *Runner) Run(model string, inputs map[string]*tensorio.Array, threads int) (map[string]*tensorio.Array, error) {
	return r.RunWith(model, inputs, Options{Threads: threads})
}

// RunWith is Run with all session options.
func (r *Runner) RunWith(model string, inputs map[string]*tensorio.Array, o Options) (map[string]*tensorio.Array, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	abs, err := filepath.Abs(model)
	if err != nil {
		return nil, fmt.Errorf("ort: run %s: %w", model, err)
	}
	id := r.nextID()
	dir := filepath.Join(r.tmp, fmt.Sprintf("run%d", id))
	defer os.RemoveAll(dir)
	paths, err := r.writeInputs(dir, inputs)
	if err != nil {
		return nil, fmt.Errorf("ort: run %s: %w", model, err)
	}
	var resp struct {
		Outputs []struct {
			Name string `json:"name"`
			Path string `json:"path"`
		} `json:"outputs"`
	}
	req := map[string]any{"cmd": "run", "model": abs, "inputs": paths, "outdir": filepath.Join(dir, "out"),
		"threads": o.Threads, "opt": optOrDefault(o.Opt)}
	if err := r.callLocked(id, req, &resp); err != nil {
		return nil, fmt.Errorf("ort: run %s: %w", model, err)
	}
	out := make(map[string]*tensorio.Array, len(resp.Outputs))
	for _, o := range resp.Outputs {
		a, err := tensorio.ReadNpy(o.Path)
		if err != nil {
			return nil, fmt.Errorf("ort: run %s: output %s: %w", model, o.Name, err)
		}
		out[o.Name] = a
	}
	return out, nil
}

// Bench runs model warmup times untimed and then runs times timed, and
// reports latency statistics.
func (r *Runner) Bench(model string, inputs map[string]*tensorio.Array, threads, warmup, runs int) (BenchResult, error) {
	return r.BenchWith(model, inputs, Options{Threads: threads}, warmup, runs)
}

// BenchWith is Bench with all session options.
func (r *Runner) BenchWith(model string, inputs map[string]*tensorio.Array, o Options, warmup, runs int) (BenchResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var res BenchResult
	abs, err := filepath.Abs(model)
	if err != nil {
		return res, fmt.Errorf("ort: bench %s: %w", model, err)
	}
	id := r.nextID()
	dir := filepath.Join(r.tmp, fmt.Sprintf("bench%d", id))
	defer os.RemoveAll(dir)
	paths, err := r.writeInputs(dir, inputs)
	if err != nil {
		return res, fmt.Errorf("ort: bench %s: %w", model, err)
	}
	req := map[string]any{"cmd": "bench", "model": abs, "inputs": paths,
		"threads": o.Threads, "warmup": warmup, "runs": runs, "opt": optOrDefault(o.Opt)}
	if err := r.callLocked(id, req, &res); err != nil {
		return res, fmt.Errorf("ort: bench %s: %w", model, err)
	}
	return res, nil
}

func optOrDefault(opt string) string {
	if opt == "" {
		return "all"
	}
	return opt
}

func (r *Runner) nextID() int {
	r.next++
	return r.next
}

// writeInputs writes each input to dir/inK.npy and returns name → path.
func (r *Runner) writeInputs(dir string, inputs map[string]*tensorio.Array) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	paths := make(map[string]string, len(inputs))
	k := 0
	for name, a := range inputs {
		p := filepath.Join(dir, fmt.Sprintf("in%d.npy", k))
		k++
		if err := tensorio.WriteNpy(p, a); err != nil {
			return nil, fmt.Errorf("input %s: %w", name, err)
		}
		paths[name] = p
	}
	return paths, nil
}

// call sends one request and decodes the answer into resp.
func (r *Runner) call(req map[string]any, resp any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.callLocked(r.nextID(), req, resp)
}

func (r *Runner) callLocked(id int, req map[string]any, resp any) error {
	if r.broken != nil {
		return r.broken
	}
	req["id"] = id
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := r.stdin.Write(append(line, '\n')); err != nil {
		return r.fail(fmt.Errorf("writing request: %w", err))
	}
	ans, err := r.stdout.ReadBytes('\n')
	if err != nil {
		return r.fail(fmt.Errorf("reading answer: %w", err))
	}
	var head struct {
		ID    *int   `json:"id"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(ans, &head); err != nil {
		return r.fail(fmt.Errorf("bad answer %.200q: %w", ans, err))
	}
	if head.ID == nil || *head.ID != id {
		return r.fail(fmt.Errorf("answer %.200q does not match request %d", ans, id))
	}
	if !head.OK {
		return errors.New(head.Error)
	}
	if err := json.Unmarshal(ans, resp); err != nil {
		return fmt.Errorf("bad answer %.200q: %w", ans, err)
	}
	return nil
}

// fail marks the runner broken, adding what node said on stderr if it died.
func (r *Runner) fail(err error) error {
	select {
	case <-r.done:
	case <-time.After(2 * time.Second):
	}
	if tail := r.stderr.lastLine(); tail != "" {
		err = fmt.Errorf("%w (node stderr: %s)", err, tail)
	}
	r.broken = fmt.Errorf("ORT server is gone: %w", err)
	return r.broken
}

// Close stops the node process and removes the temporary files.
func (r *Runner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return nil
	}
	if r.broken == nil {
		r.stdin.Write([]byte(`{"cmd":"quit","id":0}` + "\n"))
	}
	r.stdin.Close()
	var err error
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
		err = errors.New("ort: node did not exit; killed")
	}
	if err == nil && r.broken == nil && r.waitErr != nil {
		err = fmt.Errorf("ort: node exited: %w (stderr: %s)", r.waitErr, r.stderr.lastLine())
	}
	os.RemoveAll(r.tmp)
	r.cmd = nil
	if r.broken == nil {
		r.broken = errors.New("ort: runner is closed")
	}
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte{}, b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) lastLine() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := bytes.Split(bytes.TrimSpace(b.buf), []byte("\n"))
	return strings.TrimSpace(string(lines[len(lines)-1]))
}
