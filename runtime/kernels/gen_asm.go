// Copyright 2026 The pqvc Authors.

//go:build ignore

// gen_asm.go generates the register-tiled micro-kernels of package kernels
// (zkernels_amd64.s) and their Go declarations (zkernels_amd64.go).
//
// Run with `go generate` in runtime/kernels. The kernels are generated
// rather than hand-written because every tile shape needs one variant per
// row count (1..MR): the last row tile of a matrix is computed by a kernel
// that only touches the rows that exist, so A needs no padding and M edges
// waste no FLOPs. Writing 60+ near-identical functions by hand would be
// error-prone; the generator keeps them consistent.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
)

var (
	asm  bytes.Buffer
	decl bytes.Buffer
)

func p(format string, args ...any) { fmt.Fprintf(&asm, "\t"+format+"\n", args...) }
func label(l string)               { fmt.Fprintf(&asm, "%s:\n", l) }

// rowAddr returns the address operand of row i of a row-major A tile whose
// rows are reached through base registers holding rows 0, 3, 6 and 9 and the
// byte stride in BX: rows 3q+0, 3q+1, 3q+2 are (base), (base)(BX*1),
// (base)(BX*2). disp is a byte displacement along k.
var rowBases = []string{"SI", "R10", "R11", "R12"}

func rowAddr(i, disp int) string {
	b := rowBases[i/3]
	switch i % 3 {
	case 0:
		return fmt.Sprintf("%d(%s)", disp, b)
	case 1:
		return fmt.Sprintf("%d(%s)(BX*1)", disp, b)
	default:
		return fmt.Sprintf("%d(%s)(BX*2)", disp, b)
	}
}

// setupRows loads the A pointer and the row stride and derives the extra
// base registers a rows-row tile needs.
func setupRows(rows int, elemShift int) {
	p("MOVQ a+8(FP), SI")
	p("MOVQ lda+16(FP), BX")
	p("SHLQ $%d, BX", elemShift)
	for q := 1; q*3 < rows; q++ {
		// base_q = base_{q-1} + 3*BX
		p("LEAQ (%s)(BX*2), %s", rowBases[q-1], rowBases[q])
		p("ADDQ BX, %s", rowBases[q])
	}
}

func advanceRows(rows, bytes int) {
	for q := 0; q*3 < rows; q++ {
		p("ADDQ $%d, %s", bytes, rowBases[q])
	}
}

// ---------------------------------------------------------------------------
// FP32 kernels.
//
// func name(k int, a *float32, lda int, b, c *float32, ldc int,
//           alpha, beta float32, bias *float32, mask uint32, flags int)
//
// acc[i][j] = Σ_p A[i*lda+p] * Bpanel[p*W+j]
// C[i][j]   = alpha*acc + bias[j] + (flags&1 ? beta*C[i][j] : 0)
// ---------------------------------------------------------------------------

const sgemmArgs = "k int, a *float32, lda int, b *float32, c *float32, ldc int, alpha float32, beta float32, bias *float32, mask uint32, flags int"
const sgemmFrame = "$0-80"

