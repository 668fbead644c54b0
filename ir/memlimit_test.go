package ir

import (
	"strings"
	"testing"
)

// TestMaxTensorBytes checks that a tensor past the memory bound is refused
// with a message that gives its size and the bound, before any allocation.
func TestMaxTensorBytes(t *testing.T) {
	if MaxTensorBytes() <= 0 {
		t.Fatalf("MaxTensorBytes %d", MaxTensorBytes())
	}
	old := SetMaxTensorBytes(1 << 20)
	defer SetMaxTensorBytes(old)
	if _, err := NewTensor(F32, []int64{256, 1024}); err != nil {
		t.Errorf("1 MiB tensor at a 1 MiB bound: %v", err)
	}
	_, err := NewTensor(F32, []int64{512, 1024})
	if err == nil || !strings.Contains(err.Error(), "shape [512 1024] of f32 needs 2.0 MiB; one tensor may take at most 1.0 MiB (the bound set)") {
		t.Errorf("past the bound: %v", err)
	}
	if _, err := NewTensor(I8, []int64{1 << 20}); err != nil {
		t.Errorf("1 MiB of int8: %v", err)
	}
	// Not a multiple of the element size: the bound is on bytes.
	if _, err := NewTensor(F64, []int64{1<<17 + 1}); err == nil {
		t.Error("f64 past the bound accepted")
	}
}
