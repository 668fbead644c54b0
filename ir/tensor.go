package ir

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// MaxElements bounds the element count of any tensor pqvc will allocate. A
// model that claims more is corrupt or hostile; refusing early turns an
// out-of-memory crash into an error message.
const MaxElements = 1 << 34

// Tensor is dense, row-major data with a concrete shape. Data holds one of
// []float32, []uint16 (f16 bits), []int8, []uint8, []int32, []int64, []bool or
// []float64, matching DType. Tensors are treated as immutable once attached to
// a Const value: passes that change weights build new tensors, so a graph
// can share its data with its clones and with the runtime.
//
// A tensor parsed from a textual dump that printed only a digest has Data ==
// nil (it is opaque); passes that need its values report an error.
type Tensor struct {
	DType DType
	Shape []int64
	Data  any

	hashOnce sync.Once
	hash     string
	digest   string // digest from a parsed dump, for opaque tensors
}

// CheckedNumElements returns the product of dims, refusing negative dims and
// products beyond MaxElements.
func CheckedNumElements(dims []int64) (int64, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in %v", d, dims)
		}
		if d != 0 && n > MaxElements/d {
			return 0, fmt.Errorf("shape %v has more than %d elements", dims, int64(MaxElements))
		}
		n *= d
	}
	if n > MaxElements {
		return 0, fmt.Errorf("shape %v has more than %d elements", dims, int64(MaxElements))
	}
	return n, nil
}

// NewTensor allocates a zero tensor.
// Shapes with more elements than MaxElements, or more bytes than
// MaxTensorBytes, are refused.
func NewTensor(dt DType, shape []int64) (*Tensor, error) {
	n, err := CheckedNumElements(shape)
	if err != nil {
		return nil, err
	}
	if err := checkTensorBytes(dt, shape, n); err != nil {
		return nil, err
	}
	var data any
	switch dt {
	case F32:
		data = make([]float32, n)
	case F16:
		data = make([]uint16, n)
	case I8:
		data = make([]int8, n)
	case U8:
		data = make([]uint8, n)
	case I32:
		data = make([]int32, n)
	case I64:
		data = make([]int64, n)
	case Bool:
		data = make([]bool, n)
	case F64:
		data = make([]float64, n)
	default:
		return nil, fmt.Errorf("cannot allocate tensor of dtype %v", dt)
	}
	return &Tensor{DType: dt, Shape: slices.Clone(shape), Data: data}, nil
}

// MustTensor is NewTensor for sizes known to be valid (a bug otherwise).
func MustTensor(dt DType, shape ...int64) *Tensor {
	t, err := NewTensor(dt, shape)
	if err != nil {
		panic(err)
	}
	return t
}

// F32Tensor wraps data (not copied) as an f32 tensor.
func F32Tensor(shape []int64, data []float32) *Tensor {
	return &Tensor{DType: F32, Shape: shape, Data: data}
}

// I64Tensor wraps data (not copied) as an i64 tensor.
func I64Tensor(shape []int64, data []int64) *Tensor {
	return &Tensor{DType: I64, Shape: shape, Data: data}
}

// ScalarF32 is a rank-0 f32 tensor.
func ScalarF32(v float32) *Tensor { return F32Tensor([]int64{}, []float32{v}) }

// ScalarI64 is a rank-0 i64 tensor.
func ScalarI64(v int64) *Tensor { return I64Tensor([]int64{}, []int64{v}) }

// Opaque reports whether the tensor has no data (parsed from a digest).
func (t *Tensor) Opaque() bool { return t.Data == nil }

// Len is the number of elements.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= int(d)
	}
	return n
}

// Bytes is the size of the data in bytes.
func (t *Tensor) Bytes() int64 { return int64(t.Len()) * int64(t.DType.Size()) }

// Type returns the IR type of the tensor.
func (t *Tensor) Type() Type { return Type{DType: t.DType, Shape: StaticShape(t.Shape...)} }

// F32 returns the data as []float32; it panics if the dtype is not f32 (a bug).
func (t *Tensor) F32() []float32 { return t.Data.([]float32) }

// I64 returns the data as []int64; it panics if the dtype is not i64 (a bug).
func (t *Tensor) I64() []int64 { return t.Data.([]int64) }

