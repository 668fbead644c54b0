// Package tensorio reads and writes n-dimensional arrays in NumPy's .npy and
// .npz formats.
//
// Reading decodes through codeberg.org/sbinet/npyio after the header and the
// sizes have been checked here, so that truncated, corrupt or hostile files
// give an error (never a panic, never a huge allocation). Writing produces the
// exact bytes numpy's np.save writes (format version 1.0, header padded to 64
// bytes, C order, little-endian), and .npz archives are deterministic: members
// sorted by name, fixed timestamps.
//
// Supported element types are listed in [DTypes]. Fortran-ordered input is
// transposed to C order on read; big-endian input is converted to native
// values on read. Everything written is little-endian C order.
package tensorio

import (
	"fmt"
	"math/bits"
)

// Array is an n-d array read from or written to .npy/.npz.
//
// Data holds the elements in C (row-major) order; its Go type is fixed by
// DType:
//
//	"float32" []float32   "float16" []uint16 (IEEE half bits)
//	"float64" []float64   "int8"    []int8
//	"uint8"   []uint8     "int32"   []int32
//	"int64"   []int64     "bool"    []bool
//
// A 0-d (scalar) array has an empty Shape and one element.
type Array struct {
	DType string
	Shape []int
	Data  any
}

// DTypes lists the supported DType names, in a fixed order.
var DTypes = []string{"float32", "float16", "float64", "int8", "uint8", "int32", "int64", "bool"}

// dtypeInfo describes one supported element type.
type dtypeInfo struct {
	name  string // Array.DType
	size  int    // bytes per element
	descr string // numpy descr written by WriteNpy
}

var dtypeByName = map[string]dtypeInfo{
	"float32": {"float32", 4, "<f4"},
	"float16": {"float16", 2, "<f2"},
	"float64": {"float64", 8, "<f8"},
	"int8":    {"int8", 1, "|i1"},
	"uint8":   {"uint8", 1, "|u1"},
	"int32":   {"int32", 4, "<i4"},
	"int64":   {"int64", 8, "<i8"},
	"bool":    {"bool", 1, "|b1"},
}

// dtypeByDescr maps accepted numpy descr strings (without quotes) to a dtype.
// Single-byte types may carry any byte-order mark; wider ones must state an
// order ('<' little, '>' big, '=' native which numpy never writes to a file
// but which we read as little-endian like numpy on x86/arm).
var dtypeByDescr = map[string]string{
	"<f4": "float32", ">f4": "float32", "=f4": "float32",
	"<f2": "float16", ">f2": "float16", "=f2": "float16",
	"<f8": "float64", ">f8": "float64", "=f8": "float64",
	"<i4": "int32", ">i4": "int32", "=i4": "int32",
	"<i8": "int64", ">i8": "int64", "=i8": "int64",
	"|i1": "int8", "<i1": "int8", ">i1": "int8", "=i1": "int8",
	"|u1": "uint8", "<u1": "uint8", ">u1": "uint8", "=u1": "uint8",
	"|b1": "bool", "<b1": "bool", ">b1": "bool", "=b1": "bool",
}

// NumElements returns the product of shape, or an error if a dimension is
// negative or the product overflows int.
func NumElements(shape []int) (int, error) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > uint64(maxInt) {
			return 0, fmt.Errorf("shape %v: element count overflows", shape)
		}
		n = lo
	}
	return int(n), nil
}

const maxInt = int(^uint(0) >> 1)

// Len returns the number of elements described by a.Shape (1 for a scalar).
// It returns -1 if the shape is invalid.
func (a *Array) Len() int {
	n, err := NumElements(a.Shape)
	if err != nil {
		return -1
	}
	return n
}

// Validate checks that DType is supported, Shape is valid and Data has the Go
// type and length that DType and Shape call for.
func (a *Array) Validate() error {
	if a == nil {
		return fmt.Errorf("nil array")
	}
	if _, ok := dtypeByName[a.DType]; !ok {
		return fmt.Errorf("unsupported dtype %q", a.DType)
	}
	n, err := NumElements(a.Shape)
	if err != nil {
		return err
	}
	got, ok := dataLen(a.DType, a.Data)
	if !ok {
		return fmt.Errorf("dtype %s wants Data of type %s, have %T", a.DType, goType(a.DType), a.Data)
	}
	if got != n {
		return fmt.Errorf("shape %v wants %d elements, Data has %d", a.Shape, n, got)
	}
	return nil
}

// dataLen returns len(data) if data has the Go type of dtype.
func dataLen(dtype string, data any) (int, bool) {
	switch dtype {
	case "float32":
		d, ok := data.([]float32)
		return len(d), ok
	case "float16":
		d, ok := data.([]uint16)
		return len(d), ok
	case "float64":
		d, ok := data.([]float64)
		return len(d), ok
	case "int8":
		d, ok := data.([]int8)
		return len(d), ok
	case "uint8":
		d, ok := data.([]uint8)
		return len(d), ok
	case "int32":
		d, ok := data.([]int32)
		return len(d), ok
	case "int64":
		d, ok := data.([]int64)
		return len(d), ok
	case "bool":
		d, ok := data.([]bool)
		return len(d), ok
	}
	return 0, false
}

func goType(dtype string) string {
	switch dtype {
	case "float16":
		return "[]uint16"
	case "uint8":
		return "[]uint8"
	}
	return "[]" + dtype
}

// Error is the error returned for a file (and, for .npz, a member) that
// cannot be read or written. Its message is one line:
//
//	eval.npz: member x: unsupported dtype <c8
type Error struct {
	Path   string // file as given by the caller
	Member string // .npz member name without ".npy"; empty for .npy files
	Err    error
}

func (e *Error) Error() string {
	if e.Member != "" {
		return fmt.Sprintf("%s: member %s: %v", e.Path, e.Member, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
