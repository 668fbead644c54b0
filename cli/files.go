package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pqvc/pqvc/internal/cleanup"
)

func makeTempDir(near string) (string, error) {
	if st, err := os.Stat(near); err != nil || !st.IsDir() {
		return "", fmt.Errorf("output folder %s does not exist", near)
	}
	dir, err := os.MkdirTemp("", "pqvc-out-*")
	if err == nil {
		tempDirs[dir] = cleanup.Track(dir)
	}
	return dir, err
}

// tempDirs holds the untrack functions of makeTempDir's folders.
var tempDirs = map[string]func(){}

func removeAll(p string) {
	os.RemoveAll(p)
	if u := tempDirs[p]; u != nil {
		u()
		delete(tempDirs, p)
	}
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

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
