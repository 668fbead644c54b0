// Copyright 2026 The pqvc Authors.

package kernels

import (
	"encoding/binary"
	"unsafe"
)

// igemmKernelFn is the signature shared by every int8 micro-kernel. For a
// rows×W tile (fixed by the function chosen) it computes
//
//	c[i*ldc+j] = Σ_g Σ_q A[i][g][q]·B[g][j][q] + colCorr[j] + rowCorr[i]
//
// where A rows start every lda bytes and hold kg groups (4 unsigned bytes,
// or 2 int16 for "wide" kernels), B is a packed panel of kg groups × W
// columns, colCorr has W readable entries and rowCorr (nil: none) rows.
// Masked kernels store only the columns set in mask. Byte-layout kernels
// XOR each 4-byte A group with flip first (0x80808080 biases int8 A to
// uint8 on the fly); wide kernels ignore flip.
type igemmKernelFn func(kg int, a unsafe.Pointer, lda int, b unsafe.Pointer, c *int32, ldc int, rowCorr, colCorr *int32, mask uint32, flip uint32)

// igemmArch describes one int8 micro-kernel family.
type igemmArch struct {
	name           string
	mr, nr, nrHalf int
	// wide kernels take operands widened to int16 in groups of 2 k-steps
	// (VPMADDWD); the others take bytes in groups of 4 (VPDPBUSD layout).
	wide    bool
	kernels [2][]igemmKernelFn
	masked  bool
	asmPack bool // B may be packed by the VNNI assembly packer
}

func (ar *igemmArch) group() int {
	if ar.wide {
		return 2
	}
	return 4
}

func (ar *igemmArch) elem() int {
	if ar.wide {
		return 2
	}
	return 1
}

// kpad rounds k up to a whole number of groups.
func (ar *igemmArch) kpad(k int) int { g := ar.group(); return (k + g - 1) / g * g }

// Int8 blocking: packed A rows are swept against the full depth of B, since
// even k = 3072 makes only a 96 KiB B panel; no k-blocking is needed.
const (
	imcBlock    = 192
	iparMinWork = 4 * parMinWork
)

// igemmJob is one int8 product. A is viewed as bytes; when flip is set it
// holds int8 values that are biased to uint8 (x ^ 0x80 = x + 128) in the
// kernel or while packing, since VPDPBUSD needs one unsigned operand. Then
//
//	Σ (a-za)(b-zb) = Σ a'b - za'·Σ_k b - zb·Σ_k a' + k·za'·zb,  a' = a+128, za' = za+128,
//
// and the two sums become the per-column and per-row corrections.
type igemmJob struct {
	ar      *igemmArch
	m, n, k int
	a       []byte
	lda     int
	flip    bool
	zA, zB  int32
	b       []int8
	transB  bool
	ldb     int
	pb      *PackedBS8
	c       []int32
	ldc     int
}

