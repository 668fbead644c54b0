// Copyright 2026 The pqvc Authors.
// Constants match the scalar code in vmath.go.

#include "textflag.h"

DATA vmconst<>+0(SB)/4, $0x42b20000 // exp_hi = 89
DATA vmconst<>+4(SB)/4, $0xc2cff1b4 // exp_lo = -103.97208
DATA vmconst<>+8(SB)/4, $0x3fb8aa3b // log2e = 1.4426950408889634
DATA vmconst<>+12(SB)/4, $0x3f318000 // ln2hi = 0.693359375
DATA vmconst<>+16(SB)/4, $0xb95e8083 // ln2lo = -0.00021219444
DATA vmconst<>+20(SB)/4, $0x3ab60b61 // c6 = 0.001388888888888889
DATA vmconst<>+24(SB)/4, $0x3c088889 // c5 = 0.008333333333333333
DATA vmconst<>+28(SB)/4, $0x3d2aaaab // c4 = 0.041666666666666664
DATA vmconst<>+32(SB)/4, $0x3e2aaaab // c3 = 0.16666666666666666
DATA vmconst<>+36(SB)/4, $0x3f000000 // c2 = 0.5
DATA vmconst<>+40(SB)/4, $0x3f800000 // c1 = 1.0
DATA vmconst<>+44(SB)/4, $0x40800000 // erf_lim = 4.0
DATA vmconst<>+48(SB)/4, $0xc0800000 // erf_nlim = -4.0
DATA vmconst<>+52(SB)/4, $0xaf95df0b // a1 = -2.72614225801306e-10
DATA vmconst<>+56(SB)/4, $0x32edffee // a3 = 2.77068142495902e-08
DATA vmconst<>+60(SB)/4, $0xb60cff51 // a5 = -2.10102402082508e-06
DATA vmconst<>+64(SB)/4, $0xb86ec2d2 // a7 = -5.69250639462346e-05
DATA vmconst<>+68(SB)/4, $0xba40ac63 // a9 = -0.000734990630326855
DATA vmconst<>+72(SB)/4, $0xbb41a1f6 // a11 = -0.00295459980854025
DATA vmconst<>+76(SB)/4, $0xbc83dbd4 // a13 = -0.0160960333262415
DATA vmconst<>+80(SB)/4, $0xb77460cd // b0 = -1.45660718464996e-05
DATA vmconst<>+84(SB)/4, $0xb95fbd29 // b2 = -0.000213374055278905
DATA vmconst<>+88(SB)/4, $0xbadc924e // b4 = -0.00168282697438203
DATA vmconst<>+92(SB)/4, $0xbbf19bf8 // b6 = -0.00737332916720468
DATA vmconst<>+96(SB)/4, $0xbc69b6a7 // b8 = -0.0142647390514189
GLOBL vmconst<>(SB), RODATA|NOPTR, $100

// func expAVX512(dst, src []float32)
TEXT ·expAVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $4, CX
	JZ expdone
	VBROADCASTSS vmconst<>+0(SB), Z20
	VBROADCASTSS vmconst<>+4(SB), Z21
	VBROADCASTSS vmconst<>+8(SB), Z22
	VBROADCASTSS vmconst<>+12(SB), Z23
	VBROADCASTSS vmconst<>+16(SB), Z24
	VBROADCASTSS vmconst<>+20(SB), Z25
	VBROADCASTSS vmconst<>+24(SB), Z26
	VBROADCASTSS vmconst<>+28(SB), Z27
	VBROADCASTSS vmconst<>+32(SB), Z28
	VBROADCASTSS vmconst<>+36(SB), Z29
	VBROADCASTSS vmconst<>+40(SB), Z30
expLoop:
	VMOVUPS (SI), Z0
	VMINPS Z0, Z20, Z0 // min(hi, x): a NaN x passes through
	VMAXPS Z0, Z21, Z0
	VMULPS Z22, Z0, Z1
	VRNDSCALEPS $0, Z1, Z1
	VMOVAPS Z0, Z2
	VFNMADD231PS Z23, Z1, Z2
	VFNMADD231PS Z24, Z1, Z2
	VMOVAPS Z25, Z3
	VFMADD213PS Z26, Z2, Z3
	VFMADD213PS Z27, Z2, Z3
	VFMADD213PS Z28, Z2, Z3
	VFMADD213PS Z29, Z2, Z3
	VFMADD213PS Z30, Z2, Z3
	VFMADD213PS Z30, Z2, Z3
	VSCALEFPS Z1, Z3, Z3
	VMOVUPS Z3, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ expLoop
expdone:
	VZEROUPPER
	RET

// func erfAVX512(dst, src []float32)
TEXT ·erfAVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $4, CX
	JZ erfdone
	VBROADCASTSS vmconst<>+44(SB), Z20
	VBROADCASTSS vmconst<>+48(SB), Z21
	VBROADCASTSS vmconst<>+52(SB), Z22
	VBROADCASTSS vmconst<>+56(SB), Z23
	VBROADCASTSS vmconst<>+60(SB), Z24
	VBROADCASTSS vmconst<>+64(SB), Z25
	VBROADCASTSS vmconst<>+68(SB), Z26
	VBROADCASTSS vmconst<>+72(SB), Z27
	VBROADCASTSS vmconst<>+76(SB), Z28
	VBROADCASTSS vmconst<>+80(SB), Z29
	VBROADCASTSS vmconst<>+84(SB), Z30
	VBROADCASTSS vmconst<>+88(SB), Z31
	VBROADCASTSS vmconst<>+92(SB), Z16
	VBROADCASTSS vmconst<>+96(SB), Z17
erfLoop:
	VMOVUPS (SI), Z0
	VMINPS Z0, Z20, Z0 // min(hi, x): a NaN x passes through
	VMAXPS Z0, Z21, Z0
	VMULPS Z0, Z0, Z1
	VMOVAPS Z22, Z2
	VFMADD213PS Z23, Z1, Z2
	VFMADD213PS Z24, Z1, Z2
	VFMADD213PS Z25, Z1, Z2
	VFMADD213PS Z26, Z1, Z2
	VFMADD213PS Z27, Z1, Z2
	VFMADD213PS Z28, Z1, Z2
	VMULPS Z0, Z2, Z2
	VMOVAPS Z29, Z3
	VFMADD213PS Z30, Z1, Z3
	VFMADD213PS Z31, Z1, Z3
	VFMADD213PS Z16, Z1, Z3
	VFMADD213PS Z17, Z1, Z3
	VDIVPS Z3, Z2, Z2
	VMOVUPS Z2, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ erfLoop
erfdone:
	VZEROUPPER
	RET
