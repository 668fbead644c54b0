// Package builtin registers every pass that ships with pqvc. The CLI imports
// it; a program that wants only some passes imports those packages instead.
package builtin

import (
	_ "github.com/pqvc/pqvc/passes/canon"      // shape_fold, const_fold, dce, cse, identity_elim, canonicalize
	_ "github.com/pqvc/pqvc/passes/fuse"       // fuse
	_ "github.com/pqvc/pqvc/passes/importance" // importance
	_ "github.com/pqvc/pqvc/passes/prune"      // prune
	_ "github.com/pqvc/pqvc/passes/quant"      // calibrate, quantize, fold_qdq
)
