package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// checkOutputFile refuses an output path before any work is done: its
// folder must exist, and the path itself must not be a folder.
func checkOutputFile(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("output folder %s does not exist", dir)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("output folder %s is a file", dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("output %s is a folder, not a file", path)
	}
	return nil
}
