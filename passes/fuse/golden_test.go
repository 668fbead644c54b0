package fuse_test

import (
	"fmt"
	goldenflag "github.com/pqvc/pqvc/internal/golden"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/canon" // a recipe may canonicalize first
	"github.com/pqvc/pqvc/runtime"
)

var update = goldenflag.Update // shared, so `go test ./... -update` works in every package

// TestGolden runs testdata/graphs/fuse/*.txtar: sections recipe (one pass a
// line, name=value options, [a, b] lists), input.ir, and want.ir or error.
// Beyond the exact text, every case that succeeds must compute the same
// outputs as its input in the runtime (within 1e-5): a golden pins the
// rewrite's shape, the runtime its meaning. -update rewrites want.ir/error.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/graphs/fuse/*.txtar")
	if len(files) == 0 {
		t.Fatal("no goldens in testdata/graphs/fuse")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) { golden(t, file) })
	}
}

func golden(t *testing.T, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string]string{}
	for _, f := range ar.Files {
		sec[f.Name] = string(f.Data)
	}
	g, err := ir.Parse(sec["input.ir"])
	if err != nil {
		t.Fatalf("input.ir: %v", err)
	}
	if err := ir.Verify(g); err != nil {
		t.Fatalf("input.ir does not verify: %v", err)
	}
	h := g.Clone()
	pl, err := recipe(sec["recipe"])
	if err == nil {
		_, err = passes.Run(h, pl, passes.Config{Verify: true})
	}
	name, got := "want.ir", ""
	if err != nil {
		name, got = "error", err.Error()+"\n"
	} else {
		got = h.String()
		sameOutputs(t, g, h)
	}
	if strings.HasPrefix(filepath.Base(file), "no_fire") && err == nil && got != sec["input.ir"] {
		t.Errorf("a no_fire case must leave its (canonically printed) input alone; got\n%s", got)
	}
	if *update {
		replaced := false
		for i, f := range ar.Files {
			if f.Name == "want.ir" || f.Name == "error" {
				ar.Files[i], replaced = txtar.File{Name: name, Data: []byte(got)}, true
			}
		}
		if !replaced {
			ar.Files = append(ar.Files, txtar.File{Name: name, Data: []byte(got)})
		}
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, ok := sec[name]
	switch {
	case !ok:
		t.Errorf("got %s, which the case does not expect:\n%s", name, got)
	case name == "error" && !strings.Contains(got, strings.TrimSpace(want)):
		t.Errorf("error %q does not contain %q", got, strings.TrimSpace(want))
	case name == "want.ir" && got != want:
		t.Errorf("graph differs from want.ir (-update rewrites it):\ngot\n%s", got)
	}
}

// recipe parses one pass a line: the pass name and name=value options.
func recipe(src string) (*passes.Pipeline, error) {
	pl := &passes.Pipeline{}
	for i, line := range strings.Split(src, "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line) // lists have no spaces: patterns=[qkv,attention]
		if len(fields) == 0 {
			continue
		}
		p := passes.Lookup(fields[0])
		if p == nil {
			return nil, fmt.Errorf("recipe:%d: unknown pass %q", i+1, fields[0])
		}
		opts := passes.NewOptions(p)
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(f, "=")
			if err := passes.SetOption(p, opts, k, literal(v)); err != nil {
				return nil, err
			}
		}
		pl.Steps = append(pl.Steps, passes.Step{Pass: p, Options: opts, Pos: "recipe:" + strconv.Itoa(i+1)})
	}
	return pl, nil
}

func literal(s string) passes.Literal {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		l := passes.Literal{Kind: passes.LitList}
		for _, it := range strings.Split(s[1:len(s)-1], ",") {
			if it = strings.TrimSpace(it); it != "" {
				l.Items = append(l.Items, literal(it))
			}
		}
		return l
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return passes.Literal{Kind: passes.LitInt, Text: s}
	}
	return passes.Literal{Kind: passes.LitIdent, Text: s}
}

// sameOutputs runs g and h on the same deterministic inputs and requires
// equal outputs within 1e-5.
func sameOutputs(t *testing.T, g, h *ir.Graph) {
	t.Helper()
	in := map[string]*ir.Tensor{}
	for _, v := range g.Inputs {
		dims, ok := v.Type.Shape.Ints()
		if !ok || v.Type.DType != ir.F32 {
			t.Fatalf("input %s: golden inputs must be static f32", v)
		}
		x := ir.MustTensor(ir.F32, dims...)
		for i := range x.F32() {
			x.F32()[i] = float32(math.Sin(float64(i)*0.7 + 0.3))
		}
		in[v.Name] = x
	}
	want, got := runAll(t, g, in), runAll(t, h, in)
	for k, w := range want {
		if d := maxDiff(w, got[k]); !(d <= 1e-5) {
			t.Errorf("output %s changed by %g", k, d)
		}
	}
}

func runAll(t *testing.T, g *ir.Graph, in map[string]*ir.Tensor) map[string]*ir.Tensor {
	t.Helper()
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