func sgemm512(rows, width int) string {
	name := fmt.Sprintf("sgemmAVX512x%dx%d", rows, width)
	nv := width / 16
	acc := func(i, v int) string { return fmt.Sprintf("Z%d", i*nv+v) }
	fmt.Fprintf(&decl, "//go:noescape\nfunc %s(%s)\n\n", name, sgemmArgs)
	fmt.Fprintf(&asm, "// func %s(%s)\n", name, sgemmArgs)
	fmt.Fprintf(&asm, "TEXT ·%s(SB), NOSPLIT, %s\n", name, sgemmFrame)
	p("MOVQ k+0(FP), CX")
	setupRows(rows, 2)
	p("MOVQ b+24(FP), DX")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VPXORD %s, %s, %s", acc(i, v), acc(i, v), acc(i, v))
		}
	}
	const U = 4
	p("CMPQ CX, $%d", U)
	p("JLT tail")
	label("loop")
	for u := 0; u < U; u++ {
		for v := 0; v < nv; v++ {
			p("VMOVUPS %d(DX), Z%d", (u*width+v*16)*4, 28+v)
		}
		for i := 0; i < rows; i++ {
			for v := 0; v < nv; v++ {
				p("VFMADD231PS.BCST %s, Z%d, %s", rowAddr(i, u*4), 28+v, acc(i, v))
			}
		}
	}
	advanceRows(rows, U*4)
	p("ADDQ $%d, DX", U*width*4)
	p("SUBQ $%d, CX", U)
	p("CMPQ CX, $%d", U)
	p("JGE loop")
	label("tail")
	p("TESTQ CX, CX")
	p("JEQ epilogue")
	label("tailloop")
	for v := 0; v < nv; v++ {
		p("VMOVUPS %d(DX), Z%d", v*64, 28+v)
	}
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VFMADD231PS.BCST %s, Z%d, %s", rowAddr(i, 0), 28+v, acc(i, v))
		}
	}
	advanceRows(rows, 4)
	p("ADDQ $%d, DX", width*4)
	p("DECQ CX")
	p("JNZ tailloop")

	label("epilogue")
	p("MOVQ c+32(FP), DI")
	p("MOVQ ldc+40(FP), BX")
	p("SHLQ $2, BX")
	p("MOVL mask+64(FP), AX")
	p("KMOVW AX, K1")
	p("SHRL $16, AX")
	p("KMOVW AX, K2")
	p("VBROADCASTSS alpha+48(FP), Z30")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VMULPS Z30, %s, %s", acc(i, v), acc(i, v))
		}
	}
	p("MOVQ bias+56(FP), R8")
	p("TESTQ R8, R8")
	p("JEQ nobias")
	for v := 0; v < nv; v++ {
		p("VMOVUPS.Z %d(R8), K%d, Z%d", v*64, 1+v, 28+v)
	}
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VADDPS Z%d, %s, %s", 28+v, acc(i, v), acc(i, v))
		}
	}
	label("nobias")
	p("MOVQ flags+72(FP), AX")
	p("TESTQ $1, AX")
	p("JEQ store")
	p("VBROADCASTSS beta+52(FP), Z31")
	p("MOVQ DI, R9")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VMOVUPS.Z %d(R9), K%d, Z%d", v*64, 1+v, 28+v)
			p("VFMADD231PS Z31, Z%d, %s", 28+v, acc(i, v))
		}
		if i+1 < rows {
			p("ADDQ BX, R9")
		}
	}
	label("store")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VMOVUPS %s, K%d, %d(DI)", acc(i, v), 1+v, v*64)
		}
		if i+1 < rows {
			p("ADDQ BX, DI")
		}
	}
	p("VZEROUPPER")
	p("RET")
	asm.WriteString("\n")
	return name
}

