package ort

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pqvc/pqvc/internal/tensorio"
)

const addModel = "testdata/add.onnx" // see testdata/gen_add.py

// shared is one Runner for the package's tests (start-up is the slow part).
var (
	sharedOnce sync.Once
	shared     *Runner
	sharedErr  error
)

func runner(t *testing.T) *Runner {
	t.Helper()
	Require(t)
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func addInputs(n int) map[string]*tensorio.Array {
	a := make([]float32, n*3)
	b := make([]float32, n*3)
	for i := range a {
		a[i] = float32(i) - 2.5
		b[i] = float32(i%3) * 0.25
	}
	return map[string]*tensorio.Array{
		"a": {DType: "float32", Shape: []int{n, 3}, Data: a},
		"b": {DType: "float32", Shape: []int{n, 3}, Data: b},
		"q": {DType: "int8", Shape: []int{3}, Data: []int8{-128, 0, 127}},
	}
}

// f16 converts small, exactly representable float32 values to half bits.
func f16(x float32) uint16 {
	if x == 0 {
		return 0
	}
	var sign uint16
	if x < 0 {
		sign, x = 0x8000, -x
	}
	e := 15
	for x >= 2 {
		x /= 2
		e++
	}
	for x < 1 {
		x *= 2
		e--
	}
	return sign | uint16(e)<<10 | uint16((x-1)*1024)
}

func TestRun(t *testing.T) {
	r := runner(t)
	for _, n := range []int{1, 4} { // the batch dimension is symbolic
		in := addInputs(n)
		out, err := r.Run(addModel, in, 1)
		if err != nil {
			t.Fatal(err)
		}
		a, b := in["a"].Data.([]float32), in["b"].Data.([]float32)
		sum := make([]float32, len(a))
		half := make([]uint16, len(a))
		pos := make([]bool, len(a))
		argmax := make([]int64, n)
		for i := range a {
			sum[i] = a[i] + b[i]
			half[i] = f16(sum[i])
			pos[i] = sum[i] > 0
		}
		for row := range n {
			for j := range 3 {
				if sum[row*3+j] > sum[row*3+int(argmax[row])] {
					argmax[row] = int64(j)
				}
			}
		}
		want := map[string]*tensorio.Array{
			"sum":    {DType: "float32", Shape: []int{n, 3}, Data: sum},
			"half":   {DType: "float16", Shape: []int{n, 3}, Data: half},
			"argmax": {DType: "int64", Shape: []int{n}, Data: argmax},
			"pos":    {DType: "bool", Shape: []int{n, 3}, Data: pos},
			"q32":    {DType: "int32", Shape: []int{3}, Data: []int32{-128, 0, 127}},
		}
		if len(out) != len(want) {
			t.Fatalf("n=%d: outputs %v, want %d", n, keys(out), len(want))
		}
		for k, w := range want {
			g := out[k]
			if g == nil || g.DType != w.DType || !reflect.DeepEqual(g.Shape, w.Shape) || !reflect.DeepEqual(g.Data, w.Data) {
				t.Errorf("n=%d: output %s = %+v, want %+v", n, k, g, w)
			}
		}
	}
}

func keys(m map[string]*tensorio.Array) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

func TestRunOptions(t *testing.T) {
	r := runner(t)
	for _, opt := range []string{"all", "extended", "basic", "disable"} {
		out, err := r.RunWith(addModel, addInputs(2), Options{Threads: 2, Opt: opt})
		if err != nil {
			t.Fatalf("opt %s: %v", opt, err)
		}
		if got := out["sum"].Data.([]float32); got[0] != -2.5 {
			t.Fatalf("opt %s: sum[0] = %v", opt, got[0])
		}
	}
}

func TestRunErrors(t *testing.T) {
	r := runner(t)
	missing := addInputs(1)
	delete(missing, "q")
	wrongType := addInputs(1)
	wrongType["a"] = &tensorio.Array{DType: "float64", Shape: []int{1, 3}, Data: []float64{1, 2, 3}}
	wrongShape := addInputs(1)
	wrongShape["a"] = &tensorio.Array{DType: "float32", Shape: []int{1, 4}, Data: []float32{1, 2, 3, 4}}
	invalid := addInputs(1)
	invalid["a"] = &tensorio.Array{DType: "float32", Shape: []int{2, 3}, Data: []float32{1}}
	bad := filepath.Join(t.TempDir(), "bad.onnx")
	os.WriteFile(bad, []byte("not a model"), 0o644)
	for _, tc := range []struct {
		model string
		in    map[string]*tensorio.Array
		opt   Options
		want  string
	}{
		{addModel, missing, Options{}, "missing [q]"},
		{addModel, wrongType, Options{}, "input a: model wants float32"},
		{addModel, wrongShape, Options{}, "Got invalid dimensions for input: a"},
		{addModel, invalid, Options{}, "input a: "},
		{addModel, addInputs(1), Options{Opt: "turbo"}, "opt must be"},
		{"testdata/nope.onnx", addInputs(1), Options{}, "no such file or directory"},
		{bad, addInputs(1), Options{}, "cannot create session"},
	} {
		_, err := r.RunWith(tc.model, tc.in, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line containing %q", tc.model, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "ort: run ") {
			t.Errorf("error lacks context: %v", err)
		}
	}
	// The server survives bad requests.
	if _, err := r.Run(addModel, addInputs(1), 1); err != nil {
		t.Fatalf("after errors: %v", err)
	}
}

func TestBench(t *testing.T) {
	r := runner(t)
	res, err := r.Bench(addModel, addInputs(8), 1, 5, 50)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Runs != 50 || res.Warmup != 5 || res.Threads != 1 || res.Opt != "all" {
		t.Errorf("echoed settings wrong: %+v", res)
	}
	if !(res.MinMs > 0 && res.MinMs <= res.P10Ms && res.P10Ms <= res.MedianMs && res.MedianMs <= res.P90Ms && res.P90Ms <= res.MaxMs) {
		t.Errorf("latencies out of order: %+v", res)
	}
	if res.Median() <= 0 || res.Median() > time.Second {
		t.Errorf("implausible median %v for a 3-op model", res.Median())
	}
	if _, err := r.Bench(addModel, addInputs(1), 1, 0, 0); err == nil || !strings.Contains(err.Error(), "runs must be") {
		t.Errorf("runs=0: %v", err)
	}
}

// TestOverheads logs what using ORT through node costs (go test -v).
func TestOverheads(t *testing.T) {
	Require(t)
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := addInputs(1)
	if _, err := r.Run(addModel, in, 1); err != nil { // session creation
		t.Fatal(err)
	}
	const n = 50
	begin := time.Now()
	for range n {
		if _, err := r.Run(addModel, in, 1); err != nil {
			t.Fatal(err)
		}
	}
	perRun := time.Since(begin) / n
	res, err := r.Bench(addModel, in, 1, 10, 200)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node start-up + ORT load + ping: %v; Runner.Run round trip: %v; ORT run alone (median): %v",
		r.StartupTime(), perRun, res.Median())
}

