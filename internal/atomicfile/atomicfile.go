// Package atomicfile writes files so that readers see either the old
// content or the complete new content, never a partial file: data goes to a
// temporary file in the same folder, is synced, and is renamed over the
// target. A failed write removes the temporary file and leaves any existing
// target untouched.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pqvc/pqvc/internal/cleanup"
)

// Write calls fill with a writer for a temporary file next to path, then
// syncs and renames it to path. Mode is 0644.
func Write(path string, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("output folder %s: %w", dir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("output folder %s is not a folder", dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a folder", path)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer cleanup.Track(tmp)()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return nil
}

// WriteFile writes data atomically to path.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
