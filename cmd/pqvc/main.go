// Command pqvc prunes, quantizes and compiles vision transformers. It is a
// thin wrapper around cli.Main; see the README for usage.
package main

import (
	"os"

	"github.com/pqvc/pqvc/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
