// Copyright 2026 The pqvc Authors.

package kernels

// expAVX512 and erfAVX512 process len(src) elements, a multiple of 16.
//
//go:noescape
func expAVX512(dst, src []float32)

//go:noescape
func erfAVX512(dst, src []float32)
