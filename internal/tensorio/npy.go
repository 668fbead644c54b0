package tensorio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"codeberg.org/sbinet/npyio/npy"
	"codeberg.org/sbinet/npyio/npy/float16"

	"github.com/pqvc/pqvc/internal/atomicfile"
)

// npyMagic starts every .npy file.
var npyMagic = []byte("\x93NUMPY")

const (
	// maxHeaderLen bounds the header dictionary we accept. numpy itself
	// refuses headers over 10000 bytes by default; an n-d shape needs at
	// most ~22 bytes per dimension.
	maxHeaderLen = 1 << 20

	// arrayAlign is numpy's ARRAY_ALIGN: header+preamble is padded to it.
	arrayAlign = 64

	// growthAxisMaxDigits is numpy's GROWTH_AXIS_MAX_DIGITS: np.save leaves
	// that much room after the header for the first dimension to grow.
	growthAxisMaxDigits = 21
)

// ReadNpy reads the .npy file at path.
func ReadNpy(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Path: path, Err: unwrapPathError("open", err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &Error{Path: path, Err: unwrapPathError("stat", err)}
	}
	if st.IsDir() {
		return nil, &Error{Path: path, Err: errors.New("is a directory")}
	}
	a, err := decodeNpy(bufio.NewReaderSize(f, 1<<16), st.Size())
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	return a, nil
}

// WriteNpy writes a to path in .npy format (version 1.0, C order,
// little-endian, byte-identical to np.save). The file is written to a
// temporary name in the same directory and renamed into place.
func WriteNpy(path string, a *Array) error {
	if err := a.Validate(); err != nil {
		return &Error{Path: path, Err: err}
	}
	err := writeFileAtomic(path, func(w io.Writer) error { return encodeNpy(w, a) })
	if err != nil {
		return &Error{Path: path, Err: err}
	}
	return nil
}

// unwrapPathError turns "open x.npy: no such file" into "open: no such file"
// since the caller prefixes the path itself.
func unwrapPathError(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", op, pe.Err)
	}
	return err
}

// writeFileAtomic writes path through a temporary file in the same
// directory that is synced and renamed (internal/atomicfile), so that a
// reader never sees a half-written file.
func writeFileAtomic(path string, write func(w io.Writer) error) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<16)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// safely runs f, turning a panic inside npyio into an error.
func safely(what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			// Worded for users: the input is bad, not pqvc.
			err = fmt.Errorf("%s: not readable (%v)", what, p)
		}
	}()
	return f()
}

// decodeNpy decodes one .npy stream. size is the number of bytes the stream
// holds (the file size, or the member's declared size in a zip); it bounds
// every allocation made before data has actually been read.
func decodeNpy(r io.Reader, size int64) (*Array, error) {
	a, _, err := decodeNpyMaybe(r, size, nil)
	return a, err
}

