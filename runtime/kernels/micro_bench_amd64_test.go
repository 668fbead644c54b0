// Copyright 2026 The pqvc Authors.

package kernels

import (
	"fmt"
	"testing"
	"unsafe"
)

// BenchmarkMicroKernel measures the full-tile micro-kernels alone on
// L1-resident operands: the ceiling the drivers are measured against.
func BenchmarkMicroKernel(b *testing.B) {
	for _, ar := range []*sgemmArch{sgemmAVX2, sgemmAVX512} {
		if s, _ := archKernels(ar.name, cpu); s == nil {
			continue
		}
		for _, k := range []int{64, 192, 256} {
			b.Run(fmt.Sprintf("%s/k%d", ar.name, k), func(b *testing.B) {
				a := make([]float32, ar.mr*k)
				bp := make([]float32, ar.nr*k)
				c := make([]float32, ar.mr*ar.nr)
				kern := ar.kernels[0][ar.mr-1]
				loop(b, 20*float64(ar.mr*ar.nr*k), "GFLOP/s", func() {
					for range 10 {
						kern(k, &a[0], k, &bp[0], &c[0], ar.nr, 1, 0, nil, ^uint32(0), 0)
					}
				})
			})
		}
	}
	for _, ar := range []*igemmArch{igemmAVX2, igemmVNNI} {
		if _, i := archKernels(ar.name, cpu); i != ar {
			continue
		}
		for _, k := range []int{192, 768} {
			b.Run(fmt.Sprintf("int8-%s/k%d", ar.name, k), func(b *testing.B) {
				kg := k / ar.group()
				a := make([]byte, ar.mr*k*ar.elem())
				bp := make([]byte, ar.nr*k*ar.elem())
				c := make([]int32, ar.mr*ar.nr)
				cc := make([]int32, ar.nr)
				kern := ar.kernels[0][ar.mr-1]
				loop(b, 20*float64(ar.mr*ar.nr*k), "GOP/s", func() {
					for range 10 {
						kern(kg, ptr(a), k*ar.elem(), ptr(bp), &c[0], ar.nr, nil, &cc[0], ^uint32(0), 0)
					}
				})
			})
		}
	}
}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
