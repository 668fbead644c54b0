// Copyright 2026 The pqvc Authors.

// Package gocode is the `emit go` backend: it writes a self-contained Go
// package (standard library only) that runs a model. The package holds
// straight-line code specialised to the graph's static shapes, weights
// embedded from weights.bin, a copy of pqvc's kernels and a test that checks
// it against pqvc's runtime.
//
//	emit go "deit" package=deit module=example.com/deit batch=1
package gocode

import (
	"fmt"
	"strconv"

	"github.com/pqvc/pqvc/backend"
	"github.com/pqvc/pqvc/ir"
)

func init() {
	backend.Register(&backend.Backend{
		Name: "go",
		Doc:  "self-contained Go package (folder); options package=NAME, module=PATH, batch=N",
		Emit: func(path string, g *ir.Graph, options map[string]string) error {
			if err := backend.UnknownOption("go", options, "package", "module", "batch"); err != nil {
				return err
			}
			o := Options{Package: options["package"], Module: options["module"], Batch: 1}
			if s, ok := options["batch"]; ok {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil || n < 1 {
					return fmt.Errorf("emit go: batch wants a positive integer, got %s", s)
				}
				o.Batch = n
			}
			return Emit(path, g, o)
		},
	})
}