func TestConcurrentUse(t *testing.T) {
	r := runner(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Run(addModel, addInputs(i+1), 1)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestClosedRunner(t *testing.T) {
	Require(t)
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Run(addModel, addInputs(1), 1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Run after Close: %v", err)
	}
}

func TestServerDeath(t *testing.T) {
	Require(t)
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.cmd.Process.Kill()
	<-r.done
	_, err = r.Run(addModel, addInputs(1), 1)
	if err == nil || !strings.Contains(err.Error(), "ORT server is gone") {
		t.Fatalf("Run on dead server: %v", err)
	}
}

// fakeTB records Skipf/Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                       {}
func (f *fakeTB) Skipf(format string, a ...any) { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.failed = fmt.Sprintf(format, a...)
}

func TestRequireAndAvailable(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(EnvDir, empty)
	err := Available()
	if err == nil || !strings.Contains(err.Error(), "onnxruntime-node is not installed in "+empty) || !strings.Contains(err.Error(), "npm ci --ignore-scripts") {
		t.Fatalf("Available with empty %s: %v", EnvDir, err)
	}
	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	Require(f)
	if f.skipped == "" || f.failed != "" {
		t.Fatalf("outside CI: skipped=%q failed=%q", f.skipped, f.failed)
	}
	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	Require(f)
	if f.failed == "" || f.skipped != "" {
		t.Fatalf("in CI: skipped=%q failed=%q", f.skipped, f.failed)
	}
	t.Setenv(EnvNode, filepath.Join(empty, "no-node"))
	if err := Available(); err == nil || !strings.Contains(err.Error(), EnvNode) {
		t.Fatalf("bad %s: %v", EnvNode, err)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "ort", "ort.go")); err != nil {
		t.Fatalf("RepoRoot() = %s: %v", root, err)
	}
	if got := modulePath([]byte("// x\nmodule \"github.com/pqvc/pqvc\" // c\n\ngo 1.26\n")); got != ModulePath {
		t.Fatalf("modulePath = %q", got)
	}
}

// cli runs scripts/ort/run.mjs directly.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	s, err := find()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.node, append([]string{s.script}, args...)...)
	cmd.Env = append(os.Environ(), EnvDir+"="+s.ortDir)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code <= 0 {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestCLI(t *testing.T) {
	Require(t)
	dir := t.TempDir()
	var args []string
	for _, name := range []string{"a", "b", "q"} {
		p := filepath.Join(dir, name+".npy")
		if err := tensorio.WriteNpy(p, addInputs(2)[name]); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--input", name+"="+p)
	}
	bq := args[2:] // --input b=... --input q=...
	out := filepath.Join(dir, "out")
	stdout, stderr, code := cli(t, append([]string{"run", "--model", addModel, "--outdir", out, "--threads", "1"}, args...)...)
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	var runRes struct {
		OK      bool `json:"ok"`
		Outputs []struct {
			Name  string `json:"name"`
			DType string `json:"dtype"`
			Shape []int  `json:"shape"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(stdout), &runRes); err != nil || !runRes.OK || len(runRes.Outputs) != 5 {
		t.Fatalf("run printed %q (%v)", stdout, err)
	}
	if o := runRes.Outputs[2]; o.Name != "argmax" || o.DType != "int64" || !reflect.DeepEqual(o.Shape, []int{2}) {
		t.Errorf("argmax output described as %+v", o)
	}
	sum, err := tensorio.ReadNpy(filepath.Join(out, "sum.npy"))
	if err != nil || !reflect.DeepEqual(sum.Shape, []int{2, 3}) {
		t.Fatalf("sum.npy: %+v %v", sum, err)
	}

	stdout, stderr, code = cli(t, append([]string{"bench", "--model", addModel, "--threads", "1", "--warmup", "2", "--runs", "9", "--opt", "basic"}, args...)...)
	if code != 0 {
		t.Fatalf("bench: exit %d: %s", code, stderr)
	}
	var b BenchResult
	if err := json.Unmarshal([]byte(stdout), &b); err != nil || b.Runs != 9 || b.Opt != "basic" || b.MedianMs <= 0 {
		t.Fatalf("bench printed %q (%v)", stdout, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{append([]string{"run", "--model", addModel, "--outdir", out, "--input", "a=" + filepath.Join(dir, "nope.npy")}, bq...), "nope.npy: no such file or directory"},
		{append([]string{"run", "--model", addModel, "--outdir", out, "--input", "a=testdata/gen_add.py"}, bq...), "not a .npy file"},
		{append([]string{"run", "--model", addModel, "--outdir", out}, bq...), "missing [a]"},
		{append([]string{"run", "--model", addModel}, args...), "outdir is required"},
		{[]string{"bench", "--model", addModel, "--frobnicate"}, `unknown argument "--frobnicate"`},
		{[]string{"explode"}, `unknown mode "explode"`},
	} {
		_, stderr, code := cli(t, tc.args...)
		if code == 0 || !strings.HasPrefix(stderr, "run.mjs: error: ") || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestJSNpy checks scripts/ort/npy.mjs against the numpy-written fixtures of
// internal/tensorio: it must read them all, and write numpy's exact bytes.
func TestJSNpy(t *testing.T) {
	Require(t)
	s, err := find()
	if err != nil {
		t.Fatal(err)
	}
	fixtures, _ := filepath.Abs("../tensorio/testdata")
	script := `
import { readFileSync } from 'node:fs';
import { decodeNpy, encodeNpy } from ` + "'" + filepath.ToSlash(filepath.Join(filepath.Dir(s.script), "npy.mjs")) + "'" + `;
const dir = process.argv[1];
const exact = ['f32', 'f16', 'f64', 'i8', 'u8', 'i32', 'i64', 'bool', 'scalar', 'empty'];
const out = {};
for (const f of [...exact, 'fortran', 'bigendian', 'bigendian_i8', 'v2']) {
  const buf = readFileSync(dir + '/' + f + '.npy');
  const a = decodeNpy(buf, f);
  out[f] = { dtype: a.dtype, shape: a.shape, first: String(a.data[a.data.length - 1] ?? ''), n: a.data.length };
  if (exact.includes(f) && !encodeNpy(a).equals(buf)) throw new Error(f + ': encodeNpy differs from numpy');
}
for (const [f, want] of [['c64', 'unsupported dtype <c8']]) {
  try { decodeNpy(readFileSync(dir + '/' + f + '.npy'), f); throw new Error(f + ': no error'); }
  catch (e) { if (!e.message.includes(want)) throw e; }
}
const f32 = readFileSync(dir + '/f32.npy');
for (let n = 0; n < f32.length; n++) {
  let ok = false;
  try { decodeNpy(f32.subarray(0, n)); } catch (e) { ok = true; }
  if (!ok) throw new Error('truncated to ' + n + ': no error');
}
console.log(JSON.stringify(out));
`
	cmd := exec.Command(s.node, "--input-type=module", "-e", script, fixtures)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npy.mjs check: %v\n%s", err, b)
	}
	var got map[string]struct {
		DType string `json:"dtype"`
		Shape []int  `json:"shape"`
		Last  string `json:"first"`
		N     int    `json:"n"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	// Fortran data must come out in C order: last element is element 23.
	if f := got["fortran"]; f.DType != "float32" || f.Last != "8.5" || !reflect.DeepEqual(f.Shape, []int{2, 3, 4}) {
		t.Errorf("fortran.npy read as %+v", f)
	}
	if f := got["bigendian_i8"]; f.DType != "int64" || f.Last != "-9" {
		t.Errorf("bigendian_i8.npy read as %+v", f)
	}
	if f := got["f16"]; f.DType != "float16" || f.N != 15 {
		t.Errorf("f16.npy read as %+v", f)
	}
}
