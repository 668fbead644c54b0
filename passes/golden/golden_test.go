package golden_test

import (
	"bytes"
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

	// Passes register themselves from init; a golden can only name a pass
	// whose package is imported here.
	_ "github.com/pqvc/pqvc/passes/builtin"
)

var update = goldenflag.Update // shared, so `go test ./... -update` works in every package

const root = "../../testdata/graphs"

// idempotent lists the passes whose output must be a fixpoint: a case whose
// recipe uses only these is run a second time and must not change.
var idempotent = map[string]bool{
	"shape_fold": true, "const_fold": true, "dce": true, "cse": true, "identity_elim": true, "canonicalize": true, "fuse": true,
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "*", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, file := range files {
		if !isGraphGolden(file) {
			continue // another kind of golden (dsl/ keeps recipe goldens here)
		}
		n++
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.ToSlash(file), root+"/"), ".txtar")
		t.Run(name, func(t *testing.T) { runCase(t, file) })
	}
	if n == 0 {
		t.Fatalf("no graph goldens under %s", root)
	}
}

// isGraphGolden reports whether file has an input.ir section.
func isGraphGolden(file string) bool {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		return true // let runCase report it
	}
	for _, f := range ar.Files {
		if f.Name == "input.ir" {
			return true
		}
	}
	return false
}

func runCase(t *testing.T, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string]string{}
	for _, f := range ar.Files {
		if _, dup := sec[f.Name]; dup {
			t.Fatalf("two %s sections", f.Name)
		}
		sec[f.Name] = string(f.Data)
	}
	for _, need := range []string{"recipe", "input.ir"} {
		if _, ok := sec[need]; !ok {
			t.Fatalf("no %s section", need)
		}
	}
	// A no_fire case states that the pass leaves its input alone: its input
	// is written in canonical form and want.ir must repeat it verbatim.
	if strings.HasPrefix(filepath.Base(file), "no_fire") && !*update && sec["want.ir"] != sec["input.ir"] {
		t.Errorf("a no_fire case's want.ir must equal its input.ir")
	}
	_, wantIR := sec["want.ir"]
	_, wantErr := sec["error"]
	if wantIR == wantErr && !*update {
		t.Fatal("want exactly one of a want.ir and an error section")
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
	got, gotErr := run(g, pl)
	if gotErr == nil && onlyIdempotent(pl) {
		again, err := run(g, pl)
		if err != nil || again != got {
			t.Errorf("second run changed the graph (err %v):\n%s", err, again)
		}
	}
	if *update {
		name, data := "want.ir", got
		if gotErr != nil {
			name, data = "error", gotErr.Error()+"\n"
		}
		if setWant(ar, name, data) {
			if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("updated %s", file)
		}
		return
	}
	switch {
	case wantErr && gotErr == nil:
		t.Errorf("succeeded, want error %q; got graph:\n%s", strings.TrimSpace(sec["error"]), got)
	case wantErr && !strings.Contains(gotErr.Error(), strings.TrimSpace(sec["error"])):
		t.Errorf("error %q does not contain %q", gotErr, strings.TrimSpace(sec["error"]))
	case wantIR && gotErr != nil:
		t.Errorf("failed: %v", gotErr)
	case wantIR && got != sec["want.ir"]:
		t.Errorf("graph differs from want.ir (go test ./passes/golden -update rewrites it):\n%s", lineDiff(sec["want.ir"], got))
	}
}

// run applies the pipeline, verifying after every pass, and prints g.
func run(g *ir.Graph, pl *passes.Pipeline) (string, error) {
	if _, err := passes.Run(g, pl, passes.Config{Verify: true}); err != nil {
		return "", err
	}
	return g.String(), nil
}

func onlyIdempotent(pl *passes.Pipeline) bool {
	for _, st := range pl.Steps {
		if !idempotent[st.Pass.Name] {
			return false
		}
	}
	return true
}

// setWant puts data in the section called name, replacing the want.ir or
// error section in place (or appending one); it reports a change.
func setWant(ar *txtar.Archive, name, data string) bool {
	for i, f := range ar.Files {
		if f.Name == "want.ir" || f.Name == "error" {
			if f.Name == name && string(f.Data) == data {
				return false
			}
			ar.Files[i] = txtar.File{Name: name, Data: []byte(data)}
			return true
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: []byte(data)})
	return true
}

// parseRecipe reads one pass a line: the pass name, then an optional
// positional value and name=value options. Blank lines and # comments are
// skipped. Values are words, integers, floats, percentages, "strings" (with
// no spaces) and [lists].
//
// TODO: switch to dsl.Parse once the recipe parser lands in dsl/.
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
		pos := fmt.Sprintf("recipe:%d", i+1)
		p := passes.Lookup(fields[0])
		if p == nil {
			return nil, fmt.Errorf("%s: unknown pass %q", pos, fields[0])
		}
		opts := passes.NewOptions(p)
		for _, f := range fields[1:] {
			key, val, named := strings.Cut(f, "=")
			if !named {
				ps := passes.Positional(p)
				if ps == nil {
					return nil, fmt.Errorf("%s: %s takes no positional value (%q)", pos, p.Name, f)
				}
				key, val = ps.Name, f
			}
			if err := passes.SetOption(p, opts, key, literal(val)); err != nil {
				return nil, fmt.Errorf("%s: %w", pos, err)
			}
		}
		pl.Steps = append(pl.Steps, passes.Step{Pass: p, Options: opts, Pos: pos})
	}
	if len(pl.Steps) == 0 {
		return nil, fmt.Errorf("no passes")
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
	if n := strings.TrimSuffix(s, "%"); n != s {
		if _, err := strconv.ParseFloat(n, 64); err == nil {
			return passes.Literal{Kind: passes.LitPercent, Text: n}
		}
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return passes.Literal{Kind: passes.LitInt, Text: s}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return passes.Literal{Kind: passes.LitFloat, Text: s}
	}
	return passes.Literal{Kind: passes.LitIdent, Text: s}
}

// lineDiff shows want and got line by line from the first difference.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(wl) && i < len(gl) && wl[i] == gl[i] {
		i++
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "first difference at line %d\n", i+1)
	for j := i; j < len(wl) && j < i+8; j++ {
		fmt.Fprintf(&b, "- %s\n", wl[j])
	}
	for j := i; j < len(gl) && j < i+8; j++ {
		fmt.Fprintf(&b, "+ %s\n", gl[j])
	}
	return b.String()
}

func TestParseRecipe(t *testing.T) {
	pl, err := parseRecipe("# comment\nshape_fold symbolic=false\n\nconst_fold max_bytes=1024  # small\ncanonicalize\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Steps) != 3 || pl.Steps[1].Pos != "recipe:4" {
		t.Fatalf("steps: %+v", pl.Steps)
	}
	if pos, named := passes.FormatOptions(pl.Steps[1].Pass, pl.Steps[1].Options); pos != "" || strings.Join(named, " ") != "max_bytes=1024" {
		t.Errorf("const_fold options: %q %q", pos, named)
	}
	for _, bad := range []string{"", "no_such_pass", "cse bogus=1", "const_fold max_bytes=big", "dce stray"} {
		if _, err := parseRecipe(bad); err == nil {
			t.Errorf("parseRecipe(%q) succeeded", bad)
		}
	}
}
