package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pqvc/pqvc/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pqvc": func() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scripts in testdata/script. $ASSETS is the
// repository's assets folder (the shipped model and data); $CORPUS is
// testdata/corpus, the broken models and datasets gen.go writes.
func TestScripts(t *testing.T) {
	assets, err := filepath.Abs("../../assets")
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := filepath.Abs("testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("ASSETS", assets)
			e.Setenv("CORPUS", corpus)
			return nil
		},
		// [root]: permission tests are meaningless for root, who may
		// write anywhere.
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}
