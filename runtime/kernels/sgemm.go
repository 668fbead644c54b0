// Copyright 2026 The pqvc Authors.

package kernels

import (
	"fmt"
	"sync"
	"unsafe"
)

// sgemmKernelFn is the signature shared by every FP32 micro-kernel. It
// computes a rows×W tile (rows and W are fixed by the function chosen):
//
//	acc[i][j] = Σ_{p<k} a[i*lda+p] · b[p*W+j]
//	c[i*ldc+j] = alpha·acc[i][j] + bias[j] + (flags&flagLoadC != 0 ? beta·c[i*ldc+j] : 0)
//
// A is read in place (row-major, any stride), B is a packed panel. bias may
// be nil. Masked kernels store only the columns whose bit is set in mask
// (and read bias/C only there); unmasked ones always store W columns.
type sgemmKernelFn func(k int, a *float32, lda int, b *float32, c *float32, ldc int, alpha, beta float32, bias *float32, mask uint32, flags int)

const flagLoadC = 1

// sgemmArch describes one micro-kernel family.
type sgemmArch struct {
	name   string
	mr, nr int // full tile: mr rows × nr columns
	// nrHalf is the width of a narrow panel used for the last column panel
	// when at most nrHalf columns remain (0: none). It halves the wasted
	// FMAs at ragged N edges such as N=197.
	nrHalf  int
	kernels [2][]sgemmKernelFn // [0]: width nr, [1]: width nrHalf; index rows-1
	// masked kernels handle partial column tiles themselves; otherwise the
	// driver computes such tiles into a scratch tile and copies.
	masked bool
	// asmPack lets packing use AVX transposes (the generic family stays
	// pure Go, so forcing it exercises a fully portable path).
	asmPack bool
}

// panelWidth is the packed width of the column panel starting at column j
// of an n-column matrix. It depends only on (j, n), so panel boundaries are
// identical however the columns are split between goroutines.
func (ar *sgemmArch) panelWidth(j, n int) int { return panelWidth(ar.nr, ar.nrHalf, j, n) }

// paddedWidth is the total packed width of n columns.
func (ar *sgemmArch) paddedWidth(n int) int { return paddedWidth(ar.nr, ar.nrHalf, n) }

func panelWidth(nr, nrHalf, j, n int) int {
	if nrHalf > 0 && n-j <= nrHalf {
		return nrHalf
	}
	return nr
}

func paddedWidth(nr, nrHalf, n int) int {
	full := n / nr * nr
	if full == n {
		return n
	}
	return full + panelWidth(nr, nrHalf, full, n)
}

// Blocking parameters (see the package documentation).
const (
	// kcMax bounds the depth of one packed B block. K is split into equal
	// blocks of at most kcMax (rounded up to a multiple of 8), so the split
	// depends only on K: every thread count sums k in the same order.
	kcMax = 512
	// mcBlock rows of A (kc deep, read in place) are swept against each
	// packed B block; mcBlock×kc floats stay in L2. It must be a multiple
	// of every family's mr (12, 6, 4) so row tiles never straddle blocks.
	mcBlock = 144
	// ncBlock columns of B are packed at a time (kc×ncBlock floats, up to
	// 1 MiB, sized for L2/L3).
	ncBlock = 768
	// parMinWork is the multiply-add count per goroutine below which a call
	// is not split: spawning and joining costs a few microseconds.
	parMinWork = 1 << 17
)

// kBlock returns the k-block depth used for inner dimension k.
func kBlock(k int) int {
	nb := (k + kcMax - 1) / kcMax
	kc := (k + nb - 1) / nb
	return (kc + 7) &^ 7
}

// sgemmJob is one C = alpha·op(A)·op(B) + beta·C (+ bias) problem; run
// computes a rectangle of it.
type sgemmJob struct {
	ar      *sgemmArch
	transA  bool
	a       []float32
	lda     int
	transB  bool
	b       []float32
	ldb     int
	pb      *PackedB // if non-nil, B is prepacked and b is unused
	m, n, k int
	kc      int
	alpha   float32
	beta    float32
	c       []float32
	ldc     int
	bias    []float32
}

