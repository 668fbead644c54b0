// Copyright 2026 The pqvc Authors.

package kernels

import (
	"math/bits"
	"unsafe"
)

// The generic path: portable Go micro-kernels using the same drivers and
// packed layouts as the assembly ones (4×4 tiles). They are the reference
// for every other path and the fallback on CPUs without AVX2.

var sgemmGeneric = &sgemmArch{
	name: "generic", mr: 4, nr: 4, masked: true,
	kernels: [2][]sgemmKernelFn{{
		sgemmGenericKernel(1), sgemmGenericKernel(2), sgemmGenericKernel(3), sgemmGenericKernel(4),
	}},
}

// sgemmGenericKernel returns the 4-column generic kernel for a fixed row
// count.
func sgemmGenericKernel(rows int) sgemmKernelFn {
	return func(k int, a *float32, lda int, b *float32, c *float32, ldc int, alpha, beta float32, bias *float32, mask uint32, flags int) {
		cols := bits.Len32(mask)
		bs := unsafe.Slice(b, 4*k)
		as := unsafe.Slice(a, (rows-1)*lda+k)
		cs := unsafe.Slice(c, (rows-1)*ldc+cols)
		var bi []float32
		if bias != nil {
			bi = unsafe.Slice(bias, cols)
		}
		for i := 0; i < rows; i++ {
			ar := as[i*lda : i*lda+k]
			var c0, c1, c2, c3 float32
			for p, av := range ar {
				bp := bs[p*4 : p*4+4 : p*4+4]
				c0 += av * bp[0]
				c1 += av * bp[1]
				c2 += av * bp[2]
				c3 += av * bp[3]
			}
			acc := [4]float32{c0, c1, c2, c3}
			crow := cs[i*ldc : i*ldc+cols]
			for x := range crow {
				v := alpha * acc[x]
				if bi != nil {
					v += bi[x]
				}
				if flags&flagLoadC != 0 {
					v += beta * crow[x]
				}
				crow[x] = v
			}
		}
	}
}

var igemmGeneric = &igemmArch{
	name: "generic", mr: 4, nr: 4, masked: true,
	kernels: [2][]igemmKernelFn{{
		igemmGenericKernel(1), igemmGenericKernel(2), igemmGenericKernel(3), igemmGenericKernel(4),
	}},
}

// igemmGenericKernel returns the generic int8 kernel for a fixed row count.
// It uses the byte layout of the VNNI kernels: A rows of kg 4-byte groups
// (unsigned after XOR with flip), B panels of kg groups × 4 columns × 4
// signed bytes.
func igemmGenericKernel(rows int) igemmKernelFn {
	return func(kg int, a unsafe.Pointer, lda int, b unsafe.Pointer, c *int32, ldc int, rowCorr, colCorr *int32, mask uint32, flip uint32) {
		fb := byte(flip)
		cols := bits.Len32(mask)
		as := unsafe.Slice((*uint8)(a), (rows-1)*lda+4*kg)
		bs := unsafe.Slice((*int8)(b), 16*kg)
		cs := unsafe.Slice(c, (rows-1)*ldc+cols)
		cc := unsafe.Slice(colCorr, 4)
		for i := 0; i < rows; i++ {
			ar := as[i*lda : i*lda+4*kg]
			var c0, c1, c2, c3 int32
			for g := 0; g < kg; g++ {
				a4 := ar[4*g : 4*g+4 : 4*g+4]
				b16 := bs[16*g : 16*g+16 : 16*g+16]
				a0, a1, a2, a3 := int32(a4[0]^fb), int32(a4[1]^fb), int32(a4[2]^fb), int32(a4[3]^fb)
				c0 += a0*int32(b16[0]) + a1*int32(b16[1]) + a2*int32(b16[2]) + a3*int32(b16[3])
				c1 += a0*int32(b16[4]) + a1*int32(b16[5]) + a2*int32(b16[6]) + a3*int32(b16[7])
				c2 += a0*int32(b16[8]) + a1*int32(b16[9]) + a2*int32(b16[10]) + a3*int32(b16[11])
				c3 += a0*int32(b16[12]) + a1*int32(b16[13]) + a2*int32(b16[14]) + a3*int32(b16[15])
			}
			acc := [4]int32{c0 + cc[0], c1 + cc[1], c2 + cc[2], c3 + cc[3]}
			if rowCorr != nil {
				rc := unsafe.Slice(rowCorr, rows)[i]
				for x := range acc {
					acc[x] += rc
				}
			}
			copy(cs[i*ldc:i*ldc+cols], acc[:cols])
		}
	}
}
