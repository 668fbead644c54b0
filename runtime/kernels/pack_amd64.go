// Copyright 2026 The pqvc Authors.

package kernels

// transpose8x8 transposes n consecutive 8×8 float32 blocks (see
// pack_amd64.s). Requires AVX.
//
//go:noescape
func transpose8x8(dst *float32, ldd int, src *float32, lds int, n int)

// transposeBlocks transposes an 8-row strip: dst[p*ldd+r] = src[r*lds+p]
// for r < 8 and p < 8*n8, using AVX when the kernel family allows it.
// Callers guarantee the bounds.
func transposeBlocks(ar *sgemmArch, dst []float32, ldd int, src []float32, lds int, n8 int) bool {
	if !ar.asmPack || n8 == 0 {
		return false
	}
	_ = dst[(8*n8-1)*ldd+7]
	_ = src[7*lds+8*n8-1]
	transpose8x8(&dst[0], ldd, &src[0], lds, n8)
	return true
}
