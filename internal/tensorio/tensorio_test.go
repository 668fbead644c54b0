package tensorio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio/npy/float16"
)

// fixtureData returns the n elements of a fixture written by
// testdata/gen_fixtures.py (the same formulas).
func fixtureData(dtype string, n int) any {
	switch dtype {
	case "float32":
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(i)*0.5 - 3
		}
		return d
	case "float16":
		d := make([]uint16, n)
		for i := range d {
			d[i] = float16.New(float32(i)*0.5 - 3).Uint16()
		}
		return d
	case "float64":
		d := make([]float64, n)
		for i := range d {
			d[i] = float64(i)*0.5 - 3
		}
		return d
	case "int8":
		d := make([]int8, n)
		for i := range d {
			d[i] = int8(i - 12)
		}
		return d
	case "int32":
		d := make([]int32, n)
		for i := range d {
			d[i] = int32(i - 12)
		}
		return d
	case "int64":
		d := make([]int64, n)
		for i := range d {
			d[i] = int64(i - 12)
		}
		return d
	case "uint8":
		d := make([]uint8, n)
		for i := range d {
			d[i] = uint8(i * 10 % 256)
		}
		return d
	case "bool":
		d := make([]bool, n)
		for i := range d {
			d[i] = i%3 == 0
		}
		return d
	}
	panic(dtype)
}

func fixture(dtype string, shape ...int) *Array {
	n, err := NumElements(shape)
	if err != nil {
		panic(err)
	}
	return &Array{DType: dtype, Shape: shape, Data: fixtureData(dtype, n)}
}

// sameArray compares dtype, shape and element bits (so NaN == NaN).
func sameArray(t *testing.T, what string, got, want *Array) {
	t.Helper()
	if got.DType != want.DType {
		t.Fatalf("%s: dtype %s, want %s", what, got.DType, want.DType)
	}
	if len(got.Shape) != len(want.Shape) || (len(got.Shape) > 0 && !reflect.DeepEqual(got.Shape, want.Shape)) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	g, w := dataBits(got.Data), dataBits(want.Data)
	if !bytes.Equal(g, w) {
		t.Fatalf("%s: data %v, want %v", what, got.Data, want.Data)
	}
}

func dataBits(d any) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, d); err != nil {
		panic(err)
	}
	return b.Bytes()
}

var numpyFixtures = []struct {
	file  string
	want  *Array
	exact bool // WriteNpy reproduces numpy's bytes
}{
	{"f32.npy", fixture("float32", 2, 3, 4), true},
	{"f16.npy", fixture("float16", 3, 5), true},
	{"f64.npy", fixture("float64", 7), true},
	{"i8.npy", fixture("int8", 4, 6), true},
	{"u8.npy", fixture("uint8", 2, 2, 2, 3), true},
	{"i32.npy", fixture("int32", 5), true},
	{"i64.npy", fixture("int64", 2, 3), true},
	{"bool.npy", fixture("bool", 10), true},
	{"scalar.npy", fixture("float32"), true},
	{"empty.npy", fixture("float32", 0, 3), true},
	{"fortran.npy", fixture("float32", 2, 3, 4), false},
	{"bigendian.npy", fixture("float32", 2, 3), false},
	{"bigendian_i8.npy", fixture("int64", 4), false},
	{"v2.npy", fixture("int32", 3, 2), false},
}

func TestReadNumpyFixtures(t *testing.T) {
	for _, tc := range numpyFixtures {
		got, err := ReadNpy(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		sameArray(t, tc.file, got, tc.want)
	}
}

func TestWriteMatchesNumpyBytes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range numpyFixtures {
		if !tc.exact {
			continue
		}
		want, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, tc.file)
		if err := WriteNpy(out, tc.want); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: WriteNpy bytes differ from np.save:\n got %q\nwant %q", tc.file, got, want)
		}
	}
}

