// Copyright 2026 The pqvc Authors.

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// forEachPath runs f once per kernel path this CPU supports, with that path
// active, restoring the original path afterwards.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	orig := KernelPath()
	defer setPath(orig)
	for _, p := range AvailablePaths() {
		t.Run(p, func(t *testing.T) {
			if got := setPath(p); got != p {
				t.Fatalf("setPath(%q) selected %q", p, got)
			}
			f(t)
		})
	}
}

func withThreads(n int, f func()) {
	old := Threads()
	SetThreads(n)
	defer SetThreads(old)
	f()
}

func randMat(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// refSgemm is the float64 reference; it also returns, per element, the
// magnitude scale Σ|alpha·a·b| + |beta·c| used to bound rounding error.
func refSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (ref, scale []float64) {
	ref = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = float64(a[p*lda+i])
				} else {
					av = float64(a[i*lda+p])
				}
				if transB {
					bv = float64(b[j*ldb+p])
				} else {
					bv = float64(b[p*ldb+j])
				}
				s += av * bv
				sa += math.Abs(av * bv)
			}
			v := float64(alpha) * s
			sc := math.Abs(float64(alpha)) * sa
			if beta != 0 {
				cv := float64(c[i*ldc+j])
				v += float64(beta) * cv
				sc += math.Abs(float64(beta) * cv)
			}
			ref[i*n+j] = v
			scale[i*n+j] = sc
		}
	}
	return ref, scale
}

const sentinel = float32(-12345.5)

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int
	padC           int
}

func (g gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d alpha=%g beta=%g pads=%d,%d,%d",
		g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.beta, g.padA, g.padB, g.padC)
}

// runCase checks one Sgemm against the reference, including that the gaps
// between rows of C (ldc > n) are untouched and that beta == 0 ignores NaN.
func runCase(t *testing.T, r *rand.Rand, g gemmCase) {
	t.Helper()
	ra, ca := g.m, g.k
	if g.transA {
		ra, ca = g.k, g.m
	}
	rb, cb := g.k, g.n
	if g.transB {
		rb, cb = g.n, g.k
	}
	lda, ldb, ldc := ca+g.padA, cb+g.padB, g.n+g.padC
	a := randMat(r, max(0, (ra-1)*lda+ca))
	b := randMat(r, max(0, (rb-1)*ldb+cb))
	c := make([]float32, g.m*ldc)
	for i := range c {
		if i%ldc >= g.n {
			c[i] = sentinel
		} else if g.beta == 0 {
			c[i] = float32(math.NaN())
		} else {
			c[i] = float32(r.NormFloat64())
		}
	}
	ref, scale := refSgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, ldc)
	Sgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, ldc)
	tol := 2 * float64(g.k+4) * 0x1p-24
	for i := 0; i < g.m; i++ {
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if j >= g.n {
				if got != sentinel {
					t.Fatalf("%v: C gap [%d,%d] overwritten: %v", g, i, j, got)
				}
				continue
			}
			want := ref[i*g.n+j]
			if d := math.Abs(float64(got) - want); !(d <= tol*scale[i*g.n+j]+1e-30) {
				t.Fatalf("%v: C[%d,%d] = %v, want %v (err %g, bound %g)", g, i, j, got, want, d, tol*scale[i*g.n+j])
			}
		}
	}
}

var edgeSizes = []int{1, 2, 3, 5, 7, 8, 11, 12, 13, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 64, 65, 97, 197}

func TestSgemmShapes(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		// Every edge size in each dimension against a few partners.
		for _, s := range edgeSizes {
			for _, o := range []int{1, 13, 40} {
				for _, tr := range [][2]bool{{false, false}, {true, true}} {
					runCase(t, r, gemmCase{transA: tr[0], transB: tr[1], m: s, n: o, k: 19, alpha: 1, beta: 0})
					runCase(t, r, gemmCase{transA: tr[1], transB: tr[0], m: o, n: s, k: 23, alpha: 1, beta: 0.5})
					runCase(t, r, gemmCase{transA: tr[0], transB: !tr[1], m: o, n: 9, k: s, alpha: -1.5, beta: 1})
				}
			}
		}
		// Random shapes, strides and scalars.
		alphas := []float32{1, -1, 0.5, 2.25}
		betas := []float32{0, 1, -0.75, 2}
		n := 150
		if testing.Short() {
			n = 40
		}
		for it := 0; it < n; it++ {
			pick := func() int { return edgeSizes[r.IntN(len(edgeSizes))] }
			g := gemmCase{
				transA: r.IntN(2) == 0, transB: r.IntN(2) == 0,
				m: pick(), n: pick(), k: pick(),
				alpha: alphas[r.IntN(len(alphas))], beta: betas[r.IntN(len(betas))],
				padA: r.IntN(3) * 5, padB: r.IntN(3) * 3, padC: r.IntN(3) * 7,
			}
			runCase(t, r, g)
		}
	})
}

func TestSgemmLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large shapes")
	}
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		cases := []gemmCase{
			{m: 197, n: 576, k: 192, alpha: 1},
			{m: 197, n: 192, k: 768, alpha: 1, beta: 1},   // k split into blocks
			{m: 577, n: 65, k: 1100, alpha: 0.5, beta: 2}, // 3 k blocks
			{transB: true, m: 197, n: 197, k: 64, alpha: 0.125},
			{transA: true, m: 200, n: 801, k: 37, alpha: 1, beta: -1, padA: 3, padC: 5},
			{transA: true, transB: true, m: 150, n: 150, k: 600, alpha: 1, padB: 1},
			{transB: true, m: 577, n: 577, k: 64, alpha: 1, beta: 0.5, padB: 9, padC: 1},
		}
		if KernelPath() == "generic" {
			cases = cases[:4]
		}
		for _, g := range cases {
			withThreads(3, func() { runCase(t, r, g) })
		}
	})
}

func TestSgemmSpecialScalars(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		m, n, k := 5, 7, 3
		nan := float32(math.NaN())
		a := []float32{nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan}
		b := make([]float32, k*n)
		for i := range b {
			b[i] = nan
		}
		c := make([]float32, m*n)
		for i := range c {
			c[i] = float32(i)
		}
		// alpha == 0: A and B are not read; C = beta·C.
		Sgemm(false, false, m, n, k, 0, a, k, b, n, 2, c, n)
		for i, v := range c {
			if v != float32(2*i) {
				t.Fatalf("alpha=0: c[%d] = %v, want %v", i, v, 2*i)
			}
		}
		// alpha == 0, beta == 0 clears NaNs.
		c[3] = nan
		Sgemm(false, false, m, n, k, 0, a, k, b, n, 0, c, n)
		for i, v := range c {
			if v != 0 {
				t.Fatalf("alpha=beta=0: c[%d] = %v", i, v)
			}
		}
		// k == 0.
		c[0] = 4
		Sgemm(false, false, m, n, 0, 1, nil, 1, nil, n, 0.5, c, n)
		if c[0] != 2 {
			t.Fatalf("k=0: c[0] = %v", c[0])
		}
		// Degenerate sizes are no-ops.
		Sgemm(true, true, 0, 0, 0, 1, nil, 1, nil, 1, 0, nil, 1)
	})
}

func TestSgemmPanics(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	a := make([]float32, 12)
	mustPanic("short a", func() { Sgemm(false, false, 4, 4, 4, 1, a, 4, make([]float32, 16), 4, 0, make([]float32, 16), 4) })
	mustPanic("small lda", func() { Sgemm(false, false, 3, 4, 4, 1, a, 3, make([]float32, 16), 4, 0, make([]float32, 16), 4) })
	mustPanic("short c", func() { Sgemm(false, false, 3, 4, 4, 1, a, 4, make([]float32, 16), 4, 0, make([]float32, 11), 4) })
	mustPanic("short bias", func() {
		SgemmPacked(1, make([]float32, 4), 4, PackB(false, 4, 4, make([]float32, 16), 4), make([]float32, 4), 4, make([]float32, 3))
	})
}

