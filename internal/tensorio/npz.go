package tensorio

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// zipTime is the timestamp given to every .npz member, so that writing the
// same arrays twice gives the same bytes.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// dosZipDate is zipTime as an MS-DOS date: (year-1980)<<9 | month<<5 | day.
const dosZipDate = 0<<9 | 1<<5 | 1

// maxDeflateRatio bounds uncompressed/compressed size for a deflated member
// (deflate cannot do better than about 1032:1), so a forged size in the zip
// directory is refused before anything is read.
const maxDeflateRatio = 1040

// ReadNpz reads every member of the .npz archive at path. Map keys are the
// member names without their ".npy" suffix, as numpy's np.load reports them.
// Both stored (np.savez) and deflated (np.savez_compressed) members are read.
func ReadNpz(path string) (map[string]*Array, error) {
	out, _, err := readNpzFile(path, nil)
	return out, err
}

// Lazy is an array left in its file: little-endian float32 in C order,
// starting at byte Offset of Path.
type Lazy struct {
	Path   string
	Offset int64
	Shape  []int
}

// LazyRule says which member ReadNpzLazy leaves on disk: Name, when it is
// stored uncompressed (np.savez) as little-endian float32 in C order and
// holds at least MinBytes.
type LazyRule struct {
	Name     string
	MinBytes int64
}

// ReadNpzLazy is ReadNpz, except that the member rule picks is verified
// (its header, its length, its CRC: the whole member is read through once)
// but not kept in memory. It is returned as a Lazy, and its entry in the
// map has the dtype and shape and nil Data. A calibration set of a few
// hundred 224×224 images is as large as a DeiT-base: holding it whole
// would double a compile's memory.
func ReadNpzLazy(path string, rule LazyRule) (map[string]*Array, *Lazy, error) {
	return readNpzFile(path, &rule)
}

func readNpzFile(path string, rule *LazyRule) (map[string]*Array, *Lazy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &Error{Path: path, Err: unwrapPathError("open", err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, &Error{Path: path, Err: unwrapPathError("stat", err)}
	}
	if st.IsDir() {
		return nil, nil, &Error{Path: path, Err: errors.New("is a directory")}
	}
	return readNpz(path, f, st.Size(), rule)
}

func readNpz(path string, r io.ReaderAt, size int64, rule *LazyRule) (out map[string]*Array, lazy *Lazy, err error) {
	defer func() { // archive/zip should not panic, but this is our boundary
		if p := recover(); p != nil {
			out, lazy, err = nil, nil, &Error{Path: path, Err: fmt.Errorf("corrupt archive: %v", p)}
		}
	}()
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // we never extract to disk
		return nil, nil, &Error{Path: path, Err: fmt.Errorf("not a valid .npz (zip) archive: %v", err)}
	}
	out = make(map[string]*Array, len(zr.File))
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue // directory entry
		}
		name := strings.TrimSuffix(zf.Name, ".npy")
		if _, dup := out[name]; dup {
			return nil, nil, &Error{Path: path, Member: name, Err: errors.New("duplicate member")}
		}
		var leave func(string, []int, bool) bool
		if rule != nil && name == rule.Name && zf.Method == zip.Store {
			leave = func(descr string, shape []int, fortran bool) bool {
				n, err := NumElements(shape)
				return err == nil && descr == "<f4" && (!fortran || len(shape) <= 1) && int64(n)*4 >= rule.MinBytes
			}
		}
		a, off, err := readMember(zf, size, leave)
		if err != nil {
			return nil, nil, &Error{Path: path, Member: name, Err: err}
		}
		if a.Data == nil {
			base, err := zf.DataOffset()
			if err != nil {
				return nil, nil, &Error{Path: path, Member: name, Err: err}
			}
			lazy = &Lazy{Path: path, Offset: base + off, Shape: a.Shape}
		}
		out[name] = a
	}
	return out, lazy, nil
}

