// Package golden holds the -update flag of pqvc's golden-file tests. Every
// test package imports it (only from _test.go files), so that
// `go test ./... -update` is accepted everywhere and rewrites the want
// sections of the packages that have golden files.
package golden

import "flag"

// Update asks golden tests to rewrite their want sections instead of
// comparing against them.
var Update = flag.Bool("update", false, "rewrite the want sections of golden files")
