package dsl

import (
	"regexp"
	"strings"
	"testing"
)

var errLine = regexp.MustCompile(`^fuzz\.pqv:\d+:\d+: \S`)

// FuzzParse checks that Parse never panics, that every error line carries a
// position, and that whenever a recipe parses its canonical form re-parses
// and formats identically.
func FuzzParse(f *testing.F) {
	for _, c := range loadGolden(f) {
		f.Add(c.recipe)
	}
	for _, s := range roundTrips {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		r, err := Parse("fuzz.pqv", src, formats)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !errLine.MatchString(line) {
					t.Fatalf("error line without position: %q", line)
				}
			}
			return
		}
		f1 := Format(r)
		r2, err := Parse("fuzz.pqv", []byte(f1), formats)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, f1)
		}
		if f2 := Format(r2); f2 != f1 {
			t.Fatalf("canonical form is not a fixpoint:\n%s\nthen\n%s", f1, f2)
		}
	})
}