// TestSgemmDeterministic checks bitwise-identical results across thread
// counts, for plain, packed and batched GEMMs.
func TestSgemmDeterministic(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		shapes := [][3]int{{197, 576, 192}, {197, 197, 64}, {33, 1000, 1030}, {601, 17, 70}, {5, 3000, 40}}
		if KernelPath() == "generic" {
			shapes = shapes[:2]
		}
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			a, b, bias := randMat(r, m*k), randMat(r, k*n), randMat(r, n)
			c0 := randMat(r, m*n)
			var want, wantP []float32
			pb := PackB(false, k, n, b, n)
			for _, th := range []int{1, 2, 3, 4, 7} {
				c := append([]float32(nil), c0...)
				cp := make([]float32, m*n)
				withThreads(th, func() {
					Sgemm(false, false, m, n, k, 0.75, a, k, b, n, 1.5, c, n)
					SgemmPacked(m, a, k, pb, cp, n, bias)
				})
				if want == nil {
					want, wantP = c, cp
					continue
				}
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v threads=%d: Sgemm differs at %d: %v vs %v", s, th, i, c[i], want[i])
					}
					if math.Float32bits(cp[i]) != math.Float32bits(wantP[i]) {
						t.Fatalf("%v threads=%d: SgemmPacked differs at %d", s, th, i)
					}
				}
			}
		}
	})
}

func TestSgemmBatchedDeterministic(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		const tokens, heads, dh = 97, 5, 24
		q, kk := randMat(r, tokens*heads*dh), randMat(r, tokens*heads*dh)
		var want []float32
		for _, th := range []int{1, 2, 3, 5, 8} {
			s := make([]float32, heads*tokens*tokens)
			withThreads(th, func() {
				SgemmStridedBatched(false, true, tokens, tokens, dh, 0.3, q, heads*dh, dh, kk, heads*dh, dh, 0, s, tokens, tokens*tokens, heads)
			})
			if want == nil {
				want = s
				continue
			}
			for i := range s {
				if math.Float32bits(s[i]) != math.Float32bits(want[i]) {
					t.Fatalf("threads=%d: differs at %d", th, i)
				}
			}
		}
	})
}

func TestSgemmPacked(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, s := range [][4]int{{1, 1, 1, 0}, {7, 17, 63, 1}, {197, 576, 192, 0}, {197, 192, 768, 1}, {13, 33, 1030, 1}, {64, 197, 5, 0}, {3, 16, 8, 1}} {
			m, n, k := s[0], s[1], s[2]
			if KernelPath() == "generic" && m*n*k > 1e6 {
				continue
			}
			transB := s[3] == 1
			lda, ldc := k+3, n+2
			a := randMat(r, (m-1)*lda+k)
			var b []float32
			ldb := n
			if transB {
				ldb = k + 1
				b = randMat(r, (n-1)*ldb+k)
			} else {
				b = randMat(r, k*n)
			}
			bias := randMat(r, n)
			pb := PackB(transB, k, n, b, ldb)
			if pb.K() != k || pb.N() != n {
				t.Fatal("PackedB dims")
			}
			c := make([]float32, m*ldc)
			for i := range c {
				c[i] = float32(math.NaN())
			}
			SgemmPacked(m, a, lda, pb, c, ldc, bias)
			ref, scale := refSgemm(false, transB, m, n, k, 1, a, lda, b, ldb, 0, nil, 0)
			tol := 2 * float64(k+4) * 0x1p-24
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					want := ref[i*n+j] + float64(bias[j])
					got := c[i*ldc+j]
					if d := math.Abs(float64(got) - want); !(d <= tol*(scale[i*n+j]+math.Abs(float64(bias[j])))) {
						t.Fatalf("%v: C[%d,%d] = %v want %v", s, i, j, got, want)
					}
				}
				for j := n; j < ldc && i < m-1; j++ {
					if !math.IsNaN(float64(c[i*ldc+j])) {
						t.Fatalf("%v: gap written", s)
					}
				}
			}
			// nil bias
			SgemmPacked(m, a, lda, pb, c, ldc, nil)
			if d := math.Abs(float64(c[0]) - ref[0]); d > tol*scale[0] {
				t.Fatalf("%v nil bias: %v vs %v", s, c[0], ref[0])
			}
		}
	})
}

