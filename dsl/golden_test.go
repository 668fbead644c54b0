package dsl

import (
	goldenflag "github.com/pqvc/pqvc/internal/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

var update = goldenflag.Update // shared, so `go test ./... -update` works in every package

const goldenDir = "../testdata/graphs/dsl"

// goldenCase is one txtar file: a recipe and the canonical form or the
// error it must produce.
type goldenCase struct {
	name, path string
	ar         *txtar.Archive
	recipe     []byte
}

func loadGolden(t testing.TB) []goldenCase {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	for _, f := range files {
		ar, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := goldenCase{name: strings.TrimSuffix(filepath.Base(f), ".txtar"), path: f, ar: ar}
		found := false
		for _, s := range ar.Files {
			if s.Name == "recipe" {
				c.recipe, found = s.Data, true
			}
		}
		if !found {
			t.Fatalf("%s: no -- recipe -- section", f)
		}
		cases = append(cases, c)
	}
	return cases
}

// run returns the section a recipe should produce: its canonical form, or
// its errors one per line.
func run(recipe []byte) (section string, data []byte) {
	r, err := Parse("recipe.pqv", recipe, formats)
	if err != nil {
		return "error", []byte(err.Error() + "\n")
	}
	return "canonical", []byte(Format(r))
}

func TestGolden(t *testing.T) {
	cases := loadGolden(t)
	if len(cases) < 15 {
		t.Fatalf("only %d golden cases in %s", len(cases), goldenDir)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			section, got := run(c.recipe)
			if *update {
				// Keep the comment and the recipe; replace whichever want
				// section there was.
				var files []txtar.File
				for _, f := range c.ar.Files {
					if f.Name != "canonical" && f.Name != "error" {
						files = append(files, f)
					}
				}
				c.ar.Files = append(files, txtar.File{Name: section, Data: got})
				if err := os.WriteFile(c.path, txtar.Format(c.ar), 0o666); err != nil {
					t.Fatal(err)
				}
				return
			}
			var want []byte
			wantSection := ""
			for _, f := range c.ar.Files {
				if f.Name == "canonical" || f.Name == "error" {
					want, wantSection = f.Data, f.Name
				}
			}
			if wantSection != section || string(want) != string(got) {
				t.Errorf("got -- %s --\n%s\nwant -- %s --\n%s", section, got, wantSection, want)
			}
			if section == "canonical" {
				// The canonical form is a fixpoint.
				if s2, again := run(got); s2 != "canonical" || string(again) != string(got) {
					t.Errorf("canonical form does not reformat to itself:\n%s\ngot -- %s --\n%s", got, s2, again)
				}
			}
		})
	}
}
