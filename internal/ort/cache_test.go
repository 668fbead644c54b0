package ort

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestSessionCacheBytes checks that the runner's session cache is bounded
// by the bytes of the model files it holds, not only by their number: a
// session that would pass the bound evicts the least recently used first,
// so a sweep over large models holds one of them at a time.
func TestSessionCacheBytes(t *testing.T) {
	Require(t)
	b, err := os.ReadFile(addModel)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "add_copy.onnx")
	if err := os.WriteFile(other, b, 0o644); err != nil {
		t.Fatal(err)
	}
	in := addInputs(1)
	// created reports whether benchmarking model made a new session.
	created := func(r *Runner, model string) bool {
		t.Helper()
		res, err := r.Bench(model, in, 1, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		return res.SessionMs > 0
	}
	for _, tc := range []struct {
		budget int
		want   []bool // A, A, B, A: created?
	}{
		{len(b) * 3 / 2, []bool{true, false, true, true}}, // one model fits
		{len(b) * 3, []bool{true, false, true, false}},    // both fit
	} {
		t.Run(fmt.Sprint(tc.budget), func(t *testing.T) {
			t.Setenv("PQVC_ORT_CACHE_BYTES", fmt.Sprint(tc.budget))
			r, err := Start()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := []bool{created(r, addModel), created(r, addModel), created(r, other), created(r, addModel)}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("sessions created for A, A, B, A: %v, want %v", got, tc.want)
			}
		})
	}
}
