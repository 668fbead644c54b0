package dsl

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Position is a place in a recipe. Line and Col are 1-based; Col counts
// runes, so a tab or an é is one column.
type Position struct {
	File      string
	Line, Col int
}

// String returns "file:line:col", the prefix of every recipe error and the
// form passes.Step.Pos expects.
func (p Position) String() string {
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// short is "line:col", for a second position inside a message ("first at
// 3:1"): the file is already at the front of the line.
func (p Position) short() string {
	return fmt.Sprintf("%d:%d", p.Line, p.Col)
}

func (p Position) less(q Position) bool {
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Col < q.Col
}

func posOf(lp lexer.Position) Position {
	return Position{File: lp.Filename, Line: lp.Line, Col: lp.Column}
}

// Error is one problem in a recipe, at the token that causes it.
type Error struct {
	Pos Position
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem Parse found, in source order. Its Error is one
// line per problem, so a user fixes a recipe in one round rather than one
// error per run.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find the individual *Error values.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Parse parses a recipe, resolves its passes and type-checks their options.
// formats lists the output formats emit may name (nil accepts any word, for
// tools that only reformat). filename is used in positions only. The error,
// if any, is an ErrorList.
func Parse(filename string, src []byte, formats []string) (*Recipe, error) {
	if filename == "" {
		filename = "<recipe>"
	}
	// A UTF-8 byte-order mark, as some Windows editors write, is not part of
	// the recipe.
	src = bytes.TrimPrefix(src, []byte("\ufeff"))
	toks, err := lexAll(filename, src)
	if err != nil {
		return nil, err
	}
	ast, err := parser.ParseBytes(filename, src)
	if err != nil {
		return nil, syntaxError(filename, toks, err)
	}
	return lower(filename, ast, formats)
}

var (
	symbols    = recipeLexer.Symbols()
	tokNewline = symbols["Newline"]
	tokString  = symbols["String"]
	tokBad     = symbols["BadString"]
	tokOther   = symbols["Other"]
	tokSpace   = symbols["Whitespace"]
	tokComment = symbols["Comment"]
)

// lexAll returns the significant tokens (EOF last) after reporting the
// tokens the grammar never accepts, with a message naming the problem.
func lexAll(filename string, src []byte) ([]lexer.Token, error) {
	l, err := recipeLexer.LexString(filename, string(src))
	if err != nil {
		return nil, ErrorList{{Pos: Position{File: filename, Line: 1, Col: 1}, Msg: err.Error()}}
	}
	all, err := lexer.ConsumeAll(l)
	if err != nil {
		// Unreachable: the Other rule matches any character.
		return nil, ErrorList{{Pos: Position{File: filename, Line: 1, Col: 1}, Msg: err.Error()}}
	}
	var toks []lexer.Token
	for i, t := range all {
		switch t.Type {
		case tokSpace, tokComment:
			continue
		case tokBad:
			return nil, ErrorList{{Pos: posOf(t.Pos), Msg: "unterminated string: a string must end with \" on the line it starts"}}
		}
		if glued(all, i) {
			return nil, ErrorList{gluedError(src, all, i)}
		}
		if t.Type == tokOther {
			return nil, ErrorList{{Pos: posOf(t.Pos), Msg: fmt.Sprintf("unexpected character %q", t.Value)}}
		}
		toks = append(toks, t)
	}
	return toks, nil
}

// word reports whether t is part of a value (not punctuation, layout or a
// comment).
func word(t lexer.Token) bool {
	switch t.Type {
	case tokSpace, tokComment, tokNewline:
		return false
	}
	return !t.EOF() && (t.Type == tokOther || !strings.Contains("=[],", t.Value))
}

// glued reports whether all[i] starts a run of value tokens with no space
// between them, such as blocks.0 (a word and the number .0) or 8x. Without
// this check the parser would see two values and complain about the
// second in terms of positional arguments, which misleads.
func glued(all []lexer.Token, i int) bool {
	if !word(all[i]) || i+1 >= len(all) || !word(all[i+1]) {
		return false
	}
	return i == 0 || !word(all[i-1])
}

func gluedError(src []byte, all []lexer.Token, i int) *Error {
	j := i + 1
	hasString := false
	for ; j < len(all) && word(all[j]); j++ {
	}
	for _, t := range all[i:j] {
		hasString = hasString || t.Type == tokString
	}
	if hasString {
		return &Error{Pos: posOf(all[i+1].Pos), Msg: fmt.Sprintf("missing space between %s and %s", printable(all[i].Value), printable(all[i+1].Value))}
	}
	run := string(src[all[i].Pos.Offset:all[j].Pos.Offset])
	return &Error{Pos: posOf(all[i].Pos), Msg: fmt.Sprintf("%q must be in quotes: a bare word holds only letters, digits, _ and -", run)}
}

// syntaxError rewrites participle's error ("unexpected token X (expected
// <production>)") into one that says what the recipe was expected to hold
// there, judged from the token before the offending one and whether it sits
// inside a list.
func syntaxError(filename string, toks []lexer.Token, err error) error {
	var perr participle.Error
	if !errors.As(err, &perr) {
		return ErrorList{{Pos: Position{File: filename, Line: 1, Col: 1}, Msg: err.Error()}}
	}
	at := perr.Position()
	i := sort.Search(len(toks), func(i int) bool { return toks[i].Pos.Offset >= at.Offset })
	if i == len(toks) {
		return ErrorList{{Pos: posOf(at), Msg: perr.Message()}}
	}
	tok := toks[i]
	// Track open lists up to the offending token.
	var open []lexer.Position
	for _, t := range toks[:i] {
		switch t.Value {
		case "[":
			open = append(open, t.Pos)
		case "]":
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		}
	}
	prev := ""
	for j := i - 1; j >= 0; j-- {
		if toks[j].Type != tokNewline || len(open) == 0 {
			prev = tokenKind(toks[j])
			break
		}
	}
	what := describe(tok)
	if len(open) > 0 {
		list := open[len(open)-1]
		if tok.EOF() {
			// Point at the [ : the fix belongs somewhere after it, and the
			// end of the file may be far away.
			return ErrorList{{Pos: posOf(list), Msg: "list is never closed with ]"}}
		}
		want := ", or ]"
		if prev == "[" || prev == "," {
			want = "a value or ]"
		}
		msg := fmt.Sprintf("unexpected %s in list; want %s", what, want)
		if list.Line != tok.Pos.Line {
			// A list left open swallows the lines after it; say where it
			// began.
			msg += fmt.Sprintf(" (list opened at %s)", posOf(list).short())
		}
		return ErrorList{{Pos: posOf(tok.Pos), Msg: msg}}
	}
	var msg string
	switch {
	case prev == "=":
		msg = fmt.Sprintf("unexpected %s after =; want a value", what)
	case prev == "" || prev == "newline":
		msg = fmt.Sprintf("unexpected %s; a statement starts with a pass name or a keyword", what)
	case tok.Value == "]":
		msg = "unexpected ] without a matching ["
	case tok.Value == "=":
		msg = `unexpected "="; an option is written name=value`
	case tok.Value == ",":
		msg = `unexpected ","; options are separated by spaces, list items by commas inside [ ]`
	default:
		msg = fmt.Sprintf("unexpected %s", what)
	}
	return ErrorList{{Pos: posOf(tok.Pos), Msg: msg}}
}

func tokenKind(t lexer.Token) string {
	switch {
	case t.Type == tokNewline:
		return "newline"
	case t.Type == tokString:
		return "string"
	}
	return t.Value
}

func describe(t lexer.Token) string {
	switch {
	case t.EOF():
		return "end of file"
	case t.Type == tokNewline:
		return "end of line"
	case t.Type == tokString:
		return "string " + printable(t.Value)
	}
	return fmt.Sprintf("%q", t.Value)
}

// printable escapes the control characters a string token may hold, so an
// error stays one readable line.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strconv.IsGraphic(r) {
			b.WriteRune(r)
		} else {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}