func (j *igemmJob) run(i0, i1, j0, j1 int) {
	ar := j.ar
	ws := wsPool.Get().(*workspace)
	defer wsPool.Put(ws)
	kpad := ar.kpad(j.k)
	kg := kpad / ar.group()
	el := ar.elem()
	wloc := paddedWidth(ar.nr, ar.nrHalf, j.n) - j0
	if j1 < j.n {
		wloc = j1 - j0
	}
	// int32 scratch: colCorr[wloc] | rowCorr[imcBlock] | tmp[mr*nr]
	if cap(ws.i32) < wloc+imcBlock+ar.mr*ar.nr {
		ws.i32 = make([]int32, wloc+imcBlock+ar.mr*ar.nr)
	}
	colCorr := ws.i32[:wloc]
	rowCorr := ws.i32[wloc : wloc+imcBlock]
	tmp := ws.i32[wloc+imcBlock : wloc+imcBlock+ar.mr*ar.nr]

	var bp []byte
	if j.pb != nil {
		bp = j.pb.data[j0*kpad*el:]
		for x := range colCorr {
			colCorr[x] = -j.zA * j.pb.colsum[j0+x]
		}
	} else {
		bp = alignedBytes(&ws.i8b, kpad*wloc*el)
		packB8(ar, bp, j.transB, j.b, j.ldb, j.k, j.n, j0, j1-j0, colCorr)
		for x := range colCorr {
			colCorr[x] *= -j.zA
		}
	}
	needRows := j.zB != 0
	// Byte-layout kernels read A in place unless K needs zero padding to
	// whole groups; they flip int8 A themselves.
	direct := !ar.wide && j.k == kpad
	var flip uint32
	var flipByte byte
	if j.flip {
		flipByte = 0x80
		if !ar.wide {
			flip = 0x80808080
		}
	}
	for ic := i0; ic < i1; ic += imcBlock {
		mc := min(imcBlock, i1-ic)
		var ap []byte
		lda := j.lda
		var rs []int32
		if needRows {
			rs = rowCorr[:mc]
		}
		if direct {
			ap = j.a[ic*lda:]
			for r := range rs {
				rs[r] = sumBytes(j.a[(ic+r)*lda:][:j.k], flipByte)
			}
		} else {
			ap = alignedBytes(&ws.i8a, mc*kpad*el)
			packA8(ar, ap, j.a, j.lda, ic, mc, j.k, kpad, flipByte, rs)
			lda = kpad * el
		}
		for r := range rs {
			rs[r] = -j.zB*rs[r] + int32(j.k)*j.zA*j.zB
		}
		for col := j0; col < j1; {
			w := panelWidth(ar.nr, ar.nrHalf, col, j.n)
			cols := min(w, j.n-col)
			kset := ar.kernels[0]
			if w != ar.nr {
				kset = ar.kernels[1]
			}
			bpanel := unsafe.Pointer(&bp[(col-j0)*kpad*el])
			cc := &colCorr[col-j0]
			mask := uint32(1)<<uint(cols) - 1
			if cols >= 32 {
				mask = ^uint32(0)
			}
			for ir := 0; ir < mc; ir += ar.mr {
				rows := min(ar.mr, mc-ir)
				kern := kset[rows-1]
				aptr := unsafe.Pointer(&ap[ir*lda])
				var rc *int32
				if needRows {
					rc = &rowCorr[ir]
				}
				ci := (ic+ir)*j.ldc + col
				if cols == w || ar.masked {
					kern(kg, aptr, lda, bpanel, &j.c[ci], j.ldc, rc, cc, mask, flip)
					continue
				}
				kern(kg, aptr, lda, bpanel, &tmp[0], w, rc, cc, mask, flip)
				for r := 0; r < rows; r++ {
					copy(j.c[ci+r*j.ldc:ci+r*j.ldc+cols], tmp[r*w:r*w+cols])
				}
			}
			col += w
		}
	}
}

// alignedBytes is alignedFloats for byte buffers.
func alignedBytes(buf *[]byte, n int) []byte {
	const pad = 64
	if cap(*buf) < n+pad {
		*buf = make([]byte, n+pad+n/4)
	}
	s := (*buf)[:cap(*buf)]
	off := int(uintptr(unsafe.Pointer(&s[0])) & 63)
	if off != 0 {
		off = pad - off
	}
	return s[off : off+n]
}

// packB8 packs columns [j0,j0+nc) of op(B) (k×n int8) into kernel panels
// and writes each column's sum Σ_k b into colsum (relative to j0, padding
// included as zero).
func packB8(ar *igemmArch, dst []byte, transB bool, b []int8, ldb, k, n, j0, nc int, colsum []int32) {
	g := ar.group()
	kpad := ar.kpad(k)
	clear(colsum)
	el := ar.elem()
	for jr := 0; jr < nc; {
		col := j0 + jr
		w := panelWidth(ar.nr, ar.nrHalf, col, n)
		cols := min(w, n-col)
		panel := dst[jr*kpad*el : (jr+w)*kpad*el]
		clear(panel)
		sums := colsum[jr : jr+cols]
		switch {
		case transB:
			// Each column of op(B) is a contiguous row of b.
			for x := range sums {
				src := b[(col+x)*ldb:][:k]
				var sum int32
				for p, v := range src {
					sum += int32(v)
					i := ((p/g)*w+x)*g + p%g
					if ar.wide {
						panel[2*i], panel[2*i+1] = byte(v), byte(v>>7)
					} else {
						panel[i] = byte(v)
					}
				}
				sums[x] = sum
			}
		case ar.wide:
			// Groups of 2 rows interleaved as int16 pairs.
			for p := 0; p < k; p += 2 {
				s0 := b[p*ldb+col:][:cols]
				s1 := zeroRow[:cols]
				if p+1 < k {
					s1 = b[(p+1)*ldb+col:][:cols]
				}
				d := panel[(p/2)*w*4:][:cols*4]
				for x, v0 := range s0 {
					v1 := s1[x]
					q := d[4*x : 4*x+4 : 4*x+4]
					q[0], q[1], q[2], q[3] = byte(v0), byte(v0>>7), byte(v1), byte(v1>>7)
					sums[x] += int32(v0) + int32(v1)
				}
			}
		default:
			// Groups of 4 rows interleaved bytewise; whole groups of
			// 16 columns in assembly where available.
			done := packB8Fast(ar, panel, w, b[col:], ldb, k, cols, sums)
			for p := 0; p < k; p += 4 {
				x0 := done
				if p+4 > k {
					x0 = 0
				}
				var r [4][]int8
				for q := range r {
					r[q] = zeroRow[:cols]
					if p+q < k {
						r[q] = b[(p+q)*ldb+col:][:cols]
					}
				}
				s0, s1, s2, s3 := r[0], r[1][:len(r[0])], r[2][:len(r[0])], r[3][:len(r[0])]
				d := panel[(p/4)*w*4:][:cols*4]
				for x := x0; x < len(s0); x++ {
					v0, v1, v2, v3 := s0[x], s1[x], s2[x], s3[x]
					q := d[4*x : 4*x+4 : 4*x+4]
					q[0], q[1], q[2], q[3] = byte(v0), byte(v1), byte(v2), byte(v3)
					sums[x] += int32(v0) + int32(v1) + int32(v2) + int32(v3)
				}
			}
		}
		jr += w
	}
}