// sgemmAVX2 kernels have no column masks: partial column tiles are computed
// into a scratch tile by the Go driver (AVX2 masked stores are slow and
// would cost two of the sixteen registers).
func sgemm256(rows, width int) string {
	name := fmt.Sprintf("sgemmAVX2x%dx%d", rows, width)
	nv := width / 8
	acc := func(i, v int) string { return fmt.Sprintf("Y%d", i*nv+v) }
	fmt.Fprintf(&decl, "//go:noescape\nfunc %s(%s)\n\n", name, sgemmArgs)
	fmt.Fprintf(&asm, "// func %s(%s)\n", name, sgemmArgs)
	fmt.Fprintf(&asm, "TEXT ·%s(SB), NOSPLIT, %s\n", name, sgemmFrame)
	p("MOVQ k+0(FP), CX")
	setupRows(rows, 2)
	p("MOVQ b+24(FP), DX")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VXORPS %s, %s, %s", acc(i, v), acc(i, v), acc(i, v))
		}
	}
	const U = 4
	step := func(u int, bdisp func(v int) int) {
		for v := 0; v < nv; v++ {
			p("VMOVUPS %d(DX), Y%d", bdisp(v), 12+v)
		}
		for i := 0; i < rows; i++ {
			bc := 14 + i%2
			p("VBROADCASTSS %s, Y%d", rowAddr(i, u*4), bc)
			for v := 0; v < nv; v++ {
				p("VFMADD231PS Y%d, Y%d, %s", 12+v, bc, acc(i, v))
			}
		}
	}
	p("CMPQ CX, $%d", U)
	p("JLT tail")
	label("loop")
	for u := 0; u < U; u++ {
		step(u, func(v int) int { return (u*width + v*8) * 4 })
	}
	advanceRows(rows, U*4)
	p("ADDQ $%d, DX", U*width*4)
	p("SUBQ $%d, CX", U)
	p("CMPQ CX, $%d", U)
	p("JGE loop")
	label("tail")
	p("TESTQ CX, CX")
	p("JEQ epilogue")
	label("tailloop")
	step(0, func(v int) int { return v * 32 })
	advanceRows(rows, 4)
	p("ADDQ $%d, DX", width*4)
	p("DECQ CX")
	p("JNZ tailloop")

	label("epilogue")
	p("MOVQ c+32(FP), DI")
	p("MOVQ ldc+40(FP), BX")
	p("SHLQ $2, BX")
	p("VBROADCASTSS alpha+48(FP), Y14")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VMULPS Y14, %s, %s", acc(i, v), acc(i, v))
		}
	}
	p("MOVQ bias+56(FP), R8")
	p("TESTQ R8, R8")
	p("JEQ nobias")
	for v := 0; v < nv; v++ {
		p("VMOVUPS %d(R8), Y%d", v*32, 12+v)
	}
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VADDPS Y%d, %s, %s", 12+v, acc(i, v), acc(i, v))
		}
	}
	label("nobias")
	p("MOVQ flags+72(FP), AX")
	p("TESTQ $1, AX")
	p("JEQ store")
	p("VBROADCASTSS beta+52(FP), Y15")
	p("MOVQ DI, R9")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VMOVUPS %d(R9), Y14", v*32)
			p("VFMADD231PS Y15, Y14, %s", acc(i, v))
		}
		if i+1 < rows {
			p("ADDQ BX, R9")
		}
	}
	label("store")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VMOVUPS %s, %d(DI)", acc(i, v), v*32)
		}
		if i+1 < rows {
			p("ADDQ BX, DI")
		}
	}
	p("VZEROUPPER")
	p("RET")
	asm.WriteString("\n")
	return name
}

// ---------------------------------------------------------------------------
// Int8 kernels.
//
// func name(kg int, a unsafe.Pointer, lda int, b unsafe.Pointer, c *int32,
//           ldc int, rowCorr, colCorr *int32, mask uint32)
//
// A is a packed row-major tile: row i starts at a+i*lda bytes and holds kg
// groups of 4 bytes (VNNI, unsigned) or 2 int16 (AVX2). B is a packed panel
// of kg groups, each W columns × one 4-byte group.
// C[i][j] = acc + colCorr[j] + (rowCorr != nil ? rowCorr[i] : 0)
//
// VNNI kernels XOR every A group with flip (0x80808080 turns int8 into the
// biased uint8 VPDPBUSD needs, so signed A is read in place; the XOR rides
// in otherwise idle vector ALU slots). AVX2 kernels ignore flip: their A is
// widened, and flipped, at packing time.
// ---------------------------------------------------------------------------

const igemmArgs = "kg int, a unsafe.Pointer, lda int, b unsafe.Pointer, c *int32, ldc int, rowCorr *int32, colCorr *int32, mask uint32, flip uint32"
const igemmFrame = "$0-72"

