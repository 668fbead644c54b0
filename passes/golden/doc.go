// Package golden holds pqvc's golden-graph tests: golden_test.go runs every
// testdata/graphs/<pass>/<case>.txtar archive. Each archive has a recipe
// section (the pass lines to run), an input.ir section (a graph in ir's
// textual form) and either a want.ir section (the graph the recipe must
// leave, exactly as ir.Print writes it) or an error section (text the error
// must contain). The archive's comment says what the case checks.
//
//	go test ./passes/golden -update
//
// rewrites the want.ir and error sections from what the passes now do;
// review the diff, since the goldens are the passes' specification.
package golden