// workspace holds per-goroutine packing buffers, recycled through a pool so
// steady-state calls do not allocate.
type workspace struct {
	a, b, tmp []float32
	i8a, i8b  []byte
	i32       []int32
}

var wsPool = sync.Pool{New: func() any { return new(workspace) }}

// alignedFloats returns buf resliced to n elements starting on a 64-byte
// boundary, reallocating when it is too small. Aligned panels keep every
// 64-byte ZMM load within one cache line.
func alignedFloats(buf *[]float32, n int) []float32 {
	const pad = 16
	if cap(*buf) < n+pad {
		*buf = make([]float32, n+pad+n/4)
	}
	s := (*buf)[:cap(*buf)]
	off := int(uintptr(unsafe.Pointer(&s[0]))&63) / 4
	if off != 0 {
		off = pad - off
	}
	return s[off : off+n]
}

// run computes rows [i0,i1) × columns [j0,j1) of C. i0 is a multiple of mr
// and j0, j1 (unless j1 == n) multiples of nr, so tiles and panels coincide
// with those of a single-threaded run.
func (j *sgemmJob) run(i0, i1, j0, j1 int) {
	ar := j.ar
	ws := wsPool.Get().(*workspace)
	defer wsPool.Put(ws)
	tmp := ws.tmp
	if !ar.masked {
		tmp = alignedFloats(&ws.tmp, ar.mr*ar.nr)
	}
	for jc := j0; jc < j1; jc += ncBlock {
		nc := min(ncBlock, j1-jc)
		for p0 := 0; p0 < j.k; p0 += j.kc {
			kcb := min(j.kc, j.k-p0)
			first := p0 == 0
			var bp []float32 // panel of column jc+x starts at x*kcb
			if j.pb != nil {
				bp = j.pb.data[p0*j.pb.wp+jc*kcb:]
			} else {
				wp := ar.paddedWidth(j.n) // upper bound for this range
				bp = alignedFloats(&ws.b, kcb*min(wp-jc, nc+ar.nr))
				packB(ar, bp, j.transB, j.b, j.ldb, j.n, p0, kcb, jc, nc)
			}
			alpha, beta, flags := j.alpha, j.beta, 0
			var bias []float32
			if first {
				bias = j.bias
				if beta != 0 {
					flags = flagLoadC
				}
			} else {
				beta, flags = 1, flagLoadC
			}
			for ic := i0; ic < i1; ic += mcBlock {
				mc := min(mcBlock, i1-ic)
				var ap []float32
				lda := j.lda
				if j.transA {
					// op(A) rows are strided columns of a: transpose the
					// block into row-major scratch so the kernel can
					// stream it.
					ap = alignedFloats(&ws.a, mc*kcb)
					packAT(ar, ap, j.a, j.lda, ic, mc, p0, kcb)
					lda = kcb
				} else {
					ap = j.a[ic*lda+p0:]
				}
				for jr := 0; jr < nc; {
					col := jc + jr
					w := ar.panelWidth(col, j.n)
					cols := min(w, j.n-col)
					kset := ar.kernels[0]
					if w != ar.nr {
						kset = ar.kernels[1]
					}
					bpanel := &bp[jr*kcb]
					var bptr *float32
					if bias != nil {
						bptr = &bias[col]
					}
					mask := uint32(1)<<uint(cols) - 1
					if cols >= 32 {
						mask = ^uint32(0)
					}
					for ir := 0; ir < mc; ir += ar.mr {
						rows := min(ar.mr, mc-ir)
						kern := kset[rows-1]
						aptr := &ap[ir*lda]
						ci := (ic+ir)*j.ldc + col
						if cols == w || ar.masked {
							kern(kcb, aptr, lda, bpanel, &j.c[ci], j.ldc, alpha, beta, bptr, mask, flags)
							continue
						}
						// Ragged right edge on an unmasked kernel.
						kern(kcb, aptr, lda, bpanel, &tmp[0], w, 1, 0, nil, 0, 0)
						for r := 0; r < rows; r++ {
							crow := j.c[ci+r*j.ldc : ci+r*j.ldc+cols]
							trow := tmp[r*w : r*w+cols]
							for x := range crow {
								v := alpha * trow[x]
								if bias != nil {
									v += bias[col+x]
								}
								if flags&flagLoadC != 0 {
									v += beta * crow[x]
								}
								crow[x] = v
							}
						}
					}
					jr += w
				}
			}
		}
	}
}

