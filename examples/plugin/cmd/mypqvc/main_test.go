package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"example.com/pqvcplugin/softmaxout"
	"github.com/pqvc/pqvc/cli"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

// TestRecipeUsesPlugin runs probs.pqv through this binary's cli.Main: the
// recipe names the plugin's pass, and the emitted model ends in a Softmax.
func TestRecipeUsesPlugin(t *testing.T) {
	if _, err := os.Stat("../../../../assets/deit_fmnist.onnx"); err != nil {
		t.Skip("shipped model not present")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := cli.Main([]string{"../../probs.pqv", "-o", out, "-q"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	g, err := onnx.Load(filepath.Join(out, "deit_fmnist_probs.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if op := g.Outputs[0].Value.Op; op != "Softmax" {
		t.Errorf("output is %s, want Softmax", op)
	}
	var rep struct {
		Passes []struct{ Name string } `json:"passes"`
		Acc    *float64                `json:"accuracy_after"`
	}
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Passes) != 1 || rep.Passes[0].Name != "add_softmax" || rep.Acc == nil || *rep.Acc < 0.85 {
		t.Errorf("report: %s", b)
	}
}

// TestGolden runs the plugin's golden cases (same format as pqvc's own
// testdata/graphs), twice, to check idempotence too.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/*.txtar")
	if len(files) == 0 {
		t.Fatal("no golden cases")
	}
	for _, f := range files {
		ar, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sec := map[string]string{}
		for _, fl := range ar.Files {
			sec[fl.Name] = string(fl.Data)
		}
		rec, err := dsl.Parse(f, []byte("model \"m.onnx\"\n"+sec["recipe"]), nil)
		if err != nil {
			t.Fatal(err)
		}
		g, err := ir.Parse(sec["input.ir"])
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := passes.Run(g, rec.Pipeline(), passes.Config{Verify: true}); err != nil {
				t.Fatal(err)
			}
			if got := g.String(); strings.TrimSpace(got) != strings.TrimSpace(sec["want.ir"]) {
				t.Errorf("%s:\n%s\nwant:\n%s", f, got, sec["want.ir"])
			}
		}
	}
	_ = softmaxout.Pass
}