// decodeNpyMaybe is decodeNpy, except that when leave (if not nil) says so
// after the header, the data is read through, which checks its length and
// a zip member's CRC, but not kept: the Array returned has nil Data, and
// off is where the data begins in the stream.
func decodeNpyMaybe(r io.Reader, size int64, leave func(descr string, shape []int, fortran bool) bool) (*Array, int64, error) {
	// Preamble: magic, major, minor, header length (2 bytes in v1, 4 in v2/v3).
	pre := make([]byte, 12)
	if size < 10 {
		return nil, 0, fmt.Errorf("truncated: %d bytes is too short for a .npy file", size)
	}
	if _, err := io.ReadFull(r, pre[:10]); err != nil {
		return nil, 0, readErr("preamble", err)
	}
	if !bytes.Equal(pre[:6], npyMagic) {
		return nil, 0, fmt.Errorf("not a .npy file (bad magic %q)", pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlen int64
	switch major {
	case 1:
		pre = pre[:10]
		hlen = int64(binary.LittleEndian.Uint16(pre[8:10]))
	case 2, 3:
		if major == 3 {
			return nil, 0, fmt.Errorf("unsupported .npy format version 3.%d (utf-8 header)", minor)
		}
		if _, err := io.ReadFull(r, pre[10:12]); err != nil {
			return nil, 0, readErr("preamble", err)
		}
		hlen = int64(binary.LittleEndian.Uint32(pre[8:12]))
	default:
		return nil, 0, fmt.Errorf("unsupported .npy format version %d.%d", major, minor)
	}
	if hlen > maxHeaderLen {
		return nil, 0, fmt.Errorf("header length %d is too large", hlen)
	}
	dataOff := int64(len(pre)) + hlen
	if dataOff > size {
		return nil, 0, fmt.Errorf("truncated: header length %d exceeds file size %d", hlen, size)
	}
	hdr := make([]byte, len(pre)+int(hlen))
	copy(hdr, pre)
	if _, err := io.ReadFull(r, hdr[len(pre):]); err != nil {
		return nil, 0, readErr("header", err)
	}
	if bytes.IndexByte(hdr[len(pre):], '\n') < 0 {
		return nil, 0, errors.New("corrupt header: no terminating newline")
	}

	// Header dictionary, parsed by npyio, which expects a closed {...}.
	var h npy.Header
	err := errors.New("the dictionary is not enclosed in { }")
	if d := bytes.TrimSpace(hdr[len(pre):]); len(d) >= 2 && d[0] == '{' && d[len(d)-1] == '}' {
		err = nil
	}
	if err == nil {
		err = safely("header", func() error {
			hr, err := npy.NewReader(bytes.NewReader(hdr))
			if err != nil {
				return err
			}
			h = hr.Header
			return nil
		})
	}
	if err != nil {
		dict := strings.TrimSpace(string(hdr[len(pre):]))
		if len(dict) > 120 {
			dict = dict[:120] + "..."
		}
		return nil, 0, fmt.Errorf("corrupt header %q: %v", dict, err)
	}
	descr, ok := unquote(h.Descr.Type)
	if !ok {
		return nil, 0, fmt.Errorf("unsupported dtype %s", h.Descr.Type)
	}
	dtype, ok := dtypeByDescr[descr]
	if !ok {
		return nil, 0, fmt.Errorf("unsupported dtype %s", descr)
	}
	info := dtypeByName[dtype]
	shape := append([]int{}, h.Descr.Shape...)
	n, err := NumElements(shape)
	if err != nil {
		return nil, 0, err
	}
	if n > maxInt/info.size {
		return nil, 0, fmt.Errorf("shape %v: byte size overflows", shape)
	}
	nbytes := int64(n) * int64(info.size)
	switch avail := size - dataOff; {
	case nbytes > avail:
		return nil, 0, fmt.Errorf("truncated: shape %v of %s needs %d data bytes, only %d present", shape, dtype, nbytes, avail)
	case nbytes < avail:
		return nil, 0, fmt.Errorf("corrupt: %d trailing bytes after the %d data bytes of shape %v", avail-nbytes, nbytes, shape)
	}

	if leave != nil && leave(descr, shape, h.Descr.Fortran) {
		// Read through without keeping: the length and, in a zip, the CRC
		// are checked now, so a lazy reader later trusts the bytes.
		switch k, err := io.CopyN(io.Discard, r, nbytes); {
		case k < nbytes:
			return nil, 0, fmt.Errorf("truncated: shape %v of %s needs %d data bytes, only %d present", shape, dtype, nbytes, k)
		case err != nil:
			return nil, 0, readErr("data", err)
		}
		if err := expectEOF(r); err != nil {
			return nil, 0, err
		}
		return &Array{DType: dtype, Shape: shape}, dataOff, nil
	}

	// Data, decoded by npyio from exactly nbytes of the stream.
	var arr npy.Array
	err = safely("data", func() error {
		dr, err := npy.NewReader(io.MultiReader(bytes.NewReader(hdr), io.LimitReader(r, nbytes)))
		if err != nil {
			return err
		}
		return dr.Read(&arr)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("reading data: %v", err)
	}
	data, got := fromNpyio(dtype, arr.Data())
	if got < 0 {
		return nil, 0, fmt.Errorf("reading data: npyio returned %T for dtype %s", arr.Data(), descr)
	}
	if got != n {
		return nil, 0, fmt.Errorf("truncated: shape %v of %s needs %d data bytes, only %d present", shape, dtype, nbytes, int64(got)*int64(info.size))
	}
	if err := expectEOF(r); err != nil {
		return nil, 0, err
	}
	if h.Descr.Fortran && len(shape) > 1 {
		data = fortranToC(data, shape)
	}
	return &Array{DType: dtype, Shape: shape, Data: data}, dataOff, nil
}

// expectEOF checks that the stream ends here; reading on also makes
// archive/zip verify the member's CRC.
func expectEOF(r io.Reader) error {
	var one [1]byte
	switch k, err := io.ReadFull(r, one[:]); {
	case k > 0:
		return errors.New("corrupt: more data than the header's shape describes")
	case err != io.EOF:
		return readErr("data", err)
	}
	return nil
}

// readErr phrases a read failure; EOF means the file is shorter than its
// header says.
func readErr(part string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated %s", part)
	}
	return fmt.Errorf("reading %s: %v", part, err)
}

// unquote strips the quotes of a simple descr such as '<f4'.
func unquote(s string) (string, bool) {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1], true
	}
	return s, false
}

// fromNpyio converts the slice npyio decoded into our Data type, returning
// its length, or -1 if the Go type is not the one expected for dtype.
func fromNpyio(dtype string, v any) (any, int) {
	switch d := v.(type) {
	case []float16.Num:
		if dtype != "float16" {
			return nil, -1
		}
		out := make([]uint16, len(d))
		for i, x := range d {
			out[i] = x.Uint16()
		}
		return out, len(out)
	case []float32, []float64, []int8, []uint8, []int32, []int64, []bool:
		if n, ok := dataLen(dtype, d); ok {
			return d, n
		}
	}
	return nil, -1
}

