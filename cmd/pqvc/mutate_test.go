package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/cli"
)

// Seeded random mutations of real models and recipes are thrown at the CLI
// in process. Whatever the mutation, pqvc must not panic (cli.Main turns a
// panic into "internal error"), must exit 0 or 1, and when it fails it
// prints exactly one line and leaves no output behind. The seeds are fixed,
// so a failure here reproduces.

// checkRun runs pqvc with args and applies the invariants above; out is a
// path the run must not create when it fails ("" for none).
func checkRun(t *testing.T, what string, args []string, out string) int {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(args, &stdout, &stderr)
	msg := stderr.String()
	if strings.Contains(msg, "internal error") || strings.Contains(msg, "goroutine") || strings.Contains(msg, "panic") {
		t.Errorf("%s: pqvc %s panicked:\n%s", what, strings.Join(args, " "), msg)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, "pqvc: warning: ") {
			lines = append(lines, l)
		}
	}
	switch code {
	case cli.ExitOK:
		if len(lines) != 0 {
			t.Errorf("%s: exit 0 with stderr %q", what, msg)
		}
	case cli.ExitError:
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "pqvc: ") || stdout.Len() != 0 {
			t.Errorf("%s: exit 1 should print one pqvc: line and no stdout, have stderr %q stdout %q", what, msg, stdout.String())
		}
		if len(lines) > 0 {
			t.Logf("%s: %s", what, lines[0]) // the message, for -v review
		}
		if out != "" {
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s: failed run left %s behind (%s)", what, out, lines[0])
			}
		}
	default:
		t.Errorf("%s: exit %d, want 0 or 1; stderr %q", what, code, msg)
	}
	return code
}

// mutateBytes applies one of a few corruptions a disk, a download or a
// buggy exporter produces.
func mutateBytes(r *rand.Rand, b []byte) ([]byte, string) {
	c := bytes.Clone(b)
	switch k := r.IntN(5); k {
	case 0:
		n := 1 + r.IntN(8)
		for range n {
			c[r.IntN(len(c))] ^= 1 << r.IntN(8)
		}
		return c, fmt.Sprintf("%d bit flips", n)
	case 1:
		at := r.IntN(len(c))
		return c[:at], fmt.Sprintf("truncated at %d", at)
	case 2:
		at := r.IntN(len(c))
		n := min(1+r.IntN(64), len(c)-at)
		for i := range n {
			c[at+i] = byte(r.Uint32())
		}
		return c, fmt.Sprintf("%d random bytes at %d", n, at)
	case 3:
		at := r.IntN(len(c))
		ins := make([]byte, 1+r.IntN(16))
		for i := range ins {
			ins[i] = byte(r.Uint32())
		}
		return append(c[:at:at], append(ins, c[at:]...)...), fmt.Sprintf("%d bytes inserted at %d", len(ins), at)
	default:
		// A length-prefix or varint byte set to its maximum.
		at := r.IntN(len(c))
		c[at] = 0xff
		return c, fmt.Sprintf("0xff at %d", at)
	}
}

func TestMutatedModels(t *testing.T) {
	dir := t.TempDir()
	for _, src := range []struct {
		path string
		n    int
	}{{"testdata/corpus/good.onnx", 300}, {"../../assets/deit_fmnist.onnx", 40}} {
		orig, err := os.ReadFile(src.path)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, uint64(len(orig))))
		for i := range src.n {
			b, how := mutateBytes(r, orig)
			p := filepath.Join(dir, fmt.Sprintf("m%d.onnx", i))
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("%s #%d (%s)", filepath.Base(src.path), i, how)
			out := filepath.Join(dir, fmt.Sprintf("c%d.onnx", i))
			checkRun(t, what, []string{"inspect", p}, "")
			checkRun(t, what, []string{"convert", p, out}, out)
			os.Remove(p)
			os.Remove(out)
		}
	}
}

