package prune_test

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
	_ "github.com/pqvc/pqvc/passes/prune"
)

var update = goldenflag.Update // shared, so `go test ./... -update` works in every package

// TestGolden runs testdata/graphs/prune/*.txtar in the format of
// passes/golden (recipe, input.ir, want.ir or error). It lives here
// because passes/golden can only name passes whose packages it imports.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/graphs/prune/*.txtar")
	if len(files) == 0 {
		t.Fatal("no prune goldens")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) { goldenCase(t, file) })
	}
}

func goldenCase(t *testing.T, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string]string{}
	for _, f := range ar.Files {
		sec[f.Name] = string(f.Data)
	}
	pl, err := parseRecipe(sec["recipe"])
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
	got := ""
	_, gotErr := passes.Run(g, pl, passes.Config{Verify: true})
	if gotErr == nil {
		got = g.String()
	}
	if *update {
		name, data := "want.ir", got
		if gotErr != nil {
			name, data = "error", gotErr.Error()+"\n"
		}
		files := ar.Files[:0]
		for _, f := range ar.Files {
			if f.Name != "want.ir" && f.Name != "error" {
				files = append(files, f)
			}
		}
		ar.Files = append(files, txtar.File{Name: name, Data: []byte(data)})
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
		t.Errorf("graph differs from want.ir (go test ./passes/prune -run Golden -update):\n%s", got)
	}
}

// parseRecipe reads one pass a line, as passes/golden does.
func parseRecipe(src string) (*passes.Pipeline, error) {
	pl := &passes.Pipeline{}
	for i, line := range strings.Split(src, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		p := passes.Lookup(fields[0])
		if p == nil {
			return nil, fmt.Errorf("line %d: unknown pass %q", i+1, fields[0])
		}
		opts := passes.NewOptions(p)
		for _, f := range fields[1:] {
			key, val, named := strings.Cut(f, "=")
			if !named {
				key, val = passes.Positional(p).Name, f
			}
			if err := passes.SetOption(p, opts, key, literal(val)); err != nil {
				return nil, err
			}
		}
		pl.Steps = append(pl.Steps, passes.Step{Pass: p, Options: opts, Pos: fmt.Sprintf("recipe:%d", i+1)})
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
	if n := strings.TrimSuffix(s, "%"); n != s {
		return passes.Literal{Kind: passes.LitPercent, Text: n}
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return passes.Literal{Kind: passes.LitInt, Text: s}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return passes.Literal{Kind: passes.LitFloat, Text: s}
	}
	return passes.Literal{Kind: passes.LitIdent, Text: s}
}
