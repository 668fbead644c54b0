// Copyright 2026 The pqvc Authors.

#include "textflag.h"

// func transpose8x8(dst *float32, ldd int, src *float32, lds int, n int)
//
// Transposes n consecutive 8×8 blocks: block t reads src rows 0..7 at
// columns 8t..8t+7 and writes them as dst rows 8t..8t+7, columns 0..7.
// Strides are in elements. Rows are loaded as 128-bit halves paired with
// the row four below, so the final cross-lane step needs no VPERM2F128.
TEXT ·transpose8x8(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), DX
	SHLQ $2, DX
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), BX
	SHLQ $2, BX
	MOVQ n+32(FP), CX
	TESTQ CX, CX
	JEQ done
	LEAQ (BX)(BX*2), R8 // 3*lds
	LEAQ (SI)(BX*4), R9 // src row 4
	LEAQ (DX)(DX*2), R10 // 3*ldd

loop:
	// r_i = [row i cols 0..3 | row i+4 cols 0..3], r_i' the same for cols 4..7.
	VMOVUPS (SI), X0
	VINSERTF128 $1, (R9), Y0, Y0
	VMOVUPS (SI)(BX*1), X1
	VINSERTF128 $1, (R9)(BX*1), Y1, Y1
	VMOVUPS (SI)(BX*2), X2
	VINSERTF128 $1, (R9)(BX*2), Y2, Y2
	VMOVUPS (SI)(R8*1), X3
	VINSERTF128 $1, (R9)(R8*1), Y3, Y3
	VMOVUPS 16(SI), X4
	VINSERTF128 $1, 16(R9), Y4, Y4
	VMOVUPS 16(SI)(BX*1), X5
	VINSERTF128 $1, 16(R9)(BX*1), Y5, Y5
	VMOVUPS 16(SI)(BX*2), X6
	VINSERTF128 $1, 16(R9)(BX*2), Y6, Y6
	VMOVUPS 16(SI)(R8*1), X7
	VINSERTF128 $1, 16(R9)(R8*1), Y7, Y7

	// 4×4 transposes within each 128-bit lane.
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VUNPCKLPS Y5, Y4, Y8
	VUNPCKHPS Y5, Y4, Y9
	VUNPCKLPS Y7, Y6, Y10
	VUNPCKHPS Y7, Y6, Y11
	VSHUFPS $0x44, Y10, Y8, Y4
	VSHUFPS $0xEE, Y10, Y8, Y5
	VSHUFPS $0x44, Y11, Y9, Y6
	VSHUFPS $0xEE, Y11, Y9, Y7

	MOVQ DI, R11
	VMOVUPS Y0, (R11)
	VMOVUPS Y1, (R11)(DX*1)
	VMOVUPS Y2, (R11)(DX*2)
	VMOVUPS Y3, (R11)(R10*1)
	LEAQ (R11)(DX*4), R11
	VMOVUPS Y4, (R11)
	VMOVUPS Y5, (R11)(DX*1)
	VMOVUPS Y6, (R11)(DX*2)
	VMOVUPS Y7, (R11)(R10*1)

	ADDQ $32, SI
	ADDQ $32, R9
	LEAQ (R11)(DX*4), DI
	DECQ CX
	JNZ loop
	VZEROUPPER

done:
	RET

// func packB8VNNI16(dst *byte, dstStride int, src *int8, lds int, groups int, colsum *int32)
//
// Packs 16 columns of a row-major int8 matrix into the VNNI panel layout:
// for each group g of 4 rows (src rows 4g..4g+3, 16 bytes each), writes 64
// bytes at dst+g*dstStride holding, for column x, its 4 bytes at 4x. The
// per-column sums of the bytes are added to colsum[0..15] with VPDPBUSD
// against a vector of unsigned ones. Requires AVX512F/VL and AVX512_VNNI.
TEXT ·packB8VNNI16(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), BX
	MOVQ groups+32(FP), CX
	MOVQ colsum+40(FP), R8
	TESTQ CX, CX
	JEQ done
	LEAQ (BX)(BX*2), R9 // 3*lds
	VMOVDQU32 (R8), Z8
	MOVL $0x01010101, AX
	VPBROADCASTD AX, Z9

loop:
	VMOVDQU (SI), X0
	VMOVDQU (SI)(BX*1), X1
	VMOVDQU (SI)(BX*2), X2
	VMOVDQU (SI)(R9*1), X3
	VPUNPCKLBW X1, X0, X4 // rows 0,1 interleaved, columns 0-7
	VPUNPCKHBW X1, X0, X5 // columns 8-15
	VPUNPCKLBW X3, X2, X6 // rows 2,3
	VPUNPCKHBW X3, X2, X7
	VPUNPCKLWD X6, X4, X0 // columns 0-3, 4 rows each
	VPUNPCKHWD X6, X4, X1 // columns 4-7
	VPUNPCKLWD X7, X5, X2 // columns 8-11
	VPUNPCKHWD X7, X5, X3 // columns 12-15
	VINSERTI32X4 $1, X1, Z0, Z0
	VINSERTI32X4 $2, X2, Z0, Z0
	VINSERTI32X4 $3, X3, Z0, Z0
	VMOVDQU32 Z0, (DI)
	VPDPBUSD Z0, Z9, Z8
	ADDQ DX, DI
	LEAQ (SI)(BX*4), SI
	DECQ CX
	JNZ loop
	VMOVDQU32 Z8, (R8)
	VZEROUPPER

done:
	RET
