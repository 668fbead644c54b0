package ir

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxElements alone lets through a tensor of 2^34 f32 elements, 64 GiB:
// a model whose dims say [3000000000, 4] (an Expand or Tile gone wrong in
// an export, or a damaged file) passes it, and the runtime then dies with
// Go's fatal out-of-memory error, which no caller can catch. A single
// tensor larger than the machine's memory can never be allocated, so
// NewTensor refuses it up front with an error that says so.

// EnvMaxTensorBytes, when set to a byte count, replaces the machine's
// memory as the bound.
const EnvMaxTensorBytes = "PQVC_MAX_TENSOR_BYTES"

var (
	maxTensorBytes     atomic.Int64 // 0: not yet read from the machine
	maxTensorBytesOnce sync.Once
	maxTensorBytesFrom atomic.Value // string: what the bound is, for messages
)

// MaxTensorBytes is the largest tensor NewTensor allocates: the machine's
// physical memory (MemTotal in /proc/meminfo), $PQVC_MAX_TENSOR_BYTES
// when set, or no bound where neither can be read.
func MaxTensorBytes() int64 {
	maxTensorBytesOnce.Do(func() {
		n, from := physicalMemory(), "this machine's memory"
		if v, err := strconv.ParseInt(os.Getenv(EnvMaxTensorBytes), 10, 64); err == nil && v > 0 {
			n, from = v, EnvMaxTensorBytes
		}
		if maxTensorBytes.CompareAndSwap(0, n) {
			maxTensorBytesFrom.Store(from)
		}
	})
	return maxTensorBytes.Load()
}

// SetMaxTensorBytes sets the bound NewTensor applies (n <= 0: none) and
// returns the previous one. Tests use it; so may an embedding program that
// knows its own budget.
func SetMaxTensorBytes(n int64) int64 {
	old := MaxTensorBytes()
	if n <= 0 {
		n = 1<<63 - 1
	}
	maxTensorBytes.Store(n)
	maxTensorBytesFrom.Store("the bound set")
	return old
}

func physicalMemory() int64 {
	const none = 1<<63 - 1
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return none
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil || kb <= 0 {
			return none
		}
		return kb << 10
	}
	return none
}

// checkTensorBytes refuses n elements of dt beyond MaxTensorBytes.
func checkTensorBytes(dt DType, shape []int64, n int64) error {
	size := int64(dt.Size())
	if size <= 0 {
		return nil
	}
	max := MaxTensorBytes()
	if n > max/size {
		from, _ := maxTensorBytesFrom.Load().(string)
		return fmt.Errorf("shape %v of %v needs %s; one tensor may take at most %s (%s)", shape, dt, gib(float64(n)*float64(size)), gib(float64(max)), from)
	}
	return nil
}

func gib(b float64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}