func TestSgemmBatched(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		// Attention-like: 3 heads of dh=16 inside [tokens, 48] Q and K.
		const tokens, heads, dh = 29, 3, 16
		q := randMat(r, tokens*heads*dh)
		kk := randMat(r, tokens*heads*dh)
		s := make([]float32, heads*tokens*tokens)
		for _, th := range []int{1, 2, 3} {
			withThreads(th, func() {
				SgemmStridedBatched(false, true, tokens, tokens, dh, 0.25, q, heads*dh, dh, kk, heads*dh, dh, 0, s, tokens, tokens*tokens, heads)
			})
			for h := 0; h < heads; h++ {
				ref, scale := refSgemm(false, true, tokens, tokens, dh, 0.25, q[h*dh:], heads*dh, kk[h*dh:], heads*dh, 0, nil, 0)
				for i := range ref {
					if d := math.Abs(float64(s[h*tokens*tokens+i]) - ref[i]); d > 1e-5*scale[i]+1e-30 {
						t.Fatalf("threads=%d head %d elem %d: %v vs %v", th, h, i, s[h*tokens*tokens+i], ref[i])
					}
				}
			}
		}
		// Slice form, batch of 5.
		m, n, k := 9, 21, 14
		var as, bs, cs [][]float32
		for i := 0; i < 5; i++ {
			as = append(as, randMat(r, m*k))
			bs = append(bs, randMat(r, n*k))
			cs = append(cs, randMat(r, m*n))
		}
		c0 := make([][]float32, 5)
		for i := range cs {
			c0[i] = append([]float32(nil), cs[i]...)
		}
		withThreads(2, func() { SgemmBatched(true, true, m, n, k, 1, as, m, bs, k, 1, cs, n) })
		for i := range cs {
			ref, scale := refSgemm(true, true, m, n, k, 1, as[i], m, bs[i], k, 1, c0[i], n)
			for e := range ref {
				if d := math.Abs(float64(cs[i][e]) - ref[e]); d > 1e-5*scale[e] {
					t.Fatalf("batch %d elem %d", i, e)
				}
			}
		}
	})
}

func TestVec(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 3, 4, 7, 8, 9, 31, 100} {
		x, y := randMat(r, n), randMat(r, n)
		var want float64
		for i := range x {
			want += float64(x[i]) * float64(y[i])
		}
		if got := Dot(x, y); math.Abs(float64(got)-want) > 1e-5*float64(n+1)*4 {
			t.Fatalf("Dot n=%d: %v vs %v", n, got, want)
		}
		y0 := append([]float32(nil), y...)
		Axpy(-0.5, x, y)
		for i := range y {
			if y[i] != y0[i]+(-0.5)*x[i] && math.Abs(float64(y[i]-(y0[i]-0.5*x[i]))) > 1e-6 {
				t.Fatalf("Axpy n=%d i=%d", n, i)
			}
		}
	}
}

func TestGrid(t *testing.T) {
	// DeiT shapes on two threads: N=576 splits columns, N=197 with
	// M=197 splits rows (less imbalance from the ragged last panel).
	if tm, tn := grid(2, 197, 17, 12, 576, 18, 32); tm != 1 || tn != 2 {
		t.Errorf("197x576: grid %dx%d", tm, tn)
	}
	if tm, tn := grid(1, 197, 17, 12, 576, 18, 32); tm != 1 || tn != 1 {
		t.Errorf("one thread: grid %dx%d", tm, tn)
	}
	if tm, tn := grid(4, 1, 1, 12, 5000, 157, 32); tm != 1 || tn != 4 {
		t.Errorf("1x5000: grid %dx%d", tm, tn)
	}
}

func TestResolvePath(t *testing.T) {
	if got := resolvePath("generic").name; got != "generic" {
		t.Errorf("generic -> %s", got)
	}
	best := AvailablePaths()[len(AvailablePaths())-1]
	for _, name := range []string{"", "bogus"} {
		if got := resolvePath(name).name; got != best {
			t.Errorf("%q -> %s, want best %s", name, got, best)
		}
	}
	for _, p := range []string{"avx2", "avx512"} {
		got := resolvePath(p).name
		supported := false
		for _, q := range AvailablePaths() {
			supported = supported || q == p
		}
		if supported && got != p || !supported && got != best {
			t.Errorf("%q -> %s", p, got)
		}
	}
	// The package honours PQVC_KERNELS at start-up: run the tests with
	// PQVC_KERNELS=generic (or avx2) to check.
	if want := os.Getenv(EnvKernels); want != "" {
		if initial != resolvePath(want).name {
			t.Errorf("%s=%s but started on %s", EnvKernels, want, initial)
		}
	}
}

// initial is the path selected at package initialisation.
var initial = KernelPath()
