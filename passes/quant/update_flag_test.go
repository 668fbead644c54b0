package quant

// The -update flag is shared by every test package, so that
// `go test ./... -update` is accepted here as well as in the packages with
// golden files.
import _ "github.com/pqvc/pqvc/internal/golden"
