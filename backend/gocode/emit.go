// Copyright 2026 The pqvc Authors.

package gocode

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/pqvc/pqvc/internal/cleanup"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/kernels"
)

// Options configure Emit.
type Options struct {
	// Package is the generated package's name ("" derives it from the
	// folder name).
	Package string
	// Module, when set, makes the folder its own module with this path
	// (a go.mod is written). Otherwise the folder must sit inside a module,
	// found by walking up to a go.mod.
	Module string
	// Batch binds the graph's symbolic batch dim (every input symbol).
	Batch int64
	// NoFuse keeps a float graph's ops as given instead of running
	// canonicalize and fuse attention=mha on the emitted copy (Go API only;
	// tests use it to cover the unfused lowerings).
	NoFuse bool
}

// marker names the file that says a folder was written by this backend,
// so that Emit replaces it and never a folder someone else wrote.
const marker = ".pqvc-emit-go"

//go:embed gort/*.go
var gortSource embed.FS

const kernelsImport = "github.com/pqvc/pqvc/runtime/kernels"

// Emit writes the Go package for g into the folder dir, atomically: the
// package is built in a temporary folder next to dir and renamed into
// place. g is not changed.
func Emit(dir string, g *ir.Graph, o Options) error {
	if o.Batch < 1 {
		o.Batch = 1
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	pkg := o.Package
	if pkg == "" {
		pkg = packageName(filepath.Base(abs))
	} else if !token.IsIdentifier(pkg) || token.IsKeyword(pkg) || pkg == "main" {
		return fmt.Errorf("emit go: package=%q is not a usable package name", pkg)
	}
	modPath := o.Module
	if modPath == "" {
		if modPath, err = enclosingImportPath(abs); err != nil {
			return fmt.Errorf("emit go: %w", err)
		}
	} else if strings.ContainsAny(modPath, " \t\n\"'`\\") || modPath != path.Clean(modPath) {
		return fmt.Errorf("emit go: module=%q is not a module path", modPath)
	}
	if err := checkTarget(abs); err != nil {
		return err
	}
	files, err := Generate(g, pkg, modPath+"/internal", o)
	if err != nil {
		return fmt.Errorf("emit go: %w", err)
	}
	if o.Module != "" {
		files["go.mod"] = []byte(fmt.Sprintf("module %s\n\ngo 1.22\n", o.Module))
	}
	return writeFolder(abs, files)
}

// Generate returns the files of the package for g, by relative path:
// model.go, weights.bin, model_test.go with testdata, and the copied
// internal/kernels and internal/gort packages, imported from internalPath.
// o.Package and o.Module are not used (pkg and internalPath say them).
func Generate(g *ir.Graph, pkg, internalPath string, o Options) (map[string][]byte, error) {
	batch := max(o.Batch, 1)
	sg, err := specialise(g, batch, !o.NoFuse)
	if err != nil {
		return nil, err
	}
	c := &gen{g: sg, pos: map[*ir.Value]int{}, alias: map[*ir.Value]*ir.Value{}, fused: map[*ir.Value]*fusion{},
		skip: map[*ir.Value]bool{}, pair: map[*ir.Value]*ir.Value{}, hoisted: map[*ir.Value]bool{}, last: map[*ir.Value]int{},
		outputs: map[*ir.Value]bool{}, consts: map[*ir.Value]string{}, slotOf: map[*ir.Value]*slot{},
		packed: map[*ir.Value]string{}, scratch: map[string]int{}}
	if err := c.plan(); err != nil {
		return nil, err
	}
	if err := c.emitAll(); err != nil {
		return nil, err
	}
	src, err := c.modelSource(pkg, internalPath, batch)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"model.go": src, "weights.bin": c.weights.Bytes(), marker: []byte("written by pqvc emit go; the folder is replaced on the next emit\n")}
	if err := addTest(files, g, sg, pkg, c.usesQuant); err != nil {
		return nil, err
	}
	if err := copyPackage(files, kernels.Source, ".", "internal/kernels", nil); err != nil {
		return nil, err
	}
	rewrite := func(b []byte) []byte {
		return bytes.ReplaceAll(b, []byte(`"`+kernelsImport+`"`), []byte(`"`+internalPath+`/kernels"`))
	}
	if err := copyPackage(files, gortSource, "gort", "internal/gort", rewrite); err != nil {
		return nil, err
	}
	return files, nil
}

// copyPackage copies a package's build files (no tests, no go:build-ignored
// generators, no source.go embedding itself) from fsys/dir to to.
func copyPackage(files map[string][]byte, fsys fs.FS, dir, to string, rewrite func([]byte) []byte) error {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasSuffix(n, "_test.go") || n == "source.go" {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, n))
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("\n//go:build ignore\n")) {
			continue
		}
		if rewrite != nil {
			b = rewrite(b)
		}
		files[to+"/"+n] = b
	}
	return nil
}

// packageName derives a package name from a folder name.
func packageName(base string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
		case r == '_' || r == '-' || r == '.' || r == ' ':
			b.WriteRune('_')
		}
	}
	s := strings.Trim(b.String(), "_")
	if s == "" || unicode.IsDigit(rune(s[0])) {
		s = "model" + s
	}
	if token.IsKeyword(s) || s == "main" {
		s += "model"
	}
	return s
}

// enclosingImportPath finds the go.mod above dir and returns dir's import
// path within that module.
func enclosingImportPath(dir string) (string, error) {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			mod := ""
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
					mod = strings.Trim(f[1], `"`)
				}
			}
			if mod == "" {
				return "", fmt.Errorf("%s has no module line", filepath.Join(d, "go.mod"))
			}
			rel, err := filepath.Rel(d, dir)
			if err != nil {
				return "", err
			}
			return path.Join(mod, filepath.ToSlash(rel)), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no module= option and no go.mod above %s: the generated package needs an import path", dir)
		}
	}
}

// checkTarget refuses a target that exists and was not written by us
// (an empty folder is fine).
func checkTarget(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("emit go: %s exists and is not a folder", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("emit go: %s exists and was not written by emit go (no %s); not replacing it", dir, marker)
	}
	return nil
}

// writeFolder writes files into a temporary folder next to dir, then
// swaps it into place, removing the previous emit (if any) last.
func writeFolder(dir string, files map[string][]byte) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("emit go: %w", err)
	}
	defer cleanup.Track(tmp)()
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("emit go: %w", err)
		}
	}
	// Moving the previous emit aside and the new one into place must not
	// be cut in two by a signal, which would leave neither.
	defer cleanup.Hold()()
	var old string
	if _, err := os.Stat(dir); err == nil {
		if err := checkTarget(dir); err != nil {
			return err
		}
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("emit go: moving the previous %s aside: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return fmt.Errorf("emit go: %w", err)
	}
	ok = true
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}
