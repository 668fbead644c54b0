package cli

import (
	"fmt"
	"os"
)

func makeTempDir(near string) (string, error) {
	if st, err := os.Stat(near); err != nil || !st.IsDir() {
		return "", fmt.Errorf("output folder %s does not exist", near)
	}
	return os.MkdirTemp("", "pqvc-out-*")
}

func removeAll(p string) { os.RemoveAll(p) }

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
