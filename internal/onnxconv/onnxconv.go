// Package onnxconv converts between ONNX protobuf tensors and types and the
// IR's, for the ONNX frontend and backend alike.
package onnxconv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

var toIR = map[onnxpb.TensorProto_DataType]ir.DType{
	onnxpb.TensorProto_FLOAT: ir.F32, onnxpb.TensorProto_FLOAT16: ir.F16, onnxpb.TensorProto_INT8: ir.I8,
	onnxpb.TensorProto_UINT8: ir.U8, onnxpb.TensorProto_INT32: ir.I32, onnxpb.TensorProto_INT64: ir.I64,
	onnxpb.TensorProto_BOOL: ir.Bool, onnxpb.TensorProto_DOUBLE: ir.F64,
}

// DType maps an ONNX data type to the IR's.
func DType(dt int32) (ir.DType, error) {
	if d, ok := toIR[onnxpb.TensorProto_DataType(dt)]; ok {
		return d, nil
	}
	name := onnxpb.TensorProto_DataType(dt).String()
	return ir.Invalid, fmt.Errorf("unsupported element type %s", name)
}

// ONNXType maps an IR dtype to ONNX's.
func ONNXType(d ir.DType) int32 {
	for k, v := range toIR {
		if v == d {
			return int32(k)
		}
	}
	return 0
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Tensor decodes a TensorProto. External data is read relative to dir.
// raw_data is reinterpreted in place where alignment allows, so a large
// model's weights are not copied a second time.
func Tensor(t *onnxpb.TensorProto, dir string) (*ir.Tensor, error) {
	dt, err := DType(t.GetDataType())
	if err != nil {
		return nil, err
	}
	dims := t.GetDims()
	n, err := ir.CheckedNumElements(dims)
	if err != nil {
		return nil, err
	}
	if t.GetSegment() != nil {
		return nil, fmt.Errorf("segmented tensors are not supported")
	}
	raw := t.GetRawData()
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		if raw, err = readExternal(t, dir, n*int64(dt.Size())); err != nil {
			return nil, err
		}
	}
	if raw != nil || t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		if int64(len(raw)) != n*int64(dt.Size()) {
			return nil, fmt.Errorf("raw data has %d bytes, %v%v needs %d", len(raw), dt, dims, n*int64(dt.Size()))
		}
		if dt == ir.F32 && littleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%4 == 0 && n > 0 {
			f := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(raw))), n)
			return &ir.Tensor{DType: dt, Shape: dims, Data: f}, nil
		}
		return ir.TensorFromRaw(dt, dims, raw)
	}
	count := func(have int) error {
		if int64(have) != n {
			return fmt.Errorf("has %d values, %v%v needs %d", have, dt, dims, n)
		}
		return nil
	}
	// Check the value count before allocating: a corrupt file may claim
	// huge dims with no data behind them.
	var have int
	switch dt {
	case ir.F32:
		have = len(t.GetFloatData())
	case ir.F64:
		have = len(t.GetDoubleData())
	case ir.I64:
		have = len(t.GetInt64Data())
	default:
		have = len(t.GetInt32Data())
	}
	if err := count(have); err != nil {
		return nil, err
	}
	out, err := ir.NewTensor(dt, dims)
	if err != nil {
		return nil, err
	}
	switch d := out.Data.(type) {
	case []float32:
		if err := count(len(t.GetFloatData())); err != nil {
			return nil, err
		}
		copy(d, t.GetFloatData())
	case []float64:
		if err := count(len(t.GetDoubleData())); err != nil {
			return nil, err
		}
		copy(d, t.GetDoubleData())
	case []int64:
		if err := count(len(t.GetInt64Data())); err != nil {
			return nil, err
		}
		copy(d, t.GetInt64Data())
	default:
		src := t.GetInt32Data()
		if err := count(len(src)); err != nil {
			return nil, err
		}
		for i, x := range src {
			switch d := d.(type) {
			case []int32:
				d[i] = x
			case []int8:
				d[i] = int8(x)
			case []uint8:
				d[i] = uint8(x)
			case []uint16:
				d[i] = uint16(x)
			case []bool:
				d[i] = x != 0
			}
		}
	}
	return out, nil
}

// readExternal reads a tensor's bytes from its external data file. Locations
// must stay inside the model's folder, as the ONNX checker requires.
func readExternal(t *onnxpb.TensorProto, dir string, want int64) ([]byte, error) {
	var loc string
	offset, length := int64(0), int64(-1)
	for _, kv := range t.GetExternalData() {
		var err error
		switch kv.GetKey() {
		case "location":
			loc = kv.GetValue()
		case "offset":
			offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("external data %s: %w", kv.GetKey(), err)
		}
	}
	if loc == "" {
		return nil, fmt.Errorf("external data has no location")
	}
	if filepath.IsAbs(loc) || strings.Contains(filepath.ToSlash(loc), "../") || strings.HasPrefix(loc, "..") {
		return nil, fmt.Errorf("external data location %q leaves the model's folder", loc)
	}
	if length < 0 {
		length = want
	}
	if length != want || offset < 0 {
		return nil, fmt.Errorf("external data %q: length %d at offset %d, tensor needs %d bytes", loc, length, offset, want)
	}
	f, err := os.Open(filepath.Join(dir, loc))
	if err != nil {
		return nil, fmt.Errorf("external data: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() < offset+length {
		return nil, fmt.Errorf("external data %q is shorter than offset %d + length %d", loc, offset, length)
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, offset); err != nil {
		return nil, fmt.Errorf("external data %q: reading %d bytes at offset %d: %w", loc, length, offset, err)
	}
	return buf, nil
}

// Proto encodes an IR tensor as a TensorProto with raw_data.
func Proto(name string, t *ir.Tensor) (*onnxpb.TensorProto, error) {
	if t.Opaque() {
		return nil, fmt.Errorf("tensor %q: data not available", name)
	}
	p := &onnxpb.TensorProto{Name: name, Dims: append([]int64{}, t.Shape...), DataType: ONNXType(t.DType)}
	if p.DataType == 0 {
		return nil, fmt.Errorf("tensor %q: dtype %v has no ONNX equivalent", name, t.DType)
	}
	if f, ok := t.Data.([]float32); ok && littleEndian && len(f) > 0 {
		// Share the bytes: marshalling copies them once into the output.
		p.RawData = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
		return p, nil
	}
	p.RawData = t.RawBytes()
	return p, nil
}
