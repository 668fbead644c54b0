package quant_test

// Golden tests for this package's passes: every
// testdata/graphs/{quantize,fold_qdq,calibrate}/*.txtar in passes/golden's
// format (recipe, input.ir, want.ir or error). Run with -update to rewrite
// the want sections. Goldens get no calibration data, as in passes/golden,
// so static quantization is covered by the tests that supply it.

import (
	"fmt"
	goldenflag "github.com/pqvc/pqvc/internal/golden"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/canon"
)

var update = goldenflag.Update // shared, so `go test ./... -update` works in every package

func TestGolden(t *testing.T) {
	for _, dir := range []string{"quantize", "fold_qdq", "calibrate"} {
		files, _ := filepath.Glob(filepath.Join("../../testdata/graphs", dir, "*.txtar"))
		for _, f := range files {
			t.Run(dir+"/"+strings.TrimSuffix(filepath.Base(f), ".txtar"), func(t *testing.T) { runGolden(t, f) })
		}
	}
}

func runGolden(t *testing.T, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string]string{}
	for _, f := range ar.Files {
		sec[f.Name] = string(f.Data)
	}
	pl, err := parsePipeline(sec["recipe"])
	if err != nil {
		t.Fatalf("recipe: %v", err)
	}
	g, err := ir.Parse(sec["input.ir"])
	if err != nil {
		t.Fatalf("input.ir: %v", err)
	}
	if err := ir.Verify(g); err != nil {
		t.Fatalf("input.ir does not verify: %v", err)
	}
	got, gotErr := "", error(nil)
	if _, gotErr = passes.Run(g, pl, passes.Config{Verify: true}); gotErr == nil {
		got = g.String()
	}
	if *update {
		name, data := "want.ir", got
		if gotErr != nil {
			name, data = "error", gotErr.Error()+"\n"
		}
		replaced := false
		for i, f := range ar.Files {
			if f.Name == "want.ir" || f.Name == "error" {
				ar.Files[i] = txtar.File{Name: name, Data: []byte(data)}
				replaced = true
			}
		}
		if !replaced {
			ar.Files = append(ar.Files, txtar.File{Name: name, Data: []byte(data)})
		}
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, wantIR := sec["want.ir"]
	wantErr, isErr := sec["error"]
	switch {
	case isErr && gotErr == nil:
		t.Errorf("succeeded, want error %q", strings.TrimSpace(wantErr))
	case isErr && !strings.Contains(gotErr.Error(), strings.TrimSpace(wantErr)):
		t.Errorf("error %q does not contain %q", gotErr, strings.TrimSpace(wantErr))
	case wantIR && gotErr != nil:
		t.Errorf("failed: %v", gotErr)
	case wantIR && got != want:
		t.Errorf("graph differs from want.ir (-update rewrites it):\n%s", got)
	}
}

// parsePipeline reads passes/golden's recipe lines: a pass name, an
// optional positional value and name=value options; # comments.
func parsePipeline(src string) (*passes.Pipeline, error) {
	pl := &passes.Pipeline{}
	for i, line := range strings.Split(src, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pos := fmt.Sprintf("recipe:%d", i+1)
		p := passes.Lookup(fields[0])
		if p == nil {
			return nil, fmt.Errorf("%s: unknown pass %q", pos, fields[0])
		}
		opts := passes.NewOptions(p)
		for _, f := range fields[1:] {
			key, val, named := strings.Cut(f, "=")
			if !named {
				key, val = passes.Positional(p).Name, f
			}
			if err := passes.SetOption(p, opts, key, literal(val)); err != nil {
				return nil, fmt.Errorf("%s: %w", pos, err)
			}
		}
		pl.Steps = append(pl.Steps, passes.Step{Pass: p, Options: opts, Pos: pos})
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
	if u, err := strconv.Unquote(s); err == nil {
		return passes.Literal{Kind: passes.LitString, Text: u}
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return passes.Literal{Kind: passes.LitInt, Text: s}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return passes.Literal{Kind: passes.LitFloat, Text: s}
	}
	return passes.Literal{Kind: passes.LitIdent, Text: s}
}
