// Copyright 2026 The pqvc Authors.

//go:build !amd64

package kernels

// detectCPU reports no SIMD support: only the generic kernels exist on
// architectures other than amd64.
func detectCPU() cpuFeatures { return cpuFeatures{} }

// archKernels has no assembly kernels to offer outside amd64.
func archKernels(path string, f cpuFeatures) (*sgemmArch, *igemmArch) { return nil, nil }