// zeroRow stands in for the rows past k in the last, partial k-group.
var zeroRow = make([]int8, 4096)

// packA8 copies rows [i0,i0+mc) of A into rows of kpad elements, zero-
// padded past k: bytes as they are (byte-layout kernels flip signed A
// themselves), or int16 for wide kernels, XORed with flip (0x80 biases int8
// to uint8) before widening. When rowsum is non-nil it receives, per row,
// Σ_k (a XOR flip) as unsigned bytes.
func packA8(ar *igemmArch, dst []byte, a []byte, lda, i0, mc, k, kpad int, flip byte, rowsum []int32) {
	for r := 0; r < mc; r++ {
		src := a[(i0+r)*lda:][:k]
		if rowsum != nil {
			rowsum[r] = sumBytes(src, flip)
		}
		if !ar.wide {
			d := dst[r*kpad : r*kpad+kpad]
			copy(d, src)
			clear(d[k:])
			continue
		}
		d := dst[r*kpad*2 : (r+1)*kpad*2]
		for p, v := range src {
			d[2*p], d[2*p+1] = v^flip, 0
		}
		clear(d[2*k:])
	}
}

// sumBytes returns Σ (d[i] XOR x) over unsigned bytes, eight at a time:
// each 64-bit word is folded into four 16-bit lane sums, flushed before
// they can overflow (128 words × 510 < 65536).
func sumBytes(d []byte, x byte) int32 {
	const lo = 0x00FF00FF00FF00FF
	x8 := uint64(x) * 0x0101010101010101
	var total uint64
	for len(d) >= 8 {
		var acc uint64
		n := min(len(d)/8, 128)
		for i := 0; i < n; i++ {
			w := binary.LittleEndian.Uint64(d[8*i:]) ^ x8
			acc += w&lo + (w>>8)&lo
		}
		d = d[8*n:]
		acc = acc&0x0000FFFF0000FFFF + (acc>>16)&0x0000FFFF0000FFFF
		total += acc&0xFFFFFFFF + acc>>32
	}
	for _, v := range d {
		total += uint64(v ^ x)
	}
	return int32(total)
}

// GemmU8S8 computes the exact integer product C = (A − aZero)·B, where A is
// an m×k uint8 matrix (row stride lda), aZero its zero point, B a k×n int8
// matrix (row stride ldb) and C an m×n int32 matrix (row stride ldc), which
// is overwritten. The result is exact whenever it fits in int32 (always for
// k ≤ 65793). B is packed on every call; for a constant B use PackBS8 and
// GemmU8S8Packed.
func GemmU8S8(m, n, k int, a []uint8, lda int, aZero uint8, b []int8, ldb int, c []int32, ldc int) {
	checkMatrix("b", k, n, b, ldb)
	igemm(&igemmJob{m: m, n: n, k: k, a: a, lda: lda, zA: int32(aZero), b: b, ldb: ldb, c: c, ldc: ldc})
}

