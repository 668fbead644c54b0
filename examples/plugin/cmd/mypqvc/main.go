// Command mypqvc is pqvc plus the add_softmax plugin: importing the plugin
// package registers its pass, and cli.Main is the whole pqvc command line.
package main

import (
	"os"

	"github.com/pqvc/pqvc/cli"

	_ "example.com/pqvcplugin/softmaxout" // registers add_softmax
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
