package data

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pqvc/pqvc/ir"
)

// TestLoadLazy checks that a dataset left on disk gives the same samples
// as one read whole, for every range, and that small or compressed files
// are read whole.
func TestLoadLazy(t *testing.T) {
	dir := t.TempDir()
	n, per := 7, 2*3*3
	xs := make([]float32, n*per)
	for i := range xs {
		xs[i] = float32(math.Sin(float64(i))) * 3
	}
	x := ir.F32Tensor([]int64{int64(n), 2, 3, 3}, xs)
	y := ir.I64Tensor([]int64{int64(n)}, []int64{0, 1, 2, 3, 4, 5, 6})
	p := filepath.Join(dir, "d.npz")
	if err := WriteTensors(p, map[string]*ir.Tensor{"x": x, "y": y}); err != nil {
		t.Fatal(err)
	}
	eager, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := LoadLazy(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if lazy.X.Data != nil || lazy.Len() != n || !slices.Equal(lazy.Y, eager.Y) || !slices.Equal(lazy.X.Shape, eager.X.Shape) {
		t.Fatalf("lazy dataset %v %v, data kept: %v", lazy.X.Shape, lazy.Y, lazy.X.Data != nil)
	}
	for lo := 0; lo < n; lo++ {
		for hi := lo + 1; hi <= n; hi++ {
			a, err := lazy.Samples(lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := eager.Samples(lo, hi)
			if !slices.Equal(a.Shape, b.Shape) || !slices.Equal(a.F32(), b.F32()) {
				t.Fatalf("samples %d to %d differ", lo, hi)
			}
		}
	}
	if small, err := LoadLazy(p, 1<<20); err != nil || small.X.Data == nil {
		t.Errorf("a dataset under the bound was left on disk (%v)", err)
	}
}