// fortranToC reorders column-major data of the given shape into row-major.
func fortranToC(data any, shape []int) any {
	switch d := data.(type) {
	case []float32:
		return transposeF(d, shape)
	case []uint16:
		return transposeF(d, shape)
	case []float64:
		return transposeF(d, shape)
	case []int8:
		return transposeF(d, shape)
	case []uint8:
		return transposeF(d, shape)
	case []int32:
		return transposeF(d, shape)
	case []int64:
		return transposeF(d, shape)
	case []bool:
		return transposeF(d, shape)
	}
	panic(fmt.Sprintf("tensorio: fortranToC: unexpected %T", data))
}

func transposeF[T any](src []T, shape []int) []T {
	dst := make([]T, len(src))
	if len(src) == 0 {
		return dst
	}
	nd := len(shape)
	stride := make([]int, nd) // Fortran strides in elements
	s := 1
	for i, d := range shape {
		stride[i] = s
		s *= d
	}
	idx := make([]int, nd)
	off := 0
	for i := range dst {
		dst[i] = src[off]
		for k := nd - 1; k >= 0; k-- { // C-order odometer
			idx[k]++
			off += stride[k]
			if idx[k] < shape[k] {
				break
			}
			off -= stride[k] * shape[k]
			idx[k] = 0
		}
	}
	return dst
}

// npyHeader returns the preamble and header np.save (numpy >= 1.24) writes
// for a C-ordered array of the given descr and shape.
func npyHeader(descr string, shape []int) []byte {
	var sb strings.Builder
	sb.WriteString("{'descr': '")
	sb.WriteString(descr)
	sb.WriteString("', 'fortran_order': False, 'shape': ")
	sb.WriteString(shapeRepr(shape))
	sb.WriteString(", }")
	if len(shape) > 0 {
		// numpy leaves room for the first dimension to grow in place.
		if pad := growthAxisMaxDigits - len(strconv.Itoa(shape[0])); pad > 0 {
			sb.WriteString(strings.Repeat(" ", pad))
		}
	}
	dict := sb.String()
	hlen := len(dict) + 1 // + '\n'
	preLen := 10
	padlen := arrayAlign - (preLen+hlen)%arrayAlign
	if hlen+padlen > math.MaxUint16 {
		preLen = 12 // version 2.0: 4-byte header length
		padlen = arrayAlign - (preLen+hlen)%arrayAlign
	}
	out := make([]byte, 0, preLen+hlen+padlen)
	out = append(out, npyMagic...)
	if preLen == 10 {
		out = append(out, 1, 0)
		out = binary.LittleEndian.AppendUint16(out, uint16(hlen+padlen))
	} else {
		out = append(out, 2, 0)
		out = binary.LittleEndian.AppendUint32(out, uint32(hlen+padlen))
	}
	out = append(out, dict...)
	out = append(out, bytes.Repeat([]byte{' '}, padlen)...)
	return append(out, '\n')
}

// shapeRepr formats shape like Python's repr of a tuple.
func shapeRepr(shape []int) string {
	switch len(shape) {
	case 0:
		return "()"
	case 1:
		return "(" + strconv.Itoa(shape[0]) + ",)"
	}
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// encodeNpy writes a (already validated) in .npy format.
func encodeNpy(w io.Writer, a *Array) error {
	if _, err := w.Write(npyHeader(dtypeByName[a.DType].descr, a.Shape)); err != nil {
		return err
	}
	const chunk = 1 << 14 // elements per binary.Write call
	switch d := a.Data.(type) {
	case []float32:
		return writeChunks(w, d, chunk)
	case []uint16:
		return writeChunks(w, d, chunk)
	case []float64:
		return writeChunks(w, d, chunk)
	case []int8:
		return writeChunks(w, d, chunk)
	case []uint8:
		_, err := w.Write(d)
		return err
	case []int32:
		return writeChunks(w, d, chunk)
	case []int64:
		return writeChunks(w, d, chunk)
	case []bool:
		return writeChunks(w, d, chunk)
	}
	return fmt.Errorf("unsupported Data type %T", a.Data)
}

// littleEndianHost is true where Go's in-memory layout of numbers is the
// .npy byte order, so that slices can be written without conversion.
var littleEndianHost = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func writeChunks[T any](w io.Writer, d []T, chunk int) error {
	if littleEndianHost {
		// Go bools are stored as single 0/1 bytes, numbers in host order.
		var zero T
		raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), len(d)*int(unsafe.Sizeof(zero)))
		_, err := w.Write(raw)
		return err
	}
	for len(d) > 0 {
		k := min(chunk, len(d))
		if err := binary.Write(w, binary.LittleEndian, d[:k]); err != nil {
			return err
		}
		d = d[k:]
	}
	return nil
}
