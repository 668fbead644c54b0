package onnx

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/pqvc/pqvc/internal/cleanup"
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

// dataAlign is the alignment of each tensor in an external data file: 4 KiB
// lets a runtime mmap the file and use tensors in place.
const dataAlign = 4096

// Write writes g as an ONNX model at path, and its external data (if any,
// see Options.ExternalDataThreshold) at path + ".data", referenced by its
// base name so the pair can be moved together.
//
// Each file is written to a temporary file in the same folder, synced and
// renamed over the target, so a failed Write leaves no partial file and an
// existing model untouched. The data file is renamed first: there is a short
// window in which a new data file sits next to the old model, which only a
// failing rename inside one folder could leave behind. A stale data file
// from an earlier Write is left alone when the new model needs none.
func Write(path string, g *ir.Graph, opts Options) error {
	if err := write(path, g, opts); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// testHookBeforeRename, when set by a test, runs after the temporary files
// are complete and before they are renamed; an error aborts the Write.
var testHookBeforeRename func() error

func write(path string, g *ir.Graph, opts Options) (err error) {
	if opts.ExternalDataThreshold < 0 {
		return fmt.Errorf("onnx backend: negative ExternalDataThreshold %d", opts.ExternalDataThreshold)
	}
	m, err := model(g, opts)
	if err != nil {
		return err
	}
	threshold := opts.ExternalDataThreshold
	if threshold == 0 && proto.Size(m) > maxInline {
		threshold = defaultExternalThreshold
	}
	dataPath := path + ".data"
	var chunks []chunk
	if threshold > 0 {
		chunks = externalize(m, threshold, filepath.Base(dataPath))
	}
	b, err := marshal(m)
	if err != nil {
		return err
	}
	if len(b) > 1<<31-1 {
		// Possible only with huge graphs of many small tensors.
		return fmt.Errorf("onnx backend: the model is %d bytes even with external data, over protobuf's 2 GiB limit", len(b))
	}
	var temps []string
	defer func() {
		if err != nil {
			for _, t := range temps {
				os.Remove(t)
			}
		}
	}()
	// The temporaries are removed on a signal too, until both are renamed.
	var untrack []func()
	defer func() {
		for _, u := range untrack {
			u()
		}
	}()
	var dataTemp string
	if len(chunks) > 0 {
		if dataTemp, err = writeTemp(dataPath, func(w io.Writer) error { return writeChunks(w, chunks) }); err != nil {
			return err
		}
		temps = append(temps, dataTemp)
		untrack = append(untrack, cleanup.Track(dataTemp))
	}
	modelTemp, err := writeTemp(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	temps = append(temps, modelTemp)
	untrack = append(untrack, cleanup.Track(modelTemp))
	if testHookBeforeRename != nil {
		if err = testHookBeforeRename(); err != nil {
			return err
		}
	}
	// The model and its data are renamed as a pair: a signal waits.
	defer cleanup.Hold()()
	if dataTemp != "" {
		if err = os.Rename(dataTemp, dataPath); err != nil {
			return err
		}
	}
	if err = os.Rename(modelTemp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeTemp creates a temporary file next to final, fills it with fill,
// syncs and closes it, and returns its name. On error the file is removed.
// The file gets final's permissions if final exists, else 0666 less the
// umask, like a file os.Create makes.
func writeTemp(final string, fill func(io.Writer) error) (name string, err error) {
	f, err := createTemp(final)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if st, err := os.Stat(final); err == nil && st.Mode().IsRegular() {
		if err = f.Chmod(st.Mode().Perm()); err != nil {
			return "", err
		}
	}
	if err = fill(f); err != nil {
		return "", fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("syncing %s: %w", f.Name(), err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("closing %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// createTemp is os.CreateTemp with mode 0666 (less the umask) instead of
// 0600, so the renamed file has the permissions a plain create would give.
func createTemp(final string) (*os.File, error) {
	dir, base := filepath.Dir(final), filepath.Base(final)
	for range 100 {
		name := filepath.Join(dir, "."+base+".tmp"+strconv.FormatUint(rand.Uint64()%1e9, 10))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if os.IsExist(err) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("cannot create a temporary file next to %s", final)
}

// syncDir makes a rename in dir durable. It is best effort: some file
// systems cannot sync a directory, and the rename itself has succeeded.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// chunk is one tensor's bytes at its offset in the external data file.
type chunk struct {
	offset int64
	data   []byte
}

// externalize moves the raw data of every initializer of at least threshold
// bytes into chunks of the file location, at 4 KiB-aligned offsets, and
// points the initializers at it.
func externalize(m *onnxpb.ModelProto, threshold int64, location string) []chunk {
	var chunks []chunk
	var end int64
	for _, t := range m.GetGraph().GetInitializer() {
		n := int64(len(t.RawData))
		if n < threshold || n == 0 {
			continue
		}
		off := (end + dataAlign - 1) / dataAlign * dataAlign
		chunks = append(chunks, chunk{offset: off, data: t.RawData})
		end = off + n
		t.RawData = nil
		t.DataLocation = onnxpb.TensorProto_EXTERNAL
		t.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: "location", Value: location},
			{Key: "offset", Value: strconv.FormatInt(off, 10)},
			{Key: "length", Value: strconv.FormatInt(n, 10)},
		}
	}
	return chunks
}

// writeChunks writes the chunks in order, zero-filling the gaps.
func writeChunks(w io.Writer, chunks []chunk) error {
	var pos int64
	zeros := make([]byte, dataAlign)
	for _, c := range chunks {
		if c.offset < pos || c.offset-pos > dataAlign {
			return errors.New("onnx backend: external data chunks out of order (a bug)")
		}
		if _, err := w.Write(zeros[:c.offset-pos]); err != nil {
			return err
		}
		if _, err := w.Write(c.data); err != nil {
			return err
		}
		pos = c.offset + int64(len(c.data))
	}
	return nil
}
