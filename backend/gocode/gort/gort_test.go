// Copyright 2026 The pqvc Authors.

package gort

import (
	"math"
	"testing"
)

func TestMinMaxMatchesReduce(t *testing.T) {
	src := []float32{3, -2, 7.5, 0, -9.25, 4}
	lo, hi := make([]float32, 1), make([]float32, 1)
	MinMax(lo, hi, src)
	rlo, rhi := make([]float32, 1), make([]float32, 1)
	Reduce(RedMin, rlo, src, 1, len(src), 1)
	Reduce(RedMax, rhi, src, 1, len(src), 1)
	if lo[0] != rlo[0] || hi[0] != rhi[0] || lo[0] != -9.25 || hi[0] != 7.5 {
		t.Errorf("MinMax = %v, %v; Reduce = %v, %v", lo[0], hi[0], rlo[0], rhi[0])
	}
	MinMax(lo, hi, []float32{1, float32(math.NaN())})
	if lo[0] == lo[0] || hi[0] == hi[0] {
		t.Errorf("NaN did not propagate: %v %v", lo[0], hi[0])
	}
}

func TestQuantizeFastPathMatchesGeneral(t *testing.T) {
	var src []float32
	for x := float32(-3); x <= 3; x += 0.0137 {
		src = append(src, x)
	}
	src = append(src, float32(math.NaN()), 1e9, -1e9, 0.5*0.02, 1.5*0.02)
	fast := make([]uint8, len(src))
	QuantizeU8(fast, src, []float32{0.02}, []uint8{128}, 1)
	for i, x := range src {
		if want := uint8(quantize(x, 0.02, 128, 0, 255)); fast[i] != want {
			t.Fatalf("quantize(%v) = %d, want %d", x, fast[i], want)
		}
	}
	// Exact ties round half to even.
	ties := []float32{0.5, 1.5, 2.5, -0.5, -1.5, 126.5, 127.5}
	got := make([]uint8, len(ties))
	QuantizeU8(got, ties, []float32{1}, []uint8{128}, 1)
	for i, want := range []uint8{128, 130, 130, 128, 126, 254, 255} {
		if got[i] != want {
			t.Errorf("quantize(%v) = %d, want %d", ties[i], got[i], want)
		}
	}
}

func TestTransposeSliceBroadcast(t *testing.T) {
	src := []int32{0, 1, 2, 3, 4, 5} // [2,3]
	dst := make([]int32, 6)
	Transpose(dst, src, []int{2, 3}, []int{1, 0})
	if want := []int32{0, 3, 1, 4, 2, 5}; !equal(dst, want) {
		t.Errorf("Transpose = %v, want %v", dst, want)
	}
	s := make([]int32, 2)
	Slice(s, src, []int{2, 3}, []int{1, 2}, []int{1, 2}, []int{1, -1})
	if want := []int32{5, 4}; !equal(s, want) {
		t.Errorf("Slice = %v, want %v", s, want)
	}
	b := make([]int32, 6)
	Broadcast(b, []int32{7, 8, 9}, []int{2, 3}, []int{0, 1})
	if want := []int32{7, 8, 9, 7, 8, 9}; !equal(b, want) {
		t.Errorf("Broadcast = %v, want %v", b, want)
	}
	f := make([]float32, 6)
	BinBroadcast(OpSub, f, []float32{1, 2}, []float32{10, 20, 30}, []int{2, 3}, []int{1, 0}, []int{0, 1})
	if want := []float32{-9, -19, -29, -8, -18, -28}; !equal(f, want) {
		t.Errorf("BinBroadcast = %v, want %v", f, want)
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
