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

// packB8VNNI16 packs 16 int8 columns into the VNNI panel layout and adds
// their column sums to colsum (see pack_amd64.s). Requires AVX512_VNNI.
//
//go:noescape
func packB8VNNI16(dst *byte, dstStride int, src *int8, lds int, groups int, colsum *int32)

// packB8Fast packs the columns [0, 16·⌊cols/16⌋) of full 4-row groups of a
// w-wide VNNI panel from row-major src and adds their sums to sums. It
// returns how many columns it handled (0 when the family may not use it).
func packB8Fast(ar *igemmArch, panel []byte, w int, src []int8, lds, k, cols int, sums []int32) int {
	groups := k / 4
	if !ar.asmPack || groups == 0 || cols < 16 {
		return 0
	}
	x := 0
	for ; x+16 <= cols; x += 16 {
		_ = panel[(groups-1)*w*4+x*4+63]
		_ = src[(4*groups-1)*lds+x+15]
		_ = sums[x+15]
		packB8VNNI16(&panel[x*4], w*4, &src[x], lds, groups, &sums[x])
	}
	return x
}
