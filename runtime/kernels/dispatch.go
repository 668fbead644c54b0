// Copyright 2026 The pqvc Authors.

package kernels

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// cpuFeatures are the instruction-set levels the kernels care about, each
// already checked for OS support (XCR0).
type cpuFeatures struct {
	avx2   bool // AVX2 + FMA3
	avx512 bool // AVX-512 F/BW/DQ/VL
	vnni   bool // AVX512_VNNI
}

// EnvKernels is the environment variable that forces a kernel path:
// "generic", "avx2" or "avx512". It is read once, at package initialisation.
// A path the CPU cannot run falls back to the best one it can, so forcing
// never causes an illegal-instruction crash.
const EnvKernels = "PQVC_KERNELS"

// kernelSet is the pair of kernel families in use; swapped atomically so
// tests can switch paths.
type kernelSet struct {
	name string
	s    *sgemmArch
	i    *igemmArch
}

// The active set and thread budget are set by variable initialisers rather
// than init functions, so that package-level variables of importing
// packages (initialised before their own init) can already run kernels.
var (
	cpu     = detectCPU()
	active  = newAtomic(resolvePath(os.Getenv(EnvKernels)))
	threads = newThreads()
)

func newAtomic(ks *kernelSet) *atomic.Pointer[kernelSet] {
	p := new(atomic.Pointer[kernelSet])
	p.Store(ks)
	return p
}

func newThreads() *atomic.Int32 {
	t := new(atomic.Int32)
	t.Store(int32(runtime.GOMAXPROCS(0)))
	return t
}

// resolvePath picks the kernel set for a requested path name; "" or an
// unknown or unsupported name selects the best supported path.
func resolvePath(want string) *kernelSet {
	switch want {
	case "generic":
		return &kernelSet{"generic", sgemmGeneric, igemmGeneric}
	case "avx2", "avx512":
		if s, i := archKernels(want, cpu); s != nil {
			return &kernelSet{want, s, i}
		}
	}
	for _, p := range []string{"avx512", "avx2"} {
		if s, i := archKernels(p, cpu); s != nil {
			return &kernelSet{p, s, i}
		}
	}
	return &kernelSet{"generic", sgemmGeneric, igemmGeneric}
}

// KernelPath reports the kernel path in use: "generic", "avx2" or "avx512".
func KernelPath() string { return active.Load().name }

// AvailablePaths lists the kernel paths this CPU can run, slowest first.
func AvailablePaths() []string {
	paths := []string{"generic"}
	for _, p := range []string{"avx2", "avx512"} {
		if s, _ := archKernels(p, cpu); s != nil {
			paths = append(paths, p)
		}
	}
	return paths
}

// setPath switches the active kernel path (tests and benchmarks only; not
// safe to call concurrently with running kernels) and returns the name
// actually selected.
func setPath(name string) string {
	ks := resolvePath(name)
	active.Store(ks)
	return ks.name
}

// SetThreads sets how many goroutines a single kernel call may use. n <= 0
// restores the default, runtime.GOMAXPROCS(0). Results are bitwise identical
// for every thread count.
func SetThreads(n int) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	threads.Store(int32(n))
}

// Threads reports the goroutine budget set by SetThreads.
func Threads() int { return int(threads.Load()) }

// parallelFor runs f(0..n-1), f(0) on the calling goroutine and the rest on
// new goroutines, and waits for all of them.
func parallelFor(n int, f func(t int)) {
	if n <= 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	wg.Add(n - 1)
	for t := 1; t < n; t++ {
		go func() {
			defer wg.Done()
			f(t)
		}()
	}
	f(0)
	wg.Wait()
}

// splitRange returns the t-th of parts near-equal contiguous sub-ranges of
// [0, count).
func splitRange(count, parts, t int) (lo, hi int) {
	q, r := count/parts, count%parts
	lo = t*q + min(t, r)
	hi = lo + q
	if t < r {
		hi++
	}
	return lo, hi
}