// packB packs rows [p0,p0+kc) × columns [j0,j0+nc) of op(B) (n columns in
// all) into consecutive panels: panel of width w holds kc rows of w floats,
// zero-padded past column n.
func packB(ar *sgemmArch, dst []float32, transB bool, b []float32, ldb, n, p0, kc, j0, nc int) {
	off := 0
	for jr := 0; jr < nc; {
		col := j0 + jr
		w := ar.panelWidth(col, n)
		cols := min(w, n-col)
		panel := dst[off : off+kc*w]
		if !transB {
			for p := 0; p < kc; p++ {
				src := b[(p0+p)*ldb+col:]
				d := panel[p*w : p*w+w]
				copy(d, src[:cols])
				clear(d[cols:])
			}
		} else {
			packBT(ar, panel, b, ldb, p0, kc, col, cols, w)
		}
		off += kc * w
		jr += w
	}
}

// packBT transposes columns [col,col+cols) of op(B) = bᵀ, i.e. rows of b,
// into a w-wide panel. Four source rows are handled together so each group
// of destination stores is contiguous.
func packBT(ar *sgemmArch, panel, b []float32, ldb, p0, kc, col, cols, w int) {
	jj := 0
	if k8 := kc / 8; k8 > 0 {
		for ; jj+8 <= cols; jj += 8 {
			src := b[(col+jj)*ldb+p0:]
			if !transposeBlocks(ar, panel[jj:], w, src, ldb, k8) {
				break
			}
			for p := 8 * k8; p < kc; p++ {
				for r := 0; r < 8; r++ {
					panel[p*w+jj+r] = src[r*ldb+p]
				}
			}
		}
	}
	for ; jj+4 <= cols; jj += 4 {
		s0 := b[(col+jj)*ldb+p0:][:kc]
		s1 := b[(col+jj+1)*ldb+p0:][:kc]
		s2 := b[(col+jj+2)*ldb+p0:][:kc]
		s3 := b[(col+jj+3)*ldb+p0:][:kc]
		for p := range s0 {
			d := panel[p*w+jj:][:4]
			d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
		}
	}
	for ; jj < cols; jj++ {
		s := b[(col+jj)*ldb+p0:][:kc]
		for p, v := range s {
			panel[p*w+jj] = v
		}
	}
	if cols < w {
		for p := 0; p < kc; p++ {
			clear(panel[p*w+cols : p*w+w])
		}
	}
}

// packAT writes rows [i0,i0+mc) × k-range [p0,p0+kc) of op(A) = aᵀ as a
// row-major mc×kc block (the transA case, e.g. weight gradients Xᵀ·dY).
// Whole 8×8 blocks go through the AVX transpose where allowed.
func packAT(ar *sgemmArch, dst, a []float32, lda, i0, mc, p0, kc int) {
	p := 0
	if m8 := mc / 8; m8 > 0 {
		for ; p+8 <= kc; p += 8 {
			if !transposeBlocks(ar, dst[p:], kc, a[(p0+p)*lda+i0:], lda, m8) {
				break
			}
			for i := 8 * m8; i < mc; i++ {
				for r := 0; r < 8; r++ {
					dst[i*kc+p+r] = a[(p0+p+r)*lda+i0+i]
				}
			}
		}
	}
	for ; p < kc; p++ {
		src := a[(p0+p)*lda+i0:][:mc]
		for i, v := range src {
			dst[i*kc+p] = v
		}
	}
}

