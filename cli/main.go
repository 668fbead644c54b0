// Package cli is the pqvc command line as a library: cmd/pqvc is a thin
// wrapper around Main, and a user who registers custom passes builds their
// own pqvc by calling Main from their own main package.
package cli

import (
	_ "github.com/pqvc/pqvc/backend/gocode" // the go emit format
	_ "github.com/pqvc/pqvc/backend/onnx"   // the onnx emit format
	_ "github.com/pqvc/pqvc/backend/ptl"    // the ptl emit format
	_ "github.com/pqvc/pqvc/passes/builtin" // every built-in pass

	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/pqvc/pqvc/internal/cleanup"
)

// Exit codes.
const (
	ExitOK    = 0 // success
	ExitError = 1 // bad input or a failed check
	ExitUsage = 2 // usage error
)

// usageError marks errors in how pqvc was called (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

type command struct {
	name    string
	summary string
	run     func(env *Env, args []string) error
}

// Env is what a command writes to.
type Env struct {
	Stdout, Stderr io.Writer
}

var commands = map[string]*command{}

func addCommand(c *command) { commands[c.name] = c }

// Main runs pqvc with args (without the program name) and returns the exit
// code. Bad input never panics out of Main: an unexpected panic is reported
// as an internal error with exit code 1.
func Main(args []string, stdout, stderr io.Writer) (code int) {
	env := &Env{Stdout: stdout, Stderr: stderr}
	// Ctrl-C or a CI timeout removes the run's temporary files and
	// staging folder instead of leaving them in the output folder.
	defer cleanup.OnSignal(stderr, "pqvc")()
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "pqvc: internal error: %v (please report this)\n", r)
			if debugEnabled() {
				stderr.Write(debug.Stack())
			}
			code = ExitError
		}
	}()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		return ExitOK
	}
	name := args[0]
	c := commands[name]
	if c == nil {
		if strings.HasSuffix(name, ".pqv") && commands["recipe"] != nil {
			c, args = commands["recipe"], append([]string{"recipe"}, args...)
		} else {
			fmt.Fprintf(stderr, "pqvc: unknown command %q%s\nRun 'pqvc help' for usage.\n", name, suggest(name))
			return ExitUsage
		}
	}
	err := c.run(env, args[1:])
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "pqvc %s: %s\n", c.name, ue.msg)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "pqvc: %s\n", oneLine(err))
	return ExitError
}

// oneLine folds a joined multi-error into one line, keeping the first
// problem and a count of the rest.
func oneLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%s (and %d more problems)", lines[0], len(lines)-1)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "pqvc prunes, quantizes and compiles vision transformers.")
	fmt.Fprintln(w, "\nUsage:\n  pqvc RECIPE.pqv [flags]   run a recipe\n  pqvc COMMAND [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if commands[n].summary != "" {
			fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
		}
	}
	fmt.Fprintln(w, "\nRun 'pqvc COMMAND -h' for a command's flags.")
}

func suggest(name string) string {
	best, bd := "", 3
	for n := range commands {
		if d := editDistance(name, n); d < bd {
			best, bd = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// parseFlags parses flags that may come before, between or after
// positional arguments (`pqvc run MODEL --input x.npy`), which the flag
// package alone does not allow.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parse parses a command's flags, printing its usage for -h.
func parse(env *Env, fs *flag.FlagSet, args []string, usage string) ([]string, error) {
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(env.Stdout, "usage: pqvc %s\n", usage)
		fs.SetOutput(env.Stdout)
		fs.PrintDefaults()
	}
	return pos, err
}
