package ptl

import (
	"archive/zip"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/pqvc/pqvc/ir"
)

// archiveDir is the folder every record sits in; torch accepts any single
// top-level folder name.
const archiveDir = "pqvc_model/"

// recordAlign is the data alignment torch's own writer uses, so tensor data
// can be mapped in place.
const recordAlign = 64

// storageClass maps an IR dtype to the torch storage class its tensors
// pickle with.
func storageClass(dt ir.DType) (string, bool) {
	switch dt {
	case ir.F32:
		return "FloatStorage", true
	case ir.F64:
		return "DoubleStorage", true
	case ir.F16:
		return "HalfStorage", true
	case ir.I8:
		return "CharStorage", true
	case ir.U8:
		return "ByteStorage", true
	case ir.I32:
		return "IntStorage", true
	case ir.I64:
		return "LongStorage", true
	case ir.Bool:
		return "BoolStorage", true
	}
	return "", false
}

// tensorPickle is t as torch pickles it: a rebuild call over a persistent
// storage reference into constants/.
func tensorPickle(storage pyPersistent, t *ir.Tensor) any {
	shape, stride := shapeStride(t.Shape)
	return pyReduce{
		Func: pyGlobal{"torch._utils", "_rebuild_tensor_v2"},
		Args: pyTuple{storage, 0, shape, stride, false, pyReduce{Func: pyGlobal{"collections", "OrderedDict"}, Args: pyTuple{}}},
	}
}

// shapeStride returns a contiguous tensor's shape and strides as tuples.
func shapeStride(dims []int64) (pyTuple, pyTuple) {
	shape := make(pyTuple, len(dims))
	stride := make(pyTuple, len(dims))
	s := int64(1)
	for d := len(dims) - 1; d >= 0; d-- {
		shape[d] = dims[d]
		stride[d] = s
		s *= dims[d]
	}
	return shape, stride
}

// zipWriter writes stored (uncompressed) records with their data aligned.
type zipWriter struct {
	cw *countWriter
	z  *zip.Writer
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newZipWriter(w io.Writer) *zipWriter {
	cw := &countWriter{w: w}
	return &zipWriter{cw: cw, z: zip.NewWriter(cw)}
}

func (zw *zipWriter) add(name string, data []byte) error {
	name = archiveDir + name
	// Local header: 30 bytes, the name, then the extra field. Pad the extra
	// field (an unregistered id with zero bytes) so the data starts aligned.
	// zip.Writer flushes headers through cw, so cw.n is the header's offset.
	if err := zw.z.Flush(); err != nil {
		return err
	}
	start := zw.cw.n + 30 + int64(len(name)) + 4
	pad := (recordAlign - start%recordAlign) % recordAlign
	extra := make([]byte, 4+pad)
	extra[0], extra[1] = 'F', 'B'
	extra[2], extra[3] = byte(pad), byte(pad>>8)
	fh := &zip.FileHeader{
		Name:               name,
		Method:             zip.Store,
		CRC32:              crc32.ChecksumIEEE(data),
		CompressedSize64:   uint64(len(data)),
		UncompressedSize64: uint64(len(data)),
		Extra:              extra,
	}
	w, err := zw.z.CreateRaw(fh)
	if err != nil {
		return fmt.Errorf("archive record %s: %w", name, err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("archive record %s: %w", name, err)
	}
	return nil
}

func (zw *zipWriter) close() error { return zw.z.Close() }