func TestRoundTripEveryDType(t *testing.T) {
	dir := t.TempDir()
	special := map[string]any{
		"float32": []float32{float32(math.NaN()), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), math.MaxFloat32, math.SmallestNonzeroFloat32, 1},
		"float16": []uint16{0x7e00, 0xfc00, 0x8000, 0x7bff, 0x0001, 0x3c00},
		"float64": []float64{math.NaN(), math.Inf(1), math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64, -1},
		"int8":    []int8{-128, 127, 0, -1, 1, 5},
		"uint8":   []uint8{0, 255, 1, 128, 127, 9},
		"int32":   []int32{math.MinInt32, math.MaxInt32, 0, -1, 1, 7},
		"int64":   []int64{math.MinInt64, math.MaxInt64, 0, -1, 1, 1 << 40},
		"bool":    []bool{true, false, false, true, true, false},
	}
	for _, dt := range DTypes {
		for _, a := range []*Array{
			{DType: dt, Shape: []int{2, 3}, Data: special[dt]},
			{DType: dt, Shape: []int{6}, Data: special[dt]},
			fixture(dt),          // scalar
			fixture(dt, 0),       // empty
			fixture(dt, 4, 0, 2), // empty, 3-d
			fixture(dt, 1, 3, 7, 5),
		} {
			name := fmt.Sprintf("%s%v", dt, a.Shape)
			p := filepath.Join(dir, "a.npy")
			if err := WriteNpy(p, a); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := ReadNpy(p)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			sameArray(t, name, got, a)
			// The header is padded to 64 bytes like numpy's.
			b, _ := os.ReadFile(p)
			if hl := 10 + int(binary.LittleEndian.Uint16(b[8:10])); hl%64 != 0 {
				t.Fatalf("%s: data offset %d not 64-aligned", name, hl)
			}
		}
	}
}

func TestWriteNpyLongShapeUsesVersion2(t *testing.T) {
	shape := make([]int, 25000) // header > 64 KiB
	for i := range shape {
		shape[i] = 1
	}
	a := fixture("int8", shape...)
	p := filepath.Join(t.TempDir(), "long.npy")
	if err := WriteNpy(p, a); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if b[6] != 2 || (12+int(binary.LittleEndian.Uint32(b[8:12])))%64 != 0 {
		t.Fatalf("want aligned version 2.0 header, got version %d.%d", b[6], b[7])
	}
	got, err := ReadNpy(p)
	if err != nil {
		t.Fatal(err)
	}
	sameArray(t, "long", got, a)
}

func TestWriteNpyRejectsInvalid(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.npy")
	for _, tc := range []struct {
		a    *Array
		want string
	}{
		{&Array{DType: "complex64", Shape: []int{1}, Data: []float32{1}}, `unsupported dtype "complex64"`},
		{&Array{DType: "float32", Shape: []int{2}, Data: []float64{1, 2}}, "wants Data of type []float32, have []float64"},
		{&Array{DType: "float16", Shape: []int{2}, Data: []float32{1, 2}}, "wants Data of type []uint16"},
		{&Array{DType: "int32", Shape: []int{2, 2}, Data: []int32{1, 2}}, "shape [2 2] wants 4 elements, Data has 2"},
		{&Array{DType: "int32", Shape: []int{-1}, Data: []int32{}}, "negative dimension"},
		{nil, "nil array"},
	} {
		err := WriteNpy(p, tc.a)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p+": ") {
			t.Errorf("WriteNpy(%v) = %v, want error containing %q", tc.a, err, tc.want)
		}
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed writes left %s behind", p)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 0 {
		t.Errorf("failed writes left files behind: %v", ents)
	}
}

func TestReadNpz(t *testing.T) {
	for _, tc := range []struct {
		file string
		want map[string]*Array
	}{
		{"eval.npz", map[string]*Array{
			"x": fixture("float32", 1, 3, 4, 4), "labels": fixture("int64", 1), "mask": fixture("bool", 2, 2)}},
		{"eval_compressed.npz", map[string]*Array{
			"x": fixture("float32", 1, 3, 4, 4), "half": fixture("float16", 8)}},
	} {
		got, err := ReadNpz(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d members, want %d", tc.file, len(got), len(tc.want))
		}
		for k, w := range tc.want {
			g, ok := got[k]
			if !ok {
				t.Fatalf("%s: no member %q in %v", tc.file, k, got)
			}
			sameArray(t, tc.file+":"+k, g, w)
		}
	}
}

