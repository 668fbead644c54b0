package grad

import (
	"slices"
	"sync"

	"github.com/pqvc/pqvc/runtime/kernels"
)

// prod is the element count of a shape.
func prod(s []int64) int {
	n := 1
	for _, d := range s {
		n *= int(d)
	}
	return n
}

// stridesOf returns row-major strides (in elements) of a shape.
func stridesOf(s []int64) []int {
	st := make([]int, len(s))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= int(s[i])
	}
	return st
}

// bstrides gives, for every axis of the broadcast shape out, the stride of
// operand shape s (right-aligned, numpy style); broadcast axes get stride 0,
// so walking out with these strides visits the operand element each output
// element was computed from.
func bstrides(s, out []int64) []int {
	st := make([]int, len(out))
	in := stridesOf(s)
	off := len(out) - len(s)
	for i := range s {
		if s[i] != 1 {
			st[off+i] = in[i]
		}
	}
	return st
}

// forEachIndex visits every element of shape out in row-major order with
// the running offsets for each stride set; offsets are updated
// incrementally so the cost per element is a few adds.
func forEachIndex(out []int64, strides [][]int, fn func(i int, offs []int)) {
	n := prod(out)
	r := len(out)
	idx := make([]int, r)
	offs := make([]int, len(strides))
	for i := 0; i < n; i++ {
		fn(i, offs)
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			for k := range strides {
				offs[k] += strides[k][d]
			}
			if idx[d] < int(out[d]) {
				break
			}
			for k := range strides {
				offs[k] -= strides[k][d] * int(out[d])
			}
			idx[d] = 0
		}
	}
}

// forEachRow visits the rows (last axis) of shape out in parallel chunks,
// giving each row's index and, for every stride set, the offset of the
// row's first element. Rows are independent, so fn may write per-row
// output without locks. inner is the row length (1 for a scalar).
func forEachRow(out []int64, strides [][]int, parallel bool, fn func(r int, offs []int)) {
	r := len(out)
	if r == 0 {
		fn(0, make([]int, len(strides)))
		return
	}
	outer := out[:r-1]
	rows := prod(outer)
	grain := max(1, 8192/max(int(out[r-1]), 1))
	body := func(lo, hi int) {
		offs := make([]int, len(strides))
		for row := lo; row < hi; row++ {
			rem := row
			for k := range offs {
				offs[k] = 0
			}
			for d := r - 2; d >= 0; d-- {
				i := rem % int(outer[d])
				rem /= int(outer[d])
				for k, st := range strides {
					offs[k] += i * st[d]
				}
			}
			fn(row, offs)
		}
	}
	if parallel {
		parallelFor(rows, grain, body)
	} else {
		body(0, rows)
	}
}

// lastStride is the stride along the last axis (0 for rank 0).
func lastStride(st []int) int {
	if len(st) == 0 {
		return 0
	}
	return st[len(st)-1]
}

// rowLen is the length of the last axis (1 for a scalar).
func rowLen(out []int64) int {
	if len(out) == 0 {
		return 1
	}
	return int(out[len(out)-1])
}

// reduceTo sums a gradient of broadcast shape out back onto the operand
// shape target: every output element that read an operand element
// contributes to it. The result is always a fresh slice.
func reduceTo(g []float32, out, target []int64) []float32 {
	// Equal counts mean every broadcast axis has size 1, so the layouts agree.
	if prod(out) == prod(target) {
		return slices.Clone(g)
	}
	res := make([]float32, prod(target))
	if len(res) == 1 {
		var s float64
		for _, x := range g {
			s += float64(x)
		}
		res[0] = float32(s)
		return res
	}
	st := bstrides(target, out)
	inner, si := rowLen(out), lastStride(st)
	// Sequential: different rows may add into the same target elements.
	forEachRow(out, [][]int{st}, false, func(r int, o []int) {
		row := g[r*inner : (r+1)*inner]
		if si == 1 {
			addInto(res[o[0]:o[0]+inner], row)
			return
		}
		var s float32
		for _, x := range row {
			s += x
		}
		res[o[0]] += s
	})
	return res
}

// parallelFor splits [0, n) into chunks of at least grain and runs them
// on up to kernels.Threads() goroutines.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	workers := max(1, kernels.Threads())
	if n <= grain || workers == 1 {
		fn(0, n)
		return
	}
	chunks := min(workers, (n+grain-1)/grain)
	step := (n + chunks - 1) / chunks
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// addInto adds src into dst elementwise.
func addInto(dst, src []float32) {
	kernels.Axpy(1, src, dst)
}
