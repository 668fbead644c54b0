//go:build !unix

package cli

// processAlive cannot tell here, so every staging folder is taken to be
// in use and none is removed.
func processAlive(int) bool { return true }