func TestNpzRoundTripDeterministic(t *testing.T) {
	dir := t.TempDir()
	arrays := map[string]*Array{}
	for i, dt := range DTypes {
		arrays[fmt.Sprintf("m%d_%s", len(DTypes)-i, dt)] = fixture(dt, 2, i+1)
	}
	arrays["scalar"] = fixture("float32")
	arrays["nested/name"] = fixture("int8", 3)
	for _, compressed := range []bool{false, true} {
		write := WriteNpz
		if compressed {
			write = WriteNpzCompressed
		}
		p1, p2 := filepath.Join(dir, "a.npz"), filepath.Join(dir, "b.npz")
		if err := write(p1, arrays); err != nil {
			t.Fatal(err)
		}
		if err := write(p2, arrays); err != nil {
			t.Fatal(err)
		}
		b1, _ := os.ReadFile(p1)
		b2, _ := os.ReadFile(p2)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("compressed=%v: two writes differ", compressed)
		}
		zr, err := zip.NewReader(bytes.NewReader(b1), int64(len(b1)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
			if !f.Modified.Equal(zipTime) {
				t.Errorf("%s: modified %v", f.Name, f.Modified)
			}
			if want := map[bool]uint16{false: zip.Store, true: zip.Deflate}[compressed]; f.Method != want {
				t.Errorf("%s: method %d, want %d", f.Name, f.Method, want)
			}
		}
		if !sortedStrings(names) || !strings.HasSuffix(names[0], ".npy") {
			t.Errorf("member order %v, want sorted names ending in .npy", names)
		}
		got, err := ReadNpz(p1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(arrays) {
			t.Fatalf("got %d members, want %d", len(got), len(arrays))
		}
		for k, w := range arrays {
			sameArray(t, k, got[k], w)
		}
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}

func TestRead(t *testing.T) {
	m, err := Read("testdata/f32.npy")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || m["f32"] == nil {
		t.Fatalf("Read(.npy) keys = %v, want [f32]", m)
	}
	m, err = Read("testdata/eval.npz")
	if err != nil || len(m) != 3 {
		t.Fatalf("Read(.npz) = %v, %v", m, err)
	}
	// Unknown extensions are sniffed.
	dir := t.TempDir()
	for src, key := range map[string]string{"f32.npy": "data", "eval.npz": "x"} {
		b, _ := os.ReadFile(filepath.Join("testdata", src))
		p := filepath.Join(dir, "data.bin")
		os.WriteFile(p, b, 0o644)
		m, err := Read(p)
		if err != nil || m[key] == nil {
			t.Fatalf("Read(%s as .bin) = %v, %v", src, m, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "junk.bin"), []byte("hello"), 0o644)
	if _, err := Read(filepath.Join(dir, "junk.bin")); err == nil || !strings.Contains(err.Error(), "neither a .npy nor a .npz") {
		t.Fatalf("junk: %v", err)
	}
}

// npyBytes builds a .npy file with an arbitrary header dictionary.
func npyBytes(dict string, data []byte) []byte {
	h := dict + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	return append(append(b, h...), data...)
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	f32, _ := os.ReadFile("testdata/f32.npy")
	v2 := append([]byte("\x93NUMPY\x02\x00"), 0xff, 0xff, 0xff, 0xff)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty.npy", nil, "truncated: 0 bytes is too short"},
		{"magic.npy", []byte("PK\x03\x04 this is no npy file"), "not a .npy file (bad magic"},
		{"v3.npy", append([]byte("\x93NUMPY\x03\x00"), f32[8:]...), "unsupported .npy format version 3.0"},
		{"v9.npy", append([]byte("\x93NUMPY\x09\x00"), f32[8:]...), "unsupported .npy format version 9.0"},
		{"hugeheader.npy", append(v2, make([]byte, 100)...), "header length 4294967295 is too large"},
		{"shortheader.npy", f32[:40], "truncated: header length 118 exceeds file size 40"},
		{"nodata.npy", f32[:128], "truncated: shape [2 3 4] of float32 needs 96 data bytes, only 0 present"},
		{"halfdata.npy", f32[:len(f32)-1], "only 95 present"},
		{"trailing.npy", append(append([]byte{}, f32...), 0), "1 trailing bytes"},
		{"overflow.npy", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", nil), "element count overflows"},
		{"bytesoverflow.npy", npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }", nil), "byte size overflows"},
		{"absurd.npy", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }", make([]byte, 16)), "needs 40000000000 data bytes, only 16 present"},
		{"negative.npy", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", nil), "negative dimension"},
		{"complex.npy", npyBytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)), "unsupported dtype <c8"},
		{"object.npy", npyBytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)), "unsupported dtype |O"},
		{"struct.npy", npyBytes("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)), "unsupported dtype [('a', '<i4')]"},
		{"nonewline.npy", []byte("\x93NUMPY\x01\x00\x04\x00{}  "), "no terminating newline"},
		{"baddict.npy", npyBytes("{'shape': (1,)}", nil), "corrupt header"},
		{"badorder.npy", npyBytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", nil), "corrupt header"},
		{"badshape.npy", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }", nil), "corrupt header"},
		{"unclosed.npy", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), ", make([]byte, 4)), "the dictionary is not enclosed in { }"},
		// Key order npyio cannot parse: an error, not a panic.
		{"keyorder.npy", npyBytes("{'shape': (1,), 'fortran_order': False, 'descr': '<f4', }", make([]byte, 4)), "corrupt header"},
	}
	for _, tc := range cases {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadNpy(p)
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.name, tc.want)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, p+": ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q, want one line %q", tc.name, msg, p+": ..."+tc.want)
		}
	}
	// Files numpy wrote with dtypes we do not support.
	for file, want := range map[string]string{"c64.npy": "testdata/c64.npy: unsupported dtype <c8", "u16.npy": "testdata/u16.npy: unsupported dtype <u2"} {
		if _, err := ReadNpy("testdata/" + file); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", file, err, want)
		}
	}
	if _, err := ReadNpy(filepath.Join(dir, "missing.npy")); err == nil || !errors.Is(err, fs.ErrNotExist) || strings.Count(err.Error(), "missing.npy") != 1 {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadNpy(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}

func TestReadNpzErrors(t *testing.T) {
	_, err := ReadNpz("testdata/bad_member.npz")
	if err == nil || err.Error() != "testdata/bad_member.npz: member x: unsupported dtype <c8" {
		t.Fatalf("bad member: %v", err)
	}
	var te *Error
	if !errors.As(err, &te) || te.Member != "x" {
		t.Fatalf("want *Error with Member x, got %#v", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "x.npz")
	os.WriteFile(p, []byte("not a zip at all"), 0o644)
	if _, err := ReadNpz(p); err == nil || !strings.Contains(err.Error(), "not a valid .npz (zip) archive") {
		t.Errorf("not a zip: %v", err)
	}

	// A member whose bytes are corrupted: CRC mismatch for a stored member.
	b, _ := os.ReadFile("testdata/eval.npz")
	i := bytes.Index(b, []byte("'descr'"))
	bad := append([]byte{}, b...)
	bad[i+200] ^= 0xff // inside the first member's data
	os.WriteFile(p, bad, 0o644)
	if _, err := ReadNpz(p); err == nil || !strings.Contains(err.Error(), "member ") {
		t.Errorf("flipped data byte: %v", err)
	}

	// A zip member that claims a huge uncompressed size.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", nil)
	fw, _ := zw.CreateRaw(&zip.FileHeader{Name: "big.npy", Method: zip.Store, CompressedSize64: uint64(len(hdr)), UncompressedSize64: 4000000000 + uint64(len(hdr))})
	fw.Write(hdr)
	zw.Close()
	os.WriteFile(p, buf.Bytes(), 0o644)
	if _, err := ReadNpz(p); err == nil || !strings.Contains(err.Error(), "member big: corrupt") {
		t.Errorf("forged size: %v", err)
	}
	// Same with deflate and an honest-looking ratio breach.
	buf.Reset()
	zw = zip.NewWriter(&buf)
	fw, _ = zw.CreateRaw(&zip.FileHeader{Name: "big.npy", Method: zip.Deflate, CompressedSize64: 10, UncompressedSize64: 1 << 40})
	fw.Write(make([]byte, 10))
	zw.Close()
	os.WriteFile(p, buf.Bytes(), 0o644)
	if _, err := ReadNpz(p); err == nil || !strings.Contains(err.Error(), "member big: corrupt: implausible size") {
		t.Errorf("forged deflate size: %v", err)
	}

	// Duplicate member after stripping .npy.
	buf.Reset()
	zw = zip.NewWriter(&buf)
	f32, _ := os.ReadFile("testdata/f32.npy")
	for _, n := range []string{"a.npy", "a"} {
		w, _ := zw.Create(n)
		w.Write(f32)
	}
	zw.Close()
	os.WriteFile(p, buf.Bytes(), 0o644)
	if _, err := ReadNpz(p); err == nil || !strings.Contains(err.Error(), "member a: duplicate member") {
		t.Errorf("duplicate: %v", err)
	}
}

// Every truncation of valid files must fail cleanly (an empty archive is
// the only valid prefix).
func TestTruncations(t *testing.T) {
	dir := t.TempDir()
	for _, file := range []string{"f32.npy", "f16.npy", "fortran.npy", "v2.npy", "scalar.npy"} {
		b, _ := os.ReadFile(filepath.Join("testdata", file))
		for n := 0; n < len(b); n++ {
			if _, err := decodeNpy(bytes.NewReader(b[:n]), int64(n)); err == nil {
				t.Fatalf("%s truncated to %d bytes: no error", file, n)
			}
			// A stream shorter than the size it claims.
			if _, err := decodeNpy(bytes.NewReader(b[:n]), int64(len(b))); err == nil {
				t.Fatalf("%s stream cut at %d bytes: no error", file, n)
			}
		}
	}
	for _, file := range []string{"eval.npz", "eval_compressed.npz"} {
		b, _ := os.ReadFile(filepath.Join("testdata", file))
		for n := 0; n < len(b); n++ {
			p := filepath.Join(dir, "t.npz")
			os.WriteFile(p, b[:n], 0o644)
			if m, err := ReadNpz(p); err == nil && len(m) != 0 {
				t.Fatalf("%s truncated to %d bytes: read %d members", file, n, len(m))
			}
		}
	}
}

// Flipping any single byte must give an error or a valid array, never a panic.
func TestByteFlips(t *testing.T) {
	for _, file := range []string{"f32.npy", "bigendian.npy", "eval_compressed.npz", "eval.npz"} {
		b, _ := os.ReadFile(filepath.Join("testdata", file))
		for i := range b {
			for _, x := range []byte{0xff, 0x01, 0x80} {
				c := append([]byte{}, b...)
				c[i] ^= x
				if strings.HasSuffix(file, ".npz") {
					readNpz(file, bytes.NewReader(c), int64(len(c)), nil)
				} else if a, err := decodeNpy(bytes.NewReader(c), int64(len(c))); err == nil {
					if err := a.Validate(); err != nil {
						t.Fatalf("%s flip %d: invalid array %v", file, i, err)
					}
				}
			}
		}
	}
}

// TestNumpyReadsOurFiles has numpy load what we write, when numpy is here.
func TestNumpyReadsOurFiles(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		t.Skipf("no numpy: %v", err)
	}
	dir := t.TempDir()
	arrays := map[string]*Array{}
	for _, dt := range DTypes {
		arrays[dt] = fixture(dt, 2, 3, 4)
	}
	if err := WriteNpz(filepath.Join(dir, "s.npz"), arrays); err != nil {
		t.Fatal(err)
	}
	if err := WriteNpzCompressed(filepath.Join(dir, "c.npz"), arrays); err != nil {
		t.Fatal(err)
	}
	if err := WriteNpy(filepath.Join(dir, "f16.npy"), arrays["float16"]); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, numpy as np
d = sys.argv[1]
def want(dt):
    i = np.arange(24)
    k = np.dtype(dt).kind
    v = {"f": i*0.5-3, "i": i-12, "u": (i*10) % 256, "b": i % 3 == 0}[k]
    return v.astype(dt).reshape(2, 3, 4)
for f in ("s.npz", "c.npz"):
    z = np.load(d + "/" + f)
    assert sorted(z.files) == sorted(sys.argv[2:]), z.files
    for k in z.files:
        a = z[k]
        assert a.dtype == np.dtype(k), (k, a.dtype)
        assert a.flags.c_contiguous and np.array_equal(a, want(k)), (f, k, a)
a = np.load(d + "/f16.npy")
assert a.dtype == np.float16 and np.array_equal(a, want("float16"))
print("ok")
`
	out, err := exec.Command(py, append([]string{"-c", script, dir}, DTypes...)...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("numpy check failed: %v\n%s", err, out)
	}
}
