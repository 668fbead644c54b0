package runtime

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/kernels"
)

// newTensor allocates a zero tensor; it fails only on absurd shapes.
func newTensor(dt ir.DType, shape []int64) (*ir.Tensor, error) {
	return ir.NewTensor(dt, shape)
}

func prod(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

// stridesOf returns row-major element strides.
func stridesOf(shape []int64) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= int(shape[i])
	}
	return s
}

// parallelFor splits [0, n) into chunks of at least grain and runs f on them
// on up to kernels.Threads() goroutines. Small n runs inline.
func parallelFor(n, grain int, f func(lo, hi int)) {
	workers := min(kernels.Threads(), runtime.GOMAXPROCS(0))
	if grain < 1 {
		grain = 1
	}
	if workers <= 1 || n <= grain {
		f(0, n)
		return
	}
	chunks := min(workers, (n+grain-1)/grain)
	var wg sync.WaitGroup
	per := (n + chunks - 1) / chunks
	for lo := 0; lo < n; lo += per {
		hi := min(n, lo+per)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// broadcastShape is numpy broadcasting on concrete shapes.
func broadcastShape(shapes ...[]int64) ([]int64, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int64, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		for j, d := range s {
			k := rank - len(s) + j
			switch {
			case out[k] == d || d == 1:
			case out[k] == 1:
				out[k] = d
			default:
				return nil, fmt.Errorf("cannot broadcast shapes %v", shapes)
			}
		}
	}
	return out, nil
}

// bstrides are the element strides of shape s viewed as broadcast to out:
// 0 on broadcast dims.
func bstrides(s, out []int64) []int {
	st := make([]int, len(out))
	full := stridesOf(s)
	for j := range s {
		k := len(out) - len(s) + j
		if s[j] != 1 {
			st[k] = full[j]
		}
	}
	return st
}

// forRows walks the broadcast of several operands to out one innermost row
// at a time, in parallel chunks, calling f with the row index and each
// operand's element offset at the row start. The row length is out's last
// dim; each operand's inner stride is its bstrides' last entry.
func forRows(out []int64, strides [][]int, f func(row int, offs []int)) {
	rank := len(out)
	if rank == 0 {
		f(0, make([]int, len(strides)))
		return
	}
	rows := prod(out[:rank-1])
	inner := int(out[rank-1])
	parallelFor(rows, max(1, 16384/max(inner, 1)), func(lo, hi int) {
		offs := make([]int, len(strides))
		for r := lo; r < hi; r++ {
			rem := r
			for k := range offs {
				offs[k] = 0
			}
			for d := rank - 2; d >= 0; d-- {
				i := rem % int(out[d])
				rem /= int(out[d])
				for k := range offs {
					offs[k] += i * strides[k][d]
				}
			}
			f(r, offs)
		}
	})
}
