package main

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/cli"
)

// npy encodes one array in the .npy v1.0 format.
func npy(descr string, shape []int, data []byte) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, tuple)
	pad := 64 - (10+len(h)+1)%64
	h += strings.Repeat(" ", pad%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

// npz zips named .npy members, as numpy.savez does.
func npz(t *testing.T, members map[string][]byte, order []string) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for _, name := range order {
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(members[name])
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// headerEdits are what a hand-edited or foreign .npy header gets wrong.
var headerEdits = [][2]string{
	{"'<f4'", "'<f8'"}, {"'<f4'", "'<i8'"}, {"'<f4'", "'|b1'"}, {"'<f4'", "'>f4'"}, {"'<f4'", "'<f2'"},
	{"'<f4'", "'|u1'"}, {"'<f4'", "'<c8'"}, {"'<f4'", "'garbage'"}, {"'<f4'", "<f4"}, {"'<i8'", "'<f4'"},
	{"'<i8'", "'<i4'"}, {"'<i8'", "'<u8'"}, {"False", "True"}, {"False", "Nope"}, {"(4, 1, 28, 28)", "(4, 1, 28)"},
	{"(4, 1, 28, 28)", "(4, 3, 28, 28)"}, {"(4, 1, 28, 28)", "(99999999999, 99999999999, 28, 28)"},
	{"(4, 1, 28, 28)", "(-4, 1, 28, 28)"}, {"(4, 1, 28, 28)", "()"}, {"(4, 1, 28, 28)", "(4, 1, 28, 28"},
	{"(4, 1, 28, 28)", "(2, 1, 28, 28)"}, {"(4, 1, 28, 28)", "(8, 1, 28, 28)"}, {"(4,)", "(3,)"}, {"(4,)", "(4, 1)"},
	{"(4,)", "(9223372036854775807,)"}, {"'shape'", "'shap'"}, {"'descr'", "'dtype'"}, {"{", ""}, {"}", ""},
	{"\x93NUMPY", "\x93NUMPZ"}, {"\x01\x00", "\x03\x00"}, {"\x01\x00", "\x02\x00"},
}

// TestMutatedNpz throws malformed calibration and evaluation data at the
// CLI: corrupted archives, members corrupted under a valid checksum, and
// edited .npy headers (dtypes, byte order, shapes, overflowing dims), on
// eval, run and a recipe that calibrates, quantizes and evaluates with
// it. The invariants are checkRun's: exit 0 or 1, one line, no output left.
func TestMutatedNpz(t *testing.T) {
	dir := t.TempDir()
	model, err := filepath.Abs("../../assets/deit_fmnist.onnx")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(4, 5))
	xs := make([]byte, 4*28*28*4)
	for i := 0; i < len(xs); i += 4 {
		binary.LittleEndian.PutUint32(xs[i:], math.Float32bits(float32(r.NormFloat64())))
	}
	ys := make([]byte, 4*8)
	for i := range 4 {
		binary.LittleEndian.PutUint64(ys[8*i:], uint64(r.IntN(10)))
	}
	members := map[string][]byte{"x.npy": npy("<f4", []int{4, 1, 28, 28}, xs), "y.npy": npy("<i8", []int{4}, ys)}
	order := []string{"x.npy", "y.npy"}
	good := npz(t, members, order)
	recipe := filepath.Join(dir, "q.pqv")
	os.WriteFile(recipe, []byte("model \"m.onnx\"\ncalibrate\nquantize int8 mode=static\nemit onnx \"q.onnx\"\nreport \"r.md\"\n"), 0o644)

	try := func(i int, b []byte, how string) int {
		p := filepath.Join(dir, fmt.Sprintf("d%d.npz", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(p)
		what := fmt.Sprintf("npz #%d (%s)", i, how)
		out := filepath.Join(dir, fmt.Sprintf("o%d", i))
		defer os.RemoveAll(out)
		code := checkRun(t, what, []string{"eval", model, "--data", p}, "")
		checkRun(t, what, []string{"run", model, "--input", p, "--output", out + ".npy"}, out+".npy")
		os.Remove(out + ".npy")
		checkRun(t, what, []string{recipe, "--model", model, "--calib", p, "--eval", p, "-o", out, "-q", "--latency=false"}, out)
		return code
	}
	if code := try(0, good, "unmutated"); code != cli.ExitOK {
		t.Fatalf("the unmutated data fails (exit %d)", code)
	}
	failed, n := 0, 0
	for _, e := range headerEdits {
		m := map[string][]byte{}
		for k, v := range members {
			m[k] = bytes.Replace(v, []byte(e[0]), []byte(e[1]), 1)
		}
		n++
		if try(n, npz(t, m, order), fmt.Sprintf("header %q → %q", e[0], e[1])) == cli.ExitError {
			failed++
		}
	}
	for range 60 {
		n++
		var b []byte
		var how string
		if r.IntN(2) == 0 {
			b, how = mutateBytes(r, good)
			how = "archive: " + how
		} else {
			name := order[r.IntN(2)]
			m := map[string][]byte{"x.npy": members["x.npy"], "y.npy": members["y.npy"]}
			m[name], how = mutateBytes(r, members[name])
			how = name + ": " + how
			b = npz(t, m, order)
		}
		if try(n, b, how) == cli.ExitError {
			failed++
		}
	}
	if failed < n/3 {
		t.Errorf("only %d of %d mutated files failed; the mutations are too tame", failed, n)
	}
}
