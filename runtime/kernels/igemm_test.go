// Copyright 2026 The pqvc Authors.

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// refIgemm is the exact int64 reference Σ (a−za)(b−zb).
func refIgemm(m, n, k int, a func(i, p int) int64, za int64, b func(p, j int) int64, zb int64) []int64 {
	ref := make([]int64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s int64
			for p := 0; p < k; p++ {
				s += (a(i, p) - za) * (b(p, j) - zb)
			}
			ref[i*n+j] = s
		}
	}
	return ref
}

// int8 fillers: random, or extreme values only (the saturation cases of
// VPMADDUBSW-style kernels).
func fillU8(r *rand.Rand, s []uint8, extreme bool) {
	for i := range s {
		if extreme {
			s[i] = []uint8{0, 255, 255, 254}[r.IntN(4)]
		} else {
			s[i] = uint8(r.IntN(256))
		}
	}
}

func fillS8(r *rand.Rand, s []int8, extreme bool) {
	for i := range s {
		if extreme {
			s[i] = []int8{-128, 127, -128, 127, -127}[r.IntN(5)]
		} else {
			s[i] = int8(r.IntN(256) - 128)
		}
	}
}

const i32Sentinel = int32(-0x5a5a5a5a)

func checkI32(t *testing.T, what string, m, n int, c []int32, ldc int, ref []int64) {
	t.Helper()
	for i := 0; i < m; i++ {
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if j >= n {
				if got != i32Sentinel && i < m-1 {
					t.Fatalf("%s: gap [%d,%d] written", what, i, j)
				}
				continue
			}
			if want := int32(ref[i*n+j]); got != want {
				t.Fatalf("%s: C[%d,%d] = %d, want %d", what, i, j, got, want)
			}
		}
	}
}

func newC32(m, ldc int) []int32 {
	c := make([]int32, max(0, (m-1)*ldc)+ldc)
	for i := range c {
		c[i] = i32Sentinel
	}
	return c
}

var i8Sizes = []int{1, 2, 3, 4, 5, 7, 8, 12, 13, 16, 17, 31, 32, 33, 63, 64, 65, 197}

func testIgemmCase(t *testing.T, r *rand.Rand, m, n, k int, extreme bool) {
	t.Helper()
	padA, padB, padC := r.IntN(3)*3, r.IntN(3)*5, r.IntN(2)*7
	lda, ldb, ldc := k+padA, n+padB, n+padC
	au := make([]uint8, max(0, (m-1)*lda+k))
	as := make([]int8, len(au))
	b := make([]int8, max(0, (k-1)*ldb+n))
	bt := make([]int8, max(0, (n-1)*(k+1)+k)) // transposed copy, ld k+1
	fillU8(r, au, extreme)
	fillS8(r, as, extreme)
	fillS8(r, b, extreme)
	for p := 0; p < k; p++ {
		for j := 0; j < n; j++ {
			bt[j*(k+1)+p] = b[p*ldb+j]
		}
	}
	zu := []uint8{0, 255, 128, uint8(r.IntN(256))}[r.IntN(4)]
	zs := []int8{0, -128, 127, int8(r.IntN(256) - 128)}[r.IntN(4)]
	zb := []int8{0, -128, 127, int8(r.IntN(256) - 128)}[r.IntN(4)]
	bf := func(p, j int) int64 { return int64(b[p*ldb+j]) }
	name := fmt.Sprintf("m=%d n=%d k=%d extreme=%v za=%d/%d zb=%d", m, n, k, extreme, zu, zs, zb)

	ref := refIgemm(m, n, k, func(i, p int) int64 { return int64(au[i*lda+p]) }, int64(zu), bf, 0)
	c := newC32(m, ldc)
	GemmU8S8(m, n, k, au, lda, zu, b, ldb, c, ldc)
	checkI32(t, "GemmU8S8 "+name, m, n, c, ldc, ref)

	pb := PackBS8(false, k, n, b, ldb)
	c = newC32(m, ldc)
	GemmU8S8Packed(m, au, lda, zu, pb, c, ldc)
	checkI32(t, "GemmU8S8Packed "+name, m, n, c, ldc, ref)

	pbt := PackBS8(true, k, n, bt, k+1)
	c = newC32(m, ldc)
	GemmU8S8Packed(m, au, lda, zu, pbt, c, ldc)
	checkI32(t, "GemmU8S8Packed(transB) "+name, m, n, c, ldc, ref)

	ref = refIgemm(m, n, k, func(i, p int) int64 { return int64(as[i*lda+p]) }, int64(zs), bf, int64(zb))
	c = newC32(m, ldc)
	GemmS8S8(m, n, k, as, lda, zs, b, ldb, zb, c, ldc)
	checkI32(t, "GemmS8S8 "+name, m, n, c, ldc, ref)

	c = newC32(m, ldc)
	GemmS8S8Packed(m, as, lda, zs, pb, zb, c, ldc)
	checkI32(t, "GemmS8S8Packed "+name, m, n, c, ldc, ref)
}

func TestIgemmExact(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, s := range i8Sizes {
			for _, o := range []int{1, 6, 40} {
				testIgemmCase(t, r, s, o, 11, false)
				testIgemmCase(t, r, o, s, 9, true)
				testIgemmCase(t, r, o, 13, s, r.IntN(2) == 0)
			}
		}
		n := 120
		if testing.Short() {
			n = 30
		}
		for it := 0; it < n; it++ {
			pick := func() int { return i8Sizes[r.IntN(len(i8Sizes))] }
			testIgemmCase(t, r, pick(), pick(), pick(), it%3 == 0)
		}
	})
}

func TestIgemmLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large shapes")
	}
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		for _, s := range [][3]int{{197, 576, 192}, {197, 192, 768}, {60, 70, 3001}, {577, 33, 65}, {3, 900, 2}} {
			for _, th := range []int{1, 2, 3} {
				withThreads(th, func() { testIgemmCase(t, r, s[0], s[1], s[2], th == 2) })
			}
		}
	})
}

// TestIgemmExtremeK drives the accumulators to their largest magnitudes:
// every product is 255·(−128) (or (−128)·(−128) and 255·255 with zero
// points for s8s8), over a long k.
func TestIgemmExtremeK(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		// k%4 == 0 reads A in place; k%4 != 0 packs it.
		for _, k := range []int{16000, 16001} {
			m, n := 13, 35
			a := make([]uint8, m*k)
			b := make([]int8, k*n)
			for i := range a {
				a[i] = 255
			}
			for i := range b {
				b[i] = -128
			}
			c := make([]int32, m*n)
			GemmU8S8(m, n, k, a, k, 0, b, n, c, n)
			for i, v := range c {
				if v != int32(-255*128*k) {
					t.Fatalf("u8s8 c[%d] = %d, want %d", i, v, -255*128*k)
				}
			}
			as := make([]int8, m*k)
			for i := range as {
				as[i] = -128
			}
			GemmS8S8(m, n, k, as, k, 0, b, n, 0, c, n)
			for i, v := range c {
				if v != int32(128*128*k) {
					t.Fatalf("s8s8 c[%d] = %d, want %d", i, v, 128*128*k)
				}
			}
			GemmS8S8(m, n, k, as, k, 127, b, n, 127, c, n)
			for i, v := range c {
				if v != int32(255*255*k) {
					t.Fatalf("s8s8 zero points c[%d] = %d, want %d", i, v, 255*255*k)
				}
			}
		}
	})
}
