package dsl

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/passes"
)

// Recipe is a parsed, checked recipe.
type Recipe struct {
	// File is the name Parse was given; every Position carries it too.
	File string
	// Model is the input model; Calib and Eval the calibration and
	// evaluation datasets ("" when not given). Paths are as written:
	// resolving them against the recipe's folder is the caller's business.
	Model, Calib, Eval          string
	ModelPos, CalibPos, EvalPos Position
	Steps                       []Step
	Emits                       []Emit
	Report                      string // "" when not asked for
	ReportPos                   Position
}

// Step is one pass invocation.
type Step struct {
	Pass    *passes.Pass
	Options any // from passes.NewOptions(Pass), filled from the recipe
	Pos     Position
}

// Emit is one output: a backend format and a path inside the output folder.
type Emit struct {
	Format, Path string
	// Options are handed to the backend unchecked, in source order: the
	// backends own their option sets.
	Options []Option
	Pos     Position
}

// Option is one name=value given to an emit.
type Option struct {
	Name  string
	Value passes.Literal
	Pos   Position // of the name
}

// keywords are the statement words that are not passes. A pass registered
// under one of these names could not be named in a recipe.
var keywords = []string{"model", "calibrate_with", "evaluate_with", "emit", "report"}

// maxErrors caps how many errors one Parse reports.
const maxErrors = 20

// lowerer accumulates errors so one Parse reports every problem it can.
type lowerer struct {
	file    string
	formats []string
	errs    ErrorList
	r       *Recipe
	firsts  map[string]Position // keyword → where it first appeared
	outputs map[string]Position // cleaned output path → where it was asked for
}