// AsInt64s converts integer (or bool) data to int64, for shape arithmetic.
func (t *Tensor) AsInt64s() ([]int64, error) {
	switch d := t.Data.(type) {
	case []int64:
		return d, nil
	case []int32:
		return convert[int32, int64](d), nil
	case []int8:
		return convert[int8, int64](d), nil
	case []uint8:
		return convert[uint8, int64](d), nil
	case []bool:
		out := make([]int64, len(d))
		for i, b := range d {
			if b {
				out[i] = 1
			}
		}
		return out, nil
	case nil:
		return nil, errors.New("constant data not available (opaque tensor)")
	}
	return nil, fmt.Errorf("want integer data, have %v", t.DType)
}

// AsFloat64s converts any numeric data to float64 (f16 decoded).
func (t *Tensor) AsFloat64s() ([]float64, error) {
	switch d := t.Data.(type) {
	case []float32:
		return convert[float32, float64](d), nil
	case []float64:
		return d, nil
	case []uint16:
		out := make([]float64, len(d))
		for i, h := range d {
			out[i] = float64(F16ToF32(h))
		}
		return out, nil
	case []int64:
		return convert[int64, float64](d), nil
	case []int32:
		return convert[int32, float64](d), nil
	case []int8:
		return convert[int8, float64](d), nil
	case []uint8:
		return convert[uint8, float64](d), nil
	case nil:
		return nil, errors.New("constant data not available (opaque tensor)")
	}
	return nil, fmt.Errorf("want numeric data, have %v", t.DType)
}

func convert[A, B int8 | uint8 | int32 | int64 | float32 | float64](in []A) []B {
	out := make([]B, len(in))
	for i, v := range in {
		out[i] = B(v)
	}
	return out
}

// RawBytes encodes the data little-endian, as ONNX raw_data does.
func (t *Tensor) RawBytes() []byte {
	return t.appendRaw(make([]byte, 0, t.Bytes()), 0, t.Len())
}

// appendRaw appends elements lo to hi of the data, little-endian.
func (t *Tensor) appendRaw(buf []byte, lo, hi int) []byte {
	switch d := t.Data.(type) {
	case []float32:
		for _, v := range d[lo:hi] {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	case []float64:
		for _, v := range d[lo:hi] {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
		}
	case []uint16:
		for _, v := range d[lo:hi] {
			buf = binary.LittleEndian.AppendUint16(buf, v)
		}
	case []int8:
		for _, v := range d[lo:hi] {
			buf = append(buf, byte(v))
		}
	case []uint8:
		buf = append(buf, d[lo:hi]...)
	case []int32:
		for _, v := range d[lo:hi] {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
		}
	case []int64:
		for _, v := range d[lo:hi] {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
		}
	case []bool:
		for _, v := range d[lo:hi] {
			if v {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
		}
	}
	return buf
}

// hashChunk is how many elements Digest encodes at a time.
const hashChunk = 1 << 14

// Digest is a stable content hash (dtype, shape, data), used by the printer
// for large constants and by CSE to compare constants cheaply.
func (t *Tensor) Digest() string {
	if t.Data == nil {
		return t.digest
	}
	t.hashOnce.Do(func() {
		h := sha256.New()
		fmt.Fprintf(h, "%v%v", t.DType, t.Shape)
		// In chunks: a whole-tensor copy per constant would double a large
		// model's memory while the printer hashes it.
		var buf []byte
		for lo, n := 0, t.Len(); lo < n; lo += hashChunk {
			buf = t.appendRaw(buf[:0], lo, min(n, lo+hashChunk))
			h.Write(buf)
		}
		t.hash = hex.EncodeToString(h.Sum(nil))[:16]
	})
	return t.hash
}

// TensorFromRaw decodes little-endian bytes into a tensor of dtype and shape.
func TensorFromRaw(dt DType, shape []int64, raw []byte) (*Tensor, error) {
	n, err := CheckedNumElements(shape)
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) != n*int64(dt.Size()) {
		return nil, fmt.Errorf("%d bytes of data for %v%v, want %d", len(raw), dt, shape, n*int64(dt.Size()))
	}
	t, err := NewTensor(dt, shape)
	if err != nil {
		return nil, err
	}
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case []float64:
		for i := range d {
			d[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case []uint16:
		for i := range d {
			d[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
	case []int8:
		for i := range d {
			d[i] = int8(raw[i])
		}
	case []uint8:
		copy(d, raw)
	case []int32:
		for i := range d {
			d[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case []int64:
		for i := range d {
			d[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case []bool:
		for i := range d {
			d[i] = raw[i] != 0
		}
	}
	return t, nil
}

// Reshaped returns a tensor sharing t's data with another shape of the same
// element count.
func (t *Tensor) Reshaped(shape []int64) *Tensor {
	return &Tensor{DType: t.DType, Shape: slices.Clone(shape), Data: t.Data}
}
