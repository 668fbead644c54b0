package dsl

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The grammar is deliberately generic: every statement is a word followed by
// arguments, and each argument is a value or name=value. Which words are
// keywords (model, emit, ...) and what arguments they take is decided in
// lower.go, where a mistake gets a message written for people ("model wants a
// file name in quotes") instead of a grammar production name. The grammar
// only knows lines, values and lists.
//
//	file  = { [stmt] newline } [stmt] .
//	stmt  = ident { arg } .
//	arg   = [ ident "=" ] value .
//	value = ident | string | number | list .
//	list  = "[" [ value { "," value } [ "," ] ] "]" .   (newlines allowed inside)

// recipeLexer turns newlines into tokens because a statement ends at the end
// of its line. Rules are tried in order, so String must precede BadString
// and the catch-all Other comes last: lexing never fails, and parse.go turns
// BadString and Other into errors that say what is wrong ("unterminated
// string") rather than participle's generic "invalid input text".
var recipeLexer = lexer.MustSimple([]lexer.SimpleRule{
	{Name: "Comment", Pattern: `#[^\n]*`},
	{Name: "String", Pattern: `"(\\.|[^"\\\n])*"`},
	{Name: "BadString", Pattern: `"(\\.|[^"\\\n])*`},
	// A number may carry a sign, an exponent and a trailing % (9.375%).
	{Name: "Number", Pattern: `[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?%?`},
	// Words may contain '-' after the first character (x86-64) because
	// passes.FormatOptions prints such strings bare.
	{Name: "Ident", Pattern: `[A-Za-z_][A-Za-z0-9_-]*`},
	{Name: "Punct", Pattern: `[=\[\],]`},
	{Name: "Newline", Pattern: `\n`},
	// \r is whitespace so that CRLF files parse like LF files.
	{Name: "Whitespace", Pattern: `[ \t\r]+`},
	{Name: "Other", Pattern: `.`},
})

// fileAST is a whole recipe.
type fileAST struct {
	Pos   lexer.Position
	Stmts []*stmtAST `parser:"( @@ | Newline )*"`
}

// stmtAST is one line: a keyword or pass name and its arguments. Arguments
// cannot cross a newline (outside a list), which is what makes a statement
// end at the end of its line.
type stmtAST struct {
	Pos  lexer.Position
	Word string    `parser:"@Ident"`
	Args []*argAST `parser:"@@*"`
}

// argAST is a positional value or name=value. Telling the two apart needs
// two tokens of lookahead (see the parser options).
type argAST struct {
	Pos   lexer.Position
	Name  *string   `parser:"( @Ident '=' )?"`
	Value *valueAST `parser:"@@"`
}

// valueAST is one value. Number keeps its text; lower.go classifies it as an
// integer, float or percentage.
type valueAST struct {
	Pos    lexer.Position
	Ident  *string  `parser:"  @Ident"`
	String *string  `parser:"| @String"`
	Number *string  `parser:"| @Number"`
	List   *listAST `parser:"| @@"`
}

// listAST is [v, v, ...]; newlines are allowed between items so long
// pattern lists can be written one per line.
type listAST struct {
	Pos   lexer.Position
	Items []*valueAST `parser:"'[' Newline* ( @@ Newline* ( ',' Newline* @@ Newline* )* ( ',' Newline* )? )? ']'"`
}

var parser = participle.MustBuild[fileAST](
	participle.Lexer(recipeLexer),
	participle.Elide("Comment", "Whitespace"),
	participle.UseLookahead(2),
)
