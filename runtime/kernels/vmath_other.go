// Copyright 2026 The pqvc Authors.

//go:build !amd64

package kernels

func expAVX512(dst, src []float32) { panic("unreachable") }
func erfAVX512(dst, src []float32) { panic("unreachable") }