func igemmVNNI(rows, width int) string {
	name := fmt.Sprintf("igemmVNNIx%dx%d", rows, width)
	nv := width / 16
	acc := func(i, v int) string { return fmt.Sprintf("Z%d", i*nv+v) }
	fmt.Fprintf(&decl, "//go:noescape\nfunc %s(%s)\n\n", name, igemmArgs)
	fmt.Fprintf(&asm, "// func %s(%s)\n", name, igemmArgs)
	fmt.Fprintf(&asm, "TEXT ·%s(SB), NOSPLIT, %s\n", name, igemmFrame)
	p("MOVQ kg+0(FP), CX")
	setupRows(rows, 0)
	p("MOVQ b+24(FP), DX")
	p("MOVL flip+68(FP), AX")
	p("VPBROADCASTD AX, Z27")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VPXORD %s, %s, %s", acc(i, v), acc(i, v), acc(i, v))
		}
	}
	const U = 4
	step := func(u int, bdisp func(v int) int) {
		for v := 0; v < nv; v++ {
			p("VMOVDQU32 %d(DX), Z%d", bdisp(v), 28+v)
		}
		for i := 0; i < rows; i++ {
			bc := 30 + i%2
			p("VPBROADCASTD %s, Z%d", rowAddr(i, u*4), bc)
			p("VPXORD Z27, Z%d, Z%d", bc, bc)
			for v := 0; v < nv; v++ {
				p("VPDPBUSD Z%d, Z%d, %s", 28+v, bc, acc(i, v))
			}
		}
	}
	p("CMPQ CX, $%d", U)
	p("JLT tail")
	label("loop")
	for u := 0; u < U; u++ {
		step(u, func(v int) int { return (u*width + v*16) * 4 })
	}
	advanceRows(rows, U*4)
	p("ADDQ $%d, DX", U*width*4)
	p("SUBQ $%d, CX", U)
	p("CMPQ CX, $%d", U)
	p("JGE loop")
	label("tail")
	p("TESTQ CX, CX")
	p("JEQ epilogue")
	label("tailloop")
	step(0, func(v int) int { return v * 64 })
	advanceRows(rows, 4)
	p("ADDQ $%d, DX", width*4)
	p("DECQ CX")
	p("JNZ tailloop")

	label("epilogue")
	p("MOVQ c+32(FP), DI")
	p("MOVQ ldc+40(FP), BX")
	p("SHLQ $2, BX")
	p("MOVL mask+64(FP), AX")
	p("KMOVW AX, K1")
	p("SHRL $16, AX")
	p("KMOVW AX, K2")
	p("MOVQ colCorr+56(FP), R8")
	for v := 0; v < nv; v++ {
		p("VMOVDQU32 %d(R8), Z%d", v*64, 28+v)
	}
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VPADDD Z%d, %s, %s", 28+v, acc(i, v), acc(i, v))
		}
	}
	p("MOVQ rowCorr+48(FP), R9")
	p("TESTQ R9, R9")
	p("JEQ store")
	for i := 0; i < rows; i++ {
		p("VPBROADCASTD %d(R9), Z30", i*4)
		for v := 0; v < nv; v++ {
			p("VPADDD Z30, %s, %s", acc(i, v), acc(i, v))
		}
	}
	label("store")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VMOVDQU32 %s, K%d, %d(DI)", acc(i, v), 1+v, v*64)
		}
		if i+1 < rows {
			p("ADDQ BX, DI")
		}
	}
	p("VZEROUPPER")
	p("RET")
	asm.WriteString("\n")
	return name
}

