package onnx

import (
	"errors"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/internal/onnxpb"
)

// Reading a 330 MB DeiT-base file whole and then unmarshalling it holds the
// file and a copy of every weight at once: twice the model. readModel
// instead walks the ModelProto's wire format straight from the file and
// unmarshals one initializer at a time from a buffer the size of that one
// tensor, so the peak is the weights plus the largest tensor. Everything
// that is not an initializer (nodes, inputs, metadata: small) is collected
// and unmarshalled as usual. Any surprise in the wire format returns
// errStream, and Load falls back to the whole-file path, whose error
// messages are the ones users see for corrupt files.

// errStream means the file is not laid out as readModel expects.
var errStream = errors.New("not streamable")

const (
	modelGraphField       = 7 // ModelProto.graph
	graphInitializerField = 5 // GraphProto.initializer
)

// readModel decodes the model in f (size bytes) field by field.
func readModel(f *os.File, size int64) (*onnxpb.ModelProto, error) {
	r := &wireReader{f: f, size: size}
	var rest []byte // ModelProto fields other than graph
	var graph *onnxpb.GraphProto
	for off := int64(0); off < size; {
		num, typ, hdr, n, err := r.field(off)
		if err != nil {
			return nil, err
		}
		if num == modelGraphField && typ == protowire.BytesType {
			if graph != nil {
				return nil, errStream // a repeated graph field merges; leave that to proto
			}
			if graph, err = r.graph(off+int64(hdr), int64(n)); err != nil {
				return nil, err
			}
		} else if rest, err = r.appendField(rest, off, hdr, n); err != nil {
			return nil, err
		}
		off += int64(hdr) + int64(n)
	}
	var m onnxpb.ModelProto
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(rest, &m); err != nil {
		return nil, errStream
	}
	m.Graph = graph
	return &m, nil
}

// wireReader reads protobuf fields from a file by offset.
type wireReader struct {
	f    *os.File
	size int64
}

// field reads the header of the field at off: its number and wire type,
// the header's length and the payload's length.
func (r *wireReader) field(off int64) (protowire.Number, protowire.Type, int, int, error) {
	var buf [20]byte
	k, err := r.f.ReadAt(buf[:min(int64(len(buf)), r.size-off)], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, 0, 0, fmt.Errorf("reading at byte %d: %w", off, err)
	}
	b := buf[:k]
	num, typ, tl := protowire.ConsumeTag(b)
	if tl < 0 {
		return 0, 0, 0, 0, errStream
	}
	var hdr, n int
	switch typ {
	case protowire.VarintType:
		_, vl := protowire.ConsumeVarint(b[tl:])
		hdr, n = tl, vl
	case protowire.Fixed32Type:
		hdr, n = tl, 4
	case protowire.Fixed64Type:
		hdr, n = tl, 8
	case protowire.BytesType:
		l, ll := protowire.ConsumeVarint(b[tl:])
		if ll < 0 || l > uint64(r.size) {
			return 0, 0, 0, 0, errStream
		}
		hdr, n = tl+ll, int(l)
	default:
		return 0, 0, 0, 0, errStream // groups: not in ONNX
	}
	if n < 0 || off+int64(hdr)+int64(n) > r.size {
		return 0, 0, 0, 0, errStream // truncated
	}
	return num, typ, hdr, n, nil
}

// appendField appends the whole field at off (header and payload) to dst.
func (r *wireReader) appendField(dst []byte, off int64, hdr, n int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, hdr+n)...)
	if _, err := r.f.ReadAt(dst[start:], off); err != nil {
		return nil, fmt.Errorf("reading at byte %d: %w", off, err)
	}
	return dst, nil
}

// graph decodes the GraphProto payload at off (n bytes), one initializer
// at a time.
func (r *wireReader) graph(off, n int64) (*onnxpb.GraphProto, error) {
	var rest, buf []byte
	var inits []*onnxpb.TensorProto
	for end := off + n; off < end; {
		num, typ, hdr, k, err := r.field(off)
		if err != nil {
			return nil, err
		}
		if off+int64(hdr)+int64(k) > end {
			return nil, errStream
		}
		if num == graphInitializerField && typ == protowire.BytesType {
			buf = append(buf[:0], make([]byte, k)...)
			if _, err := r.f.ReadAt(buf, off+int64(hdr)); err != nil {
				return nil, fmt.Errorf("reading at byte %d: %w", off, err)
			}
			// Unmarshal copies bytes fields out of buf, so buf is reused.
			t := new(onnxpb.TensorProto)
			if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(buf, t); err != nil {
				return nil, errStream
			}
			inits = append(inits, t)
		} else if rest, err = r.appendField(rest, off, hdr, k); err != nil {
			return nil, err
		}
		off += int64(hdr) + int64(k)
	}
	var g onnxpb.GraphProto
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(rest, &g); err != nil {
		return nil, errStream
	}
	g.Initializer = inits
	return &g, nil
}
