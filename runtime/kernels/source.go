// Copyright 2026 The pqvc Authors.

package kernels

import "embed"

// Source holds this package's own Go and assembly files, so that code
// generators (backend/gocode) can copy the kernels into a generated package
// that must depend on the standard library only. It includes test files,
// go:build-ignored generators and this file; copiers filter what they need
// (see backend/gocode).
//
//go:embed *.go *.s
var Source embed.FS