func readMember(zf *zip.File, archiveSize int64, leave func(string, []int, bool) bool) (*Array, int64, error) {
	usize, csize := zf.UncompressedSize64, zf.CompressedSize64
	if csize > uint64(archiveSize) {
		return nil, 0, fmt.Errorf("corrupt: compressed size %d exceeds archive size %d", csize, archiveSize)
	}
	switch zf.Method {
	case zip.Store:
		if usize != csize {
			return nil, 0, fmt.Errorf("corrupt: stored member has compressed size %d but size %d", csize, usize)
		}
	case zip.Deflate:
		if usize/maxDeflateRatio > csize {
			return nil, 0, fmt.Errorf("corrupt: implausible size %d for %d compressed bytes", usize, csize)
		}
	default:
		return nil, 0, fmt.Errorf("unsupported zip compression method %d", zf.Method)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, 0, fmt.Errorf("open: %v", err)
	}
	defer rc.Close()
	return decodeNpyMaybe(bufio.NewReaderSize(rc, 1<<16), int64(usize), leave)
}

// WriteNpz writes arrays to path as an uncompressed .npz archive, like
// np.savez: member "k.npy" for each key k, in sorted order, with fixed
// timestamps so that the bytes depend only on the arrays.
func WriteNpz(path string, arrays map[string]*Array) error {
	return writeNpz(path, arrays, zip.Store)
}

// WriteNpzCompressed is WriteNpz with deflated members, like
// np.savez_compressed.
func WriteNpzCompressed(path string, arrays map[string]*Array) error {
	return writeNpz(path, arrays, zip.Deflate)
}

func writeNpz(path string, arrays map[string]*Array, method uint16) error {
	names := make([]string, 0, len(arrays))
	for name, a := range arrays {
		if name == "" {
			return &Error{Path: path, Err: errors.New("empty member name")}
		}
		if err := a.Validate(); err != nil {
			return &Error{Path: path, Member: name, Err: err}
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var member string
	err := writeFileAtomic(path, func(w io.Writer) error {
		zw := zip.NewWriter(w)
		var buf bytes.Buffer
		for _, name := range names {
			member = name
			buf.Reset()
			if err := encodeNpy(&buf, arrays[name]); err != nil {
				return err
			}
			// The MS-DOS date for zipTime, set directly: CreateRaw ignores
			// Modified, and this also keeps Go from adding an extra field.
			fh := &zip.FileHeader{Name: name + ".npy", Method: method, ModifiedDate: dosZipDate}
			fh.SetMode(0o644)
			if method == zip.Store {
				// Sizes and CRC up front: no data descriptor needed.
				fh.CRC32 = crc32.ChecksumIEEE(buf.Bytes())
				fh.CompressedSize64 = uint64(buf.Len())
				fh.UncompressedSize64 = uint64(buf.Len())
				mw, err := zw.CreateRaw(fh)
				if err != nil {
					return err
				}
				if _, err := mw.Write(buf.Bytes()); err != nil {
					return err
				}
				continue
			}
			mw, err := zw.CreateHeader(fh)
			if err != nil {
				return err
			}
			if _, err := mw.Write(buf.Bytes()); err != nil {
				return err
			}
		}
		member = ""
		return zw.Close()
	})
	if err != nil {
		return &Error{Path: path, Member: member, Err: err}
	}
	return nil
}

// Read reads path by its extension: a .npy file gives a one-entry map keyed
// by the file's base name without extension ("x.npy" → {"x": arr}); a .npz
// file gives all its members. Other extensions are told apart by their
// magic bytes.
func Read(path string) (map[string]*Array, error) {
	kind := strings.ToLower(filepath.Ext(path))
	if kind != ".npy" && kind != ".npz" {
		f, err := os.Open(path)
		if err != nil {
			return nil, &Error{Path: path, Err: unwrapPathError("open", err)}
		}
		var magic [6]byte
		n, _ := io.ReadFull(f, magic[:])
		f.Close()
		switch {
		case bytes.Equal(magic[:n], npyMagic):
			kind = ".npy"
		case n >= 4 && string(magic[:4]) == "PK\x03\x04", n >= 4 && string(magic[:4]) == "PK\x05\x06":
			kind = ".npz"
		default:
			return nil, &Error{Path: path, Err: errors.New("neither a .npy nor a .npz file")}
		}
	}
	if kind == ".npz" {
		return ReadNpz(path)
	}
	a, err := ReadNpy(path)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(path)
	return map[string]*Array{strings.TrimSuffix(base, filepath.Ext(base)): a}, nil
}