// GemmS8S8 computes the exact integer product C = (A − aZero)·(B − bZero)
// for int8 A (m×k, stride lda) and int8 B (k×n, stride ldb) with zero points,
// into int32 C (m×n, stride ldc), which is overwritten. Exact whenever the
// result fits in int32.
func GemmS8S8(m, n, k int, a []int8, lda int, aZero int8, b []int8, ldb int, bZero int8, c []int32, ldc int) {
	checkMatrix("b", k, n, b, ldb)
	igemm(&igemmJob{m: m, n: n, k: k, a: int8Bytes(a), lda: lda, flip: true, zA: int32(aZero) + 128,
		zB: int32(bZero), b: b, ldb: ldb, c: c, ldc: ldc})
}

func int8Bytes(s []int8) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// PackedBS8 is a k×n int8 matrix prepacked for the int8 kernels of the
// path active when it was packed, with its column sums (used to apply the
// A zero point). Safe for concurrent use.
type PackedBS8 struct {
	ar     *igemmArch
	k, n   int
	kpad   int
	wp     int
	data   []byte  // panels: column j's panel at byte j*kpad*elem
	colsum []int32 // Σ_k b per column, zero past n
}

// K returns the inner (row) dimension of the packed matrix.
func (pb *PackedBS8) K() int { return pb.k }

// N returns the column dimension of the packed matrix.
func (pb *PackedBS8) N() int { return pb.n }

// PackBS8 packs op(B), a k×n int8 matrix (stored n×k when transB, k×n
// otherwise, with row stride ldb), for GemmU8S8Packed and GemmS8S8Packed.
func PackBS8(transB bool, k, n int, b []int8, ldb int) *PackedBS8 {
	if k < 0 || n < 0 {
		panic("kernels: negative dimension")
	}
	if transB {
		checkMatrix("b", n, k, b, ldb)
	} else {
		checkMatrix("b", k, n, b, ldb)
	}
	ar := active.Load().i
	pb := &PackedBS8{ar: ar, k: k, n: n, kpad: ar.kpad(k), wp: paddedWidth(ar.nr, ar.nrHalf, n)}
	var buf []byte
	pb.data = alignedBytes(&buf, pb.kpad*pb.wp*ar.elem())
	pb.colsum = make([]int32, pb.wp)
	if n > 0 {
		packB8(ar, pb.data, transB, b, ldb, k, n, 0, n, pb.colsum)
	}
	return pb
}

// GemmU8S8Packed is GemmU8S8 with a prepacked B.
func GemmU8S8Packed(m int, a []uint8, lda int, aZero uint8, pb *PackedBS8, c []int32, ldc int) {
	igemm(&igemmJob{ar: pb.ar, m: m, n: pb.n, k: pb.k, a: a, lda: lda, zA: int32(aZero), pb: pb, c: c, ldc: ldc})
}

// GemmS8S8Packed is GemmS8S8 with a prepacked B (bZero is B's zero point).
func GemmS8S8Packed(m int, a []int8, lda int, aZero int8, pb *PackedBS8, bZero int8, c []int32, ldc int) {
	igemm(&igemmJob{ar: pb.ar, m: m, n: pb.n, k: pb.k, a: int8Bytes(a), lda: lda, flip: true,
		zA: int32(aZero) + 128, zB: int32(bZero), pb: pb, c: c, ldc: ldc})
}

func igemm(j *igemmJob) {
	if j.m < 0 || j.n < 0 || j.k < 0 {
		panic("kernels: negative dimension")
	}
	if j.m == 0 || j.n == 0 {
		return
	}
	checkMatrix("c", j.m, j.n, j.c, j.ldc)
	if j.k == 0 {
		for i := 0; i < j.m; i++ {
			clear(j.c[i*j.ldc : i*j.ldc+j.n])
		}
		return
	}
	checkMatrix("a", j.m, j.k, j.a, j.lda)
	if j.ar == nil {
		j.ar = active.Load().i
	}
	ar := j.ar
	mt := (j.m + ar.mr - 1) / ar.mr
	nt := (j.n + ar.nr - 1) / ar.nr
	t := min(Threads(), max(1, j.m*j.n*j.k/iparMinWork))
	tm, tn := grid(t, j.m, mt, ar.mr, j.n, nt, ar.nr)
	parallelFor(tm*tn, func(t int) {
		lo, hi := splitRange(mt, tm, t/tn)
		i0, i1 := lo*ar.mr, min(hi*ar.mr, j.m)
		lo, hi = splitRange(nt, tn, t%tn)
		j0, j1 := lo*ar.nr, min(hi*ar.nr, j.n)
		j.run(i0, i1, j0, j1)
	})
}
