package cli

import (
	"os"
	"strings"
	"testing"
)

// TestRecipeDocsUpToDate fails when docs/recipes.md no longer matches the
// registry: run `go generate ./cli` after changing a pass or its options.
func TestRecipeDocsUpToDate(t *testing.T) {
	want, err := os.ReadFile("../docs/recipes.md")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteRecipeDocs(&b)
	if b.String() != string(want) {
		t.Fatal("docs/recipes.md is out of date: run `go generate ./cli`")
	}
}