// checkMatrix panics unless s can hold a rows×cols row-major matrix with
// leading dimension ld.
func checkMatrix[T any](name string, rows, cols int, s []T, ld int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("kernels: ld%s = %d < %d", name, ld, cols))
	}
	if rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("kernels: len(%s) = %d too short for %d×%d with stride %d", name, len(s), rows, cols, ld))
	}
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// where op(X) is X or Xᵀ as selected by transA/transB, op(A) is m×k, op(B)
// is k×n and C is m×n. lda, ldb and ldc are the row strides of the stored
// matrices (A is stored k×m when transA). When beta == 0, C is not read,
// so NaNs or garbage in C do not propagate. When alpha == 0 or k == 0, A and
// B are not read.
//
// Results are bitwise identical for every Threads setting: each element is
// produced by one goroutine summing k in a fixed order.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(active.Load().s, Threads(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func sgemm(ar *sgemmArch, nthreads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic("kernels: negative dimension")
	}
	if m == 0 || n == 0 {
		return
	}
	checkMatrix("c", m, n, c, ldc)
	if alpha == 0 || k == 0 {
		scaleC(m, n, beta, c, ldc, nil)
		return
	}
	if transA {
		checkMatrix("a", k, m, a, lda)
	} else {
		checkMatrix("a", m, k, a, lda)
	}
	if transB {
		checkMatrix("b", n, k, b, ldb)
	} else {
		checkMatrix("b", k, n, b, ldb)
	}
	j := &sgemmJob{ar: ar, transA: transA, a: a, lda: lda, transB: transB, b: b, ldb: ldb,
		m: m, n: n, k: k, kc: kBlock(k), alpha: alpha, beta: beta, c: c, ldc: ldc}
	j.parallel(nthreads)
}

// scaleC sets C = beta·C + bias (bias may be nil); beta == 0 overwrites.
func scaleC(m, n int, beta float32, c []float32, ldc int, bias []float32) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for x := range row {
			v := float32(0)
			if beta != 0 {
				v = beta * row[x]
			}
			if bias != nil {
				v += bias[x]
			}
			row[x] = v
		}
	}
}

// parallel splits C into a tm×tn grid of tile-aligned rectangles, one per
// goroutine, choosing the grid that minimises the largest rectangle. Only
// the partition depends on the thread count, never the arithmetic.
func (j *sgemmJob) parallel(nthreads int) {
	ar := j.ar
	mt := (j.m + ar.mr - 1) / ar.mr
	nt := (j.n + ar.nr - 1) / ar.nr
	t := min(nthreads, max(1, j.m*j.n*j.k/parMinWork))
	tm, tn := grid(t, j.m, mt, ar.mr, j.n, nt, ar.nr)
	parallelFor(tm*tn, func(t int) {
		lo, hi := splitRange(mt, tm, t/tn)
		i0, i1 := lo*ar.mr, min(hi*ar.mr, j.m)
		lo, hi = splitRange(nt, tn, t%tn)
		j0, j1 := lo*ar.nr, min(hi*ar.nr, j.n)
		j.run(i0, i1, j0, j1)
	})
}

// grid picks tm×tn ≤ t splitting mt row tiles and nt column tiles. The
// cost of a split is the area of its largest rectangle; ties prefer fewer
// goroutines, then splitting columns (each goroutine then packs only its own
// share of B, and A is read in place by all).
func grid(t, m, mt, mr, n, nt, nr int) (int, int) {
	bestM, bestN, bestCost := 1, 1, -1
	for tm := 1; tm <= min(t, mt); tm++ {
		for tn := 1; tm*tn <= t && tn <= nt; tn++ {
			_, hi := splitRange(mt, tm, 0)
			rows := min(hi*mr, m)
			_, hi = splitRange(nt, tn, 0)
			cols := min(hi*nr, n)
			cost := rows * cols
			if bestCost < 0 || cost < bestCost || (cost == bestCost && tm*tn < bestM*bestN) ||
				(cost == bestCost && tm*tn == bestM*bestN && tn > bestN) {
				bestM, bestN, bestCost = tm, tn, cost
			}
		}
	}
	return bestM, bestN
}
