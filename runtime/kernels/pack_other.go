// Copyright 2026 The pqvc Authors.

//go:build !amd64

package kernels

// transposeBlocks has no accelerated version outside amd64.
func transposeBlocks(ar *sgemmArch, dst []float32, ldd int, src []float32, lds int, n8 int) bool {
	return false
}

// packB8Fast has no accelerated version outside amd64.
func packB8Fast(ar *igemmArch, panel []byte, w int, src []int8, lds, k, cols int, sums []int32) int {
	return 0
}
