// Package dsl parses pqvc recipes (recipe.pqv): the model to compile, the
// data to calibrate and evaluate with, the passes to run in order with their
// options, the outputs to write and the report.
//
// # A recipe
//
//	# DeiT for phones: the paper's pipeline
//	model "deit_fmnist.onnx"
//	calibrate_with "calib.npz"
//	evaluate_with "eval.npz"
//	importance taylor batches=8
//	prune heads ratio=9.375% scope=global ignore=["head", "blocks.0.*"]
//	quantize int8 mode=static per_channel=true target=x86
//	fuse
//	emit onnx "deit_fmnist_int8.onnx"
//	emit ptl "deit.ptl"
//	emit go "deitgo" package=deitgo
//	report "report.md"
//
// # Lines
//
// One statement per line. A statement may continue onto the next line only
// inside a list's brackets. A # starts a comment that runs to the end of the
// line; comments and blank lines may appear anywhere, including inside a
// list. CRLF line endings and a leading UTF-8 byte-order mark are accepted.
//
// # Statements
//
//	model "file"             the model to compile; required, once
//	calibrate_with "file"    calibration data; at most once
//	evaluate_with "file"     evaluation data; at most once
//	PASS [VALUE] [name=value ...]
//	                         run a registered pass (see passes.Names); the
//	                         bare VALUE sets the pass's positional option
//	                         and must come before the name=value options
//	emit FORMAT "path" [name=value ...]
//	                         write the compiled model with the backend
//	                         FORMAT (onnx, ptl, go, ...); the options go to
//	                         the backend as written
//	report "path"            write the compile report; at most once
//
// Passes run in the order written. Inputs (model, calibrate_with,
// evaluate_with) are paths as written. Outputs (emit and report paths) must
// be relative, must not contain "..", and must differ from each other: they
// are written inside the output folder, and a recipe must not be able to
// overwrite files outside it.
//
// # Values
//
//	taylor  x86-64  true      a word: letters, digits, _ and - (not first);
//	                          true and false are words
//	"blocks.0.*"              a string, with Go's escapes (\n \" \\ \u00e9);
//	                          anything that is not a word needs quotes
//	8  -3                     an integer
//	0.5  1e-3  -2.5e+2        a float
//	9.375%                    a percentage: 9.375% is 0.09375
//	[a, "b", 3]               a list; where a list is wanted, a single
//	                          value is a one-element list
//
// Each option has a kind (bool, int, float, enum, string or list) declared
// by its pass, and a value of the wrong kind, outside the option's bounds,
// or not among an enum's words is an error. An integer is accepted where a
// float is wanted. An option may be given once per step, and the
// positional value counts as giving its option.
//
// # Errors
//
// Parse reports every problem it finds, one per line, each starting with
// file:line:col of the offending token (the option's name or value, not
// just the start of the statement). An unknown pass, option, enum word or
// output format comes with the nearest valid one:
//
//	recipe.pqv:5:1: unknown pass "prun"; did you mean "prune"?
//	recipe.pqv:6:19: option ratio of prune must be in [0%, 100%], got 150%
//	recipe.pqv:6:30: unknown scope "glob" for prune; did you mean "global"?
//
// Ordering rules between passes (passes.Ordering: calibrate before
// quantize, say) are checked once the recipe is otherwise valid, and point
// at the step that comes too early.
//
// # Canonical form
//
// Format prints a recipe in canonical form: model, calibrate_with and
// evaluate_with; a blank line; the steps in order; a blank line; the emits
// in order and the report. Words are separated by one space, strings are
// quoted by strconv.Quote, comments are dropped, and pass options are
// printed as passes.FormatOptions does: the positional value, then the
// options that differ from their defaults as name=value in declaration
// order, numbers in shortest form (9.375% becomes 0.09375). Emit options are
// sorted by name. Parsing the canonical form yields a recipe whose
// canonical form is the same text.
package dsl