func (lw *lowerer) errorf(pos Position, format string, args ...any) {
	lw.errs = append(lw.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func lower(file string, ast *fileAST, formats []string) (*Recipe, error) {
	lw := &lowerer{file: file, formats: formats, r: &Recipe{File: file},
		firsts: map[string]Position{}, outputs: map[string]Position{}}
	for _, st := range ast.Stmts {
		pos := posOf(st.Pos)
		switch st.Word {
		case "model":
			lw.fileStmt(st, &lw.r.Model, &lw.r.ModelPos)
		case "calibrate_with":
			lw.fileStmt(st, &lw.r.Calib, &lw.r.CalibPos)
		case "evaluate_with":
			lw.fileStmt(st, &lw.r.Eval, &lw.r.EvalPos)
		case "report":
			if lw.fileStmt(st, &lw.r.Report, &lw.r.ReportPos) {
				lw.output(lw.r.Report, posOf(st.Args[0].Value.Pos))
			}
		case "emit":
			lw.emit(st)
		default:
			lw.step(st, pos)
		}
	}
	if _, ok := lw.firsts["model"]; !ok {
		lw.errorf(Position{File: file, Line: 1, Col: 1}, `recipe has no model statement (model "file.onnx")`)
	}
	if len(lw.errs) == 0 {
		// Ordering is checked last: it is meaningless while a step is
		// missing or misspelled.
		if err := passes.CheckOrder(lw.r.Pipeline()); err != nil {
			lw.errs = append(lw.errs, lw.orderError(err))
		}
	}
	if len(lw.errs) > 0 {
		sort.SliceStable(lw.errs, func(i, j int) bool { return lw.errs[i].Pos.less(lw.errs[j].Pos) })
		if len(lw.errs) > maxErrors {
			// Past this the errors are likely one mistake repeated (as
			// the go command stops at 10).
			lw.errs = append(lw.errs[:maxErrors], &Error{Pos: lw.errs[maxErrors].Pos, Msg: "too many errors"})
		}
		return nil, lw.errs
	}
	return lw.r, nil
}

// orderError recovers the position passes.CheckOrder put at the front of
// its message, so the error is an *Error like the others.
func (lw *lowerer) orderError(err error) *Error {
	msg := err.Error()
	for _, s := range lw.r.Steps {
		if rest, ok := strings.CutPrefix(msg, s.Pos.String()+": "); ok {
			return &Error{Pos: s.Pos, Msg: rest}
		}
	}
	return &Error{Pos: Position{File: lw.file, Line: 1, Col: 1}, Msg: msg}
}

// once reports a second use of a keyword that may appear only once.
func (lw *lowerer) once(st *stmtAST) bool {
	pos := posOf(st.Pos)
	if first, dup := lw.firsts[st.Word]; dup {
		lw.errorf(pos, "duplicate %s statement (first at %s)", st.Word, first.short())
		return false
	}
	lw.firsts[st.Word] = pos
	return true
}

// fileStmt lowers `model "path"` and its kin: one string, no options. It
// reports whether dst was set.
func (lw *lowerer) fileStmt(st *stmtAST, dst *string, dstPos *Position) bool {
	if !lw.once(st) {
		return false
	}
	if len(st.Args) == 0 {
		lw.errorf(posOf(st.Pos), "%s wants a file name in quotes", st.Word)
		return false
	}
	for _, a := range st.Args[1:] {
		lw.extra(st.Word, "file name", a)
	}
	a := st.Args[0]
	if a.Name != nil {
		lw.errorf(posOf(a.Pos), "%s takes no options", st.Word)
		return false
	}
	if a.Value.String == nil {
		lw.errorf(posOf(a.Value.Pos), "%s wants a file name in quotes, got %s", st.Word, lw.text(a.Value))
		return false
	}
	s, good := lw.unquote(a.Value)
	if !good {
		return false
	}
	if s == "" {
		lw.errorf(posOf(a.Value.Pos), "%s: empty file name", st.Word)
		return false
	}
	*dst, *dstPos = s, posOf(st.Pos)
	return true
}

// extra reports an argument after the last one a keyword takes.
func (lw *lowerer) extra(word, after string, a *argAST) {
	if a.Name != nil {
		lw.errorf(posOf(a.Pos), "%s takes no options", word)
		return
	}
	lw.errorf(posOf(a.Value.Pos), "unexpected %s after %s's %s (one statement per line)", lw.text(a.Value), word, after)
}

// emit lowers `emit FORMAT "path" [name=value ...]`.
func (lw *lowerer) emit(st *stmtAST) {
	pos := posOf(st.Pos)
	var pos0 []*argAST // positional arguments
	e := Emit{Pos: pos}
	seen := map[string]Position{}
	for _, a := range st.Args {
		if a.Name == nil {
			pos0 = append(pos0, a)
			continue
		}
		npos := posOf(a.Pos)
		if first, dup := seen[*a.Name]; dup {
			lw.errorf(npos, "duplicate option %s (first at %s)", *a.Name, first.short())
			continue
		}
		seen[*a.Name] = npos
		if lit, ok := lw.literal(a.Value); ok {
			e.Options = append(e.Options, Option{Name: *a.Name, Value: lit, Pos: npos})
		}
	}
	const usage = `emit wants a format and a file name (emit onnx "out.onnx")`
	if len(pos0) == 0 {
		lw.errorf(pos, usage)
		return
	}
	f := pos0[0].Value
	if f.Ident == nil {
		lw.errorf(posOf(f.Pos), "%s; got %s where the format goes", usage, lw.text(f))
		return
	}
	e.Format = *f.Ident
	if lw.formats != nil && !contains(lw.formats, e.Format) {
		lw.errorf(posOf(f.Pos), "unknown output format %q%s", e.Format, hint(e.Format, lw.formats))
	}
	if len(pos0) == 1 {
		lw.errorf(posOf(f.Pos), "%s; the file name is missing", usage)
		return
	}
	p := pos0[1].Value
	for _, a := range pos0[2:] {
		lw.extra("emit", "file name", a)
	}
	if p.String == nil {
		lw.errorf(posOf(p.Pos), "%s; got %s where the file name goes", usage, lw.text(p))
		return
	}
	var ok bool
	if e.Path, ok = lw.unquote(p); !ok {
		return
	}
	lw.output(e.Path, posOf(p.Pos))
	lw.r.Emits = append(lw.r.Emits, e)
}

// output checks a path the compile will write: it must stay inside the
// output folder (a recipe from elsewhere must not overwrite ~/.bashrc) and
// no two outputs may share it.
func (lw *lowerer) output(p string, pos Position) {
	if p == "" {
		lw.errorf(pos, "empty output path")
		return
	}
	slashed := strings.ReplaceAll(p, `\`, "/")
	if strings.HasPrefix(slashed, "/") || len(p) >= 2 && p[1] == ':' && isLetter(p[0]) {
		lw.errorf(pos, "output path %q is absolute; outputs are written inside the output folder", p)
		return
	}
	for _, el := range strings.Split(slashed, "/") {
		if el == ".." {
			lw.errorf(pos, "output path %q contains ..; outputs are written inside the output folder", p)
			return
		}
	}
	key := path.Clean(slashed)
	if first, dup := lw.outputs[key]; dup {
		lw.errorf(pos, "output path %q is already written by the output at %s", p, first.short())
		return
	}
	lw.outputs[key] = pos
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// step lowers `pass [positional] [name=value ...]`.
func (lw *lowerer) step(st *stmtAST, pos Position) {
	p := passes.Lookup(st.Word)
	if p == nil {
		lw.errorf(pos, "unknown pass %q%s", st.Word, suggest(st.Word, append(passes.Names(), keywords...)))
		return
	}
	opts := passes.NewOptions(p)
	posSpec := passes.Positional(p)
	var names []string
	for _, s := range passes.Specs(p) {
		names = append(names, s.Name)
	}
	seen := map[string]Position{} // option name → where it was set
	named := false
	for _, a := range st.Args {
		lit, ok := lw.literal(a.Value)
		vpos := posOf(a.Value.Pos)
		if a.Name == nil {
			switch {
			case posSpec == nil:
				lw.errorf(vpos, "%s takes no positional value, got %s", p.Name, lw.text(a.Value))
				continue
			case named:
				lw.errorf(vpos, "positional value %s must come before the name=value options", lw.text(a.Value))
				continue
			}
			if first, dup := seen[posSpec.Name]; dup {
				lw.errorf(vpos, "%s takes one positional value (its %s); the first is at %s", p.Name, posSpec.Name, first.short())
				continue
			}
			seen[posSpec.Name] = vpos
			if ok {
				lw.set(p, opts, posSpec.Name, lit, vpos)
			}
			continue
		}
		named = true
		name, npos := *a.Name, posOf(a.Pos)
		if passes.Spec(p, name) == nil {
			if len(names) == 0 {
				lw.errorf(npos, "unknown option %q: %s takes no options", name, p.Name)
			} else {
				lw.errorf(npos, "unknown option %q for %s%s", name, p.Name, hint(name, names))
			}
			continue
		}
		if first, dup := seen[name]; dup {
			lw.errorf(npos, "duplicate option %s (first at %s)", name, first.short())
			continue
		}
		seen[name] = npos
		if ok {
			lw.set(p, opts, name, lit, vpos)
		}
	}
	lw.r.Steps = append(lw.r.Steps, Step{Pass: p, Options: opts, Pos: pos})
}

// set type-checks one option value, turning an enum miss into a
// suggestion.
func (lw *lowerer) set(p *passes.Pass, opts any, name string, lit passes.Literal, pos Position) {
	if msg := outOfBounds(p, name, lit); msg != "" {
		lw.errorf(pos, "%s", msg)
		return
	}
	err := passes.SetOption(p, opts, name, lit)
	if err == nil {
		return
	}
	var ee *passes.EnumError
	if errors.As(err, &ee) {
		got := lit.String()
		if lit.Kind == passes.LitIdent {
			got = strconv.Quote(lit.Text)
		}
		lw.errorf(pos, "unknown %s %s for %s%s", name, got, p.Name, hint(lit.Text, ee.Allowed))
		return
	}
	lw.errorf(pos, "%v", err)
}

// outOfBounds checks a number against its option's min/max before
// passes.SetOption does, only to say which pass the option belongs to and
// echo the value as written (150%, not 1.5). Values SetOption would reject
// for their kind are left to it.
func outOfBounds(p *passes.Pass, name string, lit passes.Literal) string {
	s := passes.Spec(p, name)
	if s == nil || s.Min == nil && s.Max == nil {
		return ""
	}
	var x float64
	switch {
	case s.Kind == "int" && lit.Kind == passes.LitInt:
		n, err := strconv.ParseInt(lit.Text, 10, 64)
		if err != nil {
			return ""
		}
		x = float64(n)
	case s.Kind == "float" && (lit.Kind == passes.LitInt || lit.Kind == passes.LitFloat || lit.Kind == passes.LitPercent):
		var err error
		if x, err = strconv.ParseFloat(lit.Text, 64); err != nil {
			return ""
		}
		if lit.Kind == passes.LitPercent {
			x /= 100
		}
	default:
		return ""
	}
	if (s.Min == nil || x >= *s.Min) && (s.Max == nil || x <= *s.Max) {
		return ""
	}
	bound := func(b *float64, inf string) string {
		if b == nil {
			return inf
		}
		if lit.Kind == passes.LitPercent {
			return strconv.FormatFloat(*b*100, 'g', -1, 64) + "%"
		}
		return strconv.FormatFloat(*b, 'g', -1, 64)
	}
	return fmt.Sprintf("option %s of %s must be in [%s, %s], got %s", name, p.Name, bound(s.Min, "-inf"), bound(s.Max, "inf"), lit)
}

// literal converts a parsed value to the passes' literal form.
func (lw *lowerer) literal(v *valueAST) (passes.Literal, bool) {
	switch {
	case v.Ident != nil:
		return passes.Literal{Kind: passes.LitIdent, Text: *v.Ident}, true
	case v.String != nil:
		s, ok := lw.unquote(v)
		return passes.Literal{Kind: passes.LitString, Text: s}, ok
	case v.Number != nil:
		n := *v.Number
		if t, ok := strings.CutSuffix(n, "%"); ok {
			return passes.Literal{Kind: passes.LitPercent, Text: t}, true
		}
		if strings.ContainsAny(n, ".eE") {
			return passes.Literal{Kind: passes.LitFloat, Text: n}, true
		}
		return passes.Literal{Kind: passes.LitInt, Text: n}, true
	}
	l := passes.Literal{Kind: passes.LitList}
	good := true
	for _, it := range v.List.Items {
		x, ok := lw.literal(it)
		good = good && ok
		l.Items = append(l.Items, x)
	}
	return l, good
}

// unquote decodes a string with Go's escapes.
func (lw *lowerer) unquote(v *valueAST) (string, bool) {
	s, err := strconv.Unquote(*v.String)
	if err != nil {
		lw.errorf(posOf(v.Pos), "bad escape in string %s (strings use Go's escapes: \\n \\t \\\" \\\\ \\u00e9)", printable(*v.String))
		return "", false
	}
	return s, true
}

// text is a value as written, for messages.
func (lw *lowerer) text(v *valueAST) string {
	switch {
	case v.Ident != nil:
		return *v.Ident
	case v.String != nil:
		return printable(*v.String)
	case v.Number != nil:
		return *v.Number
	}
	lit, _ := (&lowerer{}).literal(v)
	return printable(lit.String())
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
