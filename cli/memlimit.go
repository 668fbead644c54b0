package cli

import (
	"os"
	goruntime "runtime"
	"runtime/debug"

	"github.com/pqvc/pqvc/runtime"
)

// softMemoryLimit bounds the Go heap for a large model. Go's collector
// lets the heap grow to twice the live data between collections, and a
// compile briefly holds two versions of a weight (pruned and unpruned,
// float and int8), so a 330 MiB DeiT-base peaked at 2.3x its size. A soft
// limit of 1.5x the weights (plus 64 MB for the program) makes the
// collector run before that: measured on DeiT-base (prune, fuse, int8,
// emit), peak RSS went from 782,000 to 584,000 KiB, 1.73x the 346 MB file. Passes that
// really need more (importance keeps activations for the backward pass)
// still get it: the limit is soft and the collector's CPU share is capped,
// so they run up to about a third slower and peak at about half the memory
// they would otherwise. Small models and an explicit GOMEMLIMIT are left
// alone. It reports whether the model is large.
//
// The runtime's cache of packed weights (one GEMM-ready copy per weight,
// kept between runs) is bounded to a quarter of the weights for the same
// models: calibration, evaluation and latency runs multiply by the other
// weights unpacked instead of holding a second copy of the model.
func softMemoryLimit(weightBytes int64) bool {
	const small = 64 << 20
	if weightBytes < small {
		return false
	}
	runtime.SetDefaultPackCache(weightBytes / 4)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(weightBytes*3/2 + small)
	}
	return true
}

// collectBeforeEmit frees the garbage of the previous step before a
// backend serialises a large model. Each emit builds its file's bytes in a
// burst (about twice the compressed model) faster than a concurrent
// collection finishes, so without this the bursts of consecutive emits and
// the last evaluation stacked up: DeiT-base from a Hugging Face export
// peaked at 1.96x the model at the emits, against 1.73x everywhere else.
func collectBeforeEmit(large bool) {
	if large {
		goruntime.GC()
	}
}

// releaseMemory returns the freed heap of a large model to the operating
// system, so that a child process started next (ONNX Runtime's runner)
// does not add its memory to pages pqvc no longer uses.
func releaseMemory(large bool) {
	if large {
		debug.FreeOSMemory()
	}
}