// recipeWords are tokens a mutation splices into a recipe: pass, option
// and value spellings that are nearly right, wrong-typed or out of range.
var recipeWords = []string{
	"prune", "quantize", "fuse", "canonicalize", "calibrate", "importance", "emit", "model",
	"calibrate_with", "evaluate_with", "report", "ratio=", "heads", "mlp", "int8", "fp16",
	"mode=static", "=", "[", "]", ",", "\"", "%", "-", "1e309", "-0", "nan", "inf", "0x10",
	"100%", "1.5", "-1", "99999999999999999999", "true", "maybe", "#", "\n", " ", "\t",
	"patterns=[gelu,", "exclude=[\"*\"]", "emit onnx \"x.onnx\"", "emit onnx \"\"", "emit onnx \"a/../../b\"",
}

var baseRecipes = []string{
	"model \"m.onnx\"\ncanonicalize\nemit onnx \"a.onnx\"\n",
	"model \"m.onnx\"\ncalibrate_with \"c.npz\"\ncanonicalize max_iters=3\nfuse attention=mha\nquantize int8 mode=dynamic\nemit onnx \"q.onnx\"\nreport \"r.md\"\n",
	"model \"m.onnx\"\ncalibrate_with \"c.npz\"\ncalibrate percentile percentile=99.9\nquantize int8 mode=static per_channel=true\nemit onnx \"s.onnx\"\n",
	"model \"m.onnx\"\ncalibrate_with \"c.npz\"\nimportance magnitude\nprune mlp ratio=25%\nquantize fp16\nemit onnx \"h.onnx\"\n",
}

// mutateRecipe edits one random spot of a recipe.
func mutateRecipe(r *rand.Rand, s string) (string, string) {
	at := r.IntN(len(s) + 1)
	switch r.IntN(4) {
	case 0:
		if at == len(s) {
			at--
		}
		return s[:at] + s[at+1:], fmt.Sprintf("delete byte %d", at)
	case 1:
		w := recipeWords[r.IntN(len(recipeWords))]
		return s[:at] + w + s[at:], fmt.Sprintf("insert %q at %d", w, at)
	case 2:
		lines := strings.Split(s, "\n")
		i, j := r.IntN(len(lines)), r.IntN(len(lines))
		lines[i], lines[j] = lines[j], lines[i]
		return strings.Join(lines, "\n"), fmt.Sprintf("swap lines %d and %d", i+1, j+1)
	default:
		lines := strings.Split(s, "\n")
		i := r.IntN(len(lines))
		lines = append(lines[:i+1], lines[i:]...)
		return strings.Join(lines, "\n"), fmt.Sprintf("duplicate line %d", i+1)
	}
}

func TestMutatedRecipes(t *testing.T) {
	dir := t.TempDir()
	model, err := filepath.Abs("testdata/corpus/good.onnx")
	if err != nil {
		t.Fatal(err)
	}
	calib, err := filepath.Abs("testdata/corpus/x4.npz")
	if err != nil {
		t.Fatal(err)
	}
	seed, n := uint64(3), 400 // PQVC_MUTATE_SEED and PQVC_MUTATE_N explore further
	if v, err := strconv.ParseUint(os.Getenv("PQVC_MUTATE_SEED"), 10, 64); err == nil {
		seed = v
	}
	if v, err := strconv.Atoi(os.Getenv("PQVC_MUTATE_N")); err == nil && v > 0 {
		n = v
	}
	r := rand.New(rand.NewPCG(2, seed))
	failed := 0
	for i := range n {
		base := baseRecipes[i%len(baseRecipes)]
		src, how := mutateRecipe(r, base)
		if r.IntN(3) == 0 {
			var how2 string
			src, how2 = mutateRecipe(r, src)
			how += ", " + how2
		}
		p := filepath.Join(dir, fmt.Sprintf("r%d.pqv", i))
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, fmt.Sprintf("out%d", i))
		what := fmt.Sprintf("recipe %d (%s)", i, how)
		if checkRun(t, what, []string{p, "--model", model, "--calib", calib, "-o", out, "-q", "--latency=false"}, out) == cli.ExitError {
			failed++
		}
		os.RemoveAll(out)
	}
	// Most single edits break a recipe; if nearly none fail, the mutations
	// are not reaching the parser and the test proves nothing.
	if failed < n/4 {
		t.Errorf("only %d of %d mutated recipes failed; the mutations are too tame", failed, n)
	}
}