// igemmAVX2 multiplies 16-bit operands (widened at packing time) with
// VPMADDWD, which sums two exact 16×16-bit products into an int32 lane and
// so can never saturate, unlike VPMADDUBSW on raw u8×s8 bytes.
func igemmAVX2(rows, width int) string {
	name := fmt.Sprintf("igemmAVX2x%dx%d", rows, width)
	nv := width / 8
	acc := func(i, v int) string { return fmt.Sprintf("Y%d", i*nv+v) }
	fmt.Fprintf(&decl, "//go:noescape\nfunc %s(%s)\n\n", name, igemmArgs)
	fmt.Fprintf(&asm, "// func %s(%s)\n", name, igemmArgs)
	fmt.Fprintf(&asm, "TEXT ·%s(SB), NOSPLIT, %s\n", name, igemmFrame)
	p("MOVQ kg+0(FP), CX")
	setupRows(rows, 0)
	p("MOVQ b+24(FP), DX")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VPXOR %s, %s, %s", acc(i, v), acc(i, v), acc(i, v))
		}
	}
	const U = 4
	step := func(u int, bdisp func(v int) int) {
		for v := 0; v < nv; v++ {
			p("VMOVDQU %d(DX), Y%d", bdisp(v), 12+v)
		}
		for i := 0; i < rows; i++ {
			p("VPBROADCASTD %s, Y14", rowAddr(i, u*4))
			for v := 0; v < nv; v++ {
				p("VPMADDWD Y%d, Y14, Y15", 12+v)
				p("VPADDD Y15, %s, %s", acc(i, v), acc(i, v))
			}
		}
	}
	p("CMPQ CX, $%d", U)
	p("JLT tail")
	label("loop")
	for u := 0; u < U; u++ {
		step(u, func(v int) int { return (u*width + v*8) * 4 })
	}
	advanceRows(rows, U*4)
	p("ADDQ $%d, DX", U*width*4)
	p("SUBQ $%d, CX", U)
	p("CMPQ CX, $%d", U)
	p("JGE loop")
	label("tail")
	p("TESTQ CX, CX")
	p("JEQ epilogue")
	label("tailloop")
	step(0, func(v int) int { return v * 32 })
	advanceRows(rows, 4)
	p("ADDQ $%d, DX", width*4)
	p("DECQ CX")
	p("JNZ tailloop")

	label("epilogue")
	p("MOVQ c+32(FP), DI")
	p("MOVQ ldc+40(FP), BX")
	p("SHLQ $2, BX")
	p("MOVQ colCorr+56(FP), R8")
	for v := 0; v < nv; v++ {
		p("VMOVDQU %d(R8), Y%d", v*32, 12+v)
	}
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VPADDD Y%d, %s, %s", 12+v, acc(i, v), acc(i, v))
		}
	}
	p("MOVQ rowCorr+48(FP), R9")
	p("TESTQ R9, R9")
	p("JEQ store")
	for i := 0; i < rows; i++ {
		p("VPBROADCASTD %d(R9), Y14", i*4)
		for v := 0; v < nv; v++ {
			p("VPADDD Y14, %s, %s", acc(i, v), acc(i, v))
		}
	}
	label("store")
	for i := 0; i < rows; i++ {
		for v := 0; v < nv; v++ {
			p("VMOVDQU %s, %d(DI)", acc(i, v), v*32)
		}
		if i+1 < rows {
			p("ADDQ BX, DI")
		}
	}
	p("VZEROUPPER")
	p("RET")
	asm.WriteString("\n")
	return name
}

// table emits a Go array literal [width-variant][rows] of kernel functions.
func table(varName, typ string, mr int, widths []int, gen func(rows, width int) string) {
	var names [][]string
	for _, w := range widths {
		var row []string
		for r := 1; r <= mr; r++ {
			row = append(row, gen(r, w))
		}
		names = append(names, row)
	}
	fmt.Fprintf(&decl, "// %s holds the generated kernels indexed by [width variant][rows-1].\n", varName)
	fmt.Fprintf(&decl, "var %s = [%d][%d]%s{\n", varName, len(widths), mr, typ)
	for _, row := range names {
		decl.WriteString("\t{")
		for i, n := range row {
			if i > 0 {
				decl.WriteString(", ")
			}
			decl.WriteString(n)
		}
		decl.WriteString("},\n")
	}
	decl.WriteString("}\n\n")
}

func main() {
	const header = "// Code generated by gen_asm.go; DO NOT EDIT.\n\n"
	asm.WriteString(header)
	asm.WriteString("#include \"textflag.h\"\n\n")
	decl.WriteString(header)
	decl.WriteString("package kernels\n\nimport \"unsafe\"\n\nvar _ unsafe.Pointer\n\n")

	table("sgemmKernelsAVX512", "sgemmKernelFn", 12, []int{32, 16}, sgemm512)
	table("sgemmKernelsAVX2", "sgemmKernelFn", 6, []int{16, 8}, sgemm256)
	table("igemmKernelsVNNI", "igemmKernelFn", 12, []int{32, 16}, igemmVNNI)
	table("igemmKernelsAVX2", "igemmKernelFn", 6, []int{16, 8}, igemmAVX2)

	src, err := format.Source(decl.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("zkernels_amd64.go", src, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("zkernels_amd64.s", asm.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
