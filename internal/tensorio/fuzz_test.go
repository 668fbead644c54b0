package tensorio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds every testdata file matching pattern to the corpus.
func addSeeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzReadNpy: any input gives an error or a valid array that survives a
// write/read round trip; never a panic or a runaway allocation.
//
//	go test ./internal/tensorio -run '^$' -fuzz FuzzReadNpy -fuzztime 60s
func FuzzReadNpy(f *testing.F) {
	addSeeds(f, "*.npy")
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeNpy(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("decoded an invalid array: %v", err)
		}
		var buf bytes.Buffer
		if err := encodeNpy(&buf, a); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := decodeNpy(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		sameArray(t, "round trip", back, a)
	})
}

// FuzzReadNpz: as FuzzReadNpy, for archives.
//
//	go test ./internal/tensorio -run '^$' -fuzz FuzzReadNpz -fuzztime 60s
func FuzzReadNpz(f *testing.F) {
	addSeeds(f, "*.npz")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := readNpz("fuzz.npz", bytes.NewReader(b), int64(len(b)), nil)
		// Leaving x on disk accepts exactly what reading it accepts, and
		// the bytes it points at are the array reading it gives.
		lm, lazy, lerr := readNpz("fuzz.npz", bytes.NewReader(b), int64(len(b)), &LazyRule{Name: "x"})
		if (err == nil) != (lerr == nil) {
			t.Fatalf("eager: %v; lazy: %v", err, lerr)
		}
		if err != nil {
			return
		}
		for k, a := range m {
			if err := a.Validate(); err != nil {
				t.Fatalf("member %s: decoded an invalid array: %v", k, err)
			}
		}
		if lazy != nil {
			checkLazy(t, b, lazy, m["x"])
			if lm["x"].Data != nil {
				t.Fatal("lazy member kept its data")
			}
		}
	})
}
