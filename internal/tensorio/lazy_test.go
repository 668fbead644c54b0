package tensorio

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkLazy holds a Lazy to the array an eager read of the same file gave.
func checkLazy(t *testing.T, file []byte, lazy *Lazy, want *Array) {
	t.Helper()
	if want == nil || want.DType != "float32" || !slices.Equal(lazy.Shape, want.Shape) {
		t.Fatalf("lazy %v, eager %+v", lazy.Shape, want)
	}
	xs := want.Data.([]float32)
	end := lazy.Offset + 4*int64(len(xs))
	if lazy.Offset < 0 || end > int64(len(file)) {
		t.Fatalf("lazy data [%d, %d) outside the %d-byte file", lazy.Offset, end, len(file))
	}
	for i, x := range xs {
		got := math.Float32frombits(binary.LittleEndian.Uint32(file[lazy.Offset+4*int64(i):]))
		if math.Float32bits(got) != math.Float32bits(x) {
			t.Fatalf("element %d: %v on disk, %v read", i, got, x)
		}
	}
}

func TestReadNpzLazy(t *testing.T) {
	dir := t.TempDir()
	xs := make([]float32, 2*3*4)
	for i := range xs {
		xs[i] = float32(i) - 7.5
	}
	arrs := map[string]*Array{
		"x": {DType: "float32", Shape: []int{2, 3, 4}, Data: xs},
		"y": {DType: "int64", Shape: []int{2}, Data: []int64{3, 1}},
	}
	stored, deflated := filepath.Join(dir, "s.npz"), filepath.Join(dir, "d.npz")
	if err := WriteNpz(stored, arrs); err != nil {
		t.Fatal(err)
	}
	if err := WriteNpzCompressed(deflated, arrs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(stored)
	if err != nil {
		t.Fatal(err)
	}

	m, lazy, err := ReadNpzLazy(stored, LazyRule{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if lazy == nil || lazy.Path != stored || m["x"].Data != nil || !slices.Equal(m["x"].Shape, []int{2, 3, 4}) {
		t.Fatalf("x not left on disk: %+v, %+v", lazy, m["x"])
	}
	if !slices.Equal(m["y"].Data.([]int64), []int64{3, 1}) {
		t.Errorf("y %v", m["y"].Data)
	}
	checkLazy(t, b, lazy, arrs["x"])

	// Too small for the rule, or compressed: read as usual.
	for _, tc := range []struct {
		path string
		rule LazyRule
	}{{stored, LazyRule{Name: "x", MinBytes: 1 << 20}}, {deflated, LazyRule{Name: "x"}}, {stored, LazyRule{Name: "y"}}} {
		m, lazy, err := ReadNpzLazy(tc.path, tc.rule)
		if err != nil || lazy != nil || !slices.Equal(m["x"].Data.([]float32), xs) {
			t.Errorf("%s %+v: lazy %+v, err %v", filepath.Base(tc.path), tc.rule, lazy, err)
		}
	}

	// A flipped data byte fails the CRC even though the data is not kept.
	c := slices.Clone(b)
	c[lazy.Offset+5] ^= 0x10
	bad := filepath.Join(dir, "bad.npz")
	if err := os.WriteFile(bad, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadNpzLazy(bad, LazyRule{Name: "x"}); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("flipped data byte: %v", err)
	}
}
