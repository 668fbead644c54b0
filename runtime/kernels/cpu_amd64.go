// Copyright 2026 The pqvc Authors.

package kernels

//go:generate go run gen_asm.go

// cpuid executes the CPUID instruction with the given leaf and sub-leaf.
//
//go:noescape
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// xgetbv reads extended control register 0 (XCR0), which tells which
// register states the operating system saves on context switch.
//
//go:noescape
func xgetbv() (eax, edx uint32)

// detectCPU reports which instruction-set levels are both implemented by the
// CPU and enabled by the OS. A CPU flag alone is not enough: if the OS does
// not save the upper YMM/ZMM halves (XCR0), using them corrupts state.
func detectCPU() cpuFeatures {
	var f cpuFeatures
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return f
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fmaBit     = 1 << 12
		osxsaveBit = 1 << 27
		avxBit     = 1 << 28
	)
	if ecx1&osxsaveBit == 0 {
		return f
	}
	xcr0, _ := xgetbv()
	const (
		xmmYmmState = 1<<1 | 1<<2        // SSE + AVX state
		zmmState    = 1<<5 | 1<<6 | 1<<7 // opmask, ZMM_Hi256, Hi16_ZMM
	)
	osAVX := xcr0&xmmYmmState == xmmYmmState
	osAVX512 := osAVX && xcr0&zmmState == zmmState

	_, ebx7, ecx7, _ := cpuid(7, 0)
	const (
		avx2Bit     = 1 << 5  // EBX
		avx512fBit  = 1 << 16 // EBX
		avx512dqBit = 1 << 17 // EBX
		avx512bwBit = 1 << 30 // EBX
		avx512vlBit = 1 << 31 // EBX
		vnniBit     = 1 << 11 // ECX: AVX512_VNNI
	)
	f.avx2 = osAVX && ecx1&avxBit != 0 && ecx1&fmaBit != 0 && ebx7&avx2Bit != 0
	need512 := uint32(avx512fBit | avx512dqBit | avx512bwBit | avx512vlBit)
	f.avx512 = f.avx2 && osAVX512 && ebx7&need512 == need512
	f.vnni = f.avx512 && ecx7&vnniBit != 0
	return f
}

// Architecture-specific kernel sets. The generated tables live in
// zkernels_amd64.go.
var (
	sgemmAVX512 = &sgemmArch{
		name: "avx512", mr: 12, nr: 32, nrHalf: 16, masked: true, asmPack: true,
		kernels: [2][]sgemmKernelFn{sgemmKernelsAVX512[0][:], sgemmKernelsAVX512[1][:]},
	}
	sgemmAVX2 = &sgemmArch{
		name: "avx2", mr: 6, nr: 16, nrHalf: 8, masked: false, asmPack: true,
		kernels: [2][]sgemmKernelFn{sgemmKernelsAVX2[0][:], sgemmKernelsAVX2[1][:]},
	}
	igemmVNNI = &igemmArch{
		name: "avx512", mr: 12, nr: 32, nrHalf: 16, masked: true, wide: false, asmPack: true,
		kernels: [2][]igemmKernelFn{igemmKernelsVNNI[0][:], igemmKernelsVNNI[1][:]},
	}
	igemmAVX2 = &igemmArch{
		name: "avx2", mr: 6, nr: 16, nrHalf: 8, masked: false, wide: true,
		kernels: [2][]igemmKernelFn{igemmKernelsAVX2[0][:], igemmKernelsAVX2[1][:]},
	}
)

// archKernels returns the kernel sets usable on this CPU for the named path
// (nil when the CPU cannot run it).
func archKernels(path string, f cpuFeatures) (*sgemmArch, *igemmArch) {
	switch path {
	case "avx512":
		if !f.avx512 {
			return nil, nil
		}
		if f.vnni {
			return sgemmAVX512, igemmVNNI
		}
		// AVX-512 without VNNI (e.g. Skylake-X): the VPMADDWD kernel is
		// the best exact int8 kernel we have.
		return sgemmAVX512, igemmAVX2
	case "avx2":
		if !f.avx2 {
			return nil, nil
		}
		return sgemmAVX2, igemmAVX2
	}
	return nil, nil
}
