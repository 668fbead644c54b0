package ir

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseError is a syntax or reference error with its position.
type ParseError struct {
	Line, Col int
	Msg       string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

// MaxParsedSplat bounds a splat constant built by Parse, so a short line of
// text cannot make the parser allocate gigabytes.
const MaxParsedSplat = 1 << 22

// Parse reads the textual form written by Print. Values must be defined
// before use (Print guarantees it). Types are taken as written; Verify, not
// Parse, reports a written type that disagrees with inference.
func Parse(src string) (*Graph, error) {
	p := &parser{lx: lexer{src: src, line: 1, col: 1}}
	p.next()
	g, err := p.graph()
	if err != nil {
		return nil, err
	}
	return g, nil
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tWord
	tString
	tVal
	tPunct
)

type token struct {
	kind      tokKind
	text      string
	line, col int
}

type lexer struct {
	src       string
	pos       int
	line, col int
}

func isWordByte(c byte) bool {
	return c == '_' || c == '.' || c == '+' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (l *lexer) advance(n int) {
	for range n {
		if l.src[l.pos] == '\n' {
			l.line++
			l.col = 1
		} else {
			l.col++
		}
		l.pos++
	}
}

func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			l.advance(1)
			continue
		}
		if c == '#' { // comment to end of line
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.advance(1)
			}
			continue
		}
		break
	}
	t := token{line: l.line, col: l.col}
	if l.pos >= len(l.src) {
		return t, nil
	}
	c := l.src[l.pos]
	switch {
	case c == '"':
		end := l.pos + 1
		for end < len(l.src) && l.src[end] != '"' {
			if l.src[end] == '\\' {
				end++
			}
			if end < len(l.src) && l.src[end] == '\n' {
				break
			}
			end++
		}
		if end >= len(l.src) || l.src[end] != '"' {
			return t, &ParseError{t.line, t.col, "unterminated string"}
		}
		s, err := strconv.Unquote(l.src[l.pos : end+1])
		if err != nil {
			return t, &ParseError{t.line, t.col, "bad string literal"}
		}
		t.kind, t.text = tString, s
		l.advance(end + 1 - l.pos)
	case c == '%':
		end := l.pos + 1
		for end < len(l.src) && l.src[end] >= '0' && l.src[end] <= '9' {
			end++
		}
		if end == l.pos+1 {
			return t, &ParseError{t.line, t.col, "'%' must be followed by a value number"}
		}
		t.kind, t.text = tVal, l.src[l.pos+1:end]
		l.advance(end - l.pos)
	case isWordByte(c):
		end := l.pos
		for end < len(l.src) && isWordByte(l.src[end]) {
			end++
		}
		t.kind, t.text = tWord, l.src[l.pos:end]
		l.advance(end - l.pos)
	case strings.IndexByte("[]{}()<>,=:*?", c) >= 0:
		t.kind, t.text = tPunct, string(c)
		l.advance(1)
	default:
		return t, &ParseError{t.line, t.col, fmt.Sprintf("unexpected character %q", c)}
	}
	return t, nil
}

type parser struct {
	lx   lexer
	tok  token
	err  error
	vals map[string]*Value
}

func (p *parser) next() {
	if p.err != nil {
		return
	}
	p.tok, p.err = p.lx.next()
}

func (p *parser) fail(format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return &ParseError{p.tok.line, p.tok.col, fmt.Sprintf(format, args...)}
}

func (p *parser) is(kind tokKind, text string) bool {
	return p.err == nil && p.tok.kind == kind && (text == "" || p.tok.text == text)
}

func (p *parser) expect(kind tokKind, text string) (token, error) {
	if !p.is(kind, text) {
		want := text
		if want == "" {
			want = [...]string{"end of input", "word", "string", "value", "punctuation"}[kind]
		}
		got := p.tok.text
		if p.tok.kind == tEOF {
			got = "end of input"
		}
		return token{}, p.fail("expected %s, found %q", want, got)
	}
	t := p.tok
	p.next()
	return t, p.err
}

func (p *parser) graph() (*Graph, error) {
	if _, err := p.expect(tWord, "graph"); err != nil {
		return nil, err
	}
	name, err := p.expect(tString, "")
	if err != nil {
		return nil, err
	}
	g := NewGraph(name.text)
	if p.is(tWord, "opset") {
		p.next()
		if _, err := p.expect(tPunct, "="); err != nil {
			return nil, err
		}
		n, err := p.int()
		if err != nil {
			return nil, err
		}
		g.Opset = int(n)
	}
	p.vals = map[string]*Value{}
	for p.err == nil && p.tok.kind != tEOF {
		switch {
		case p.is(tWord, "meta"):
			p.next()
			k, err := p.expect(tString, "")
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tPunct, "="); err != nil {
				return nil, err
			}
			v, err := p.expect(tString, "")
			if err != nil {
				return nil, err
			}
			if g.Meta == nil {
				g.Meta = map[string]string{}
			}
			g.Meta[k.text] = v.text
		case p.is(tWord, "input"):
			p.next()
			id, err := p.newVal()
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tPunct, ":"); err != nil {
				return nil, err
			}
			t, err := p.typ()
			if err != nil {
				return nil, err
			}
			name, err := p.expect(tString, "")
			if err != nil {
				return nil, err
			}
			p.vals[id] = g.AddInput(name.text, t)
		case p.is(tWord, "output"):
			p.next()
			name, err := p.expect(tString, "")
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tPunct, "="); err != nil {
				return nil, err
			}
			v, err := p.ref()
			if err != nil {
				return nil, err
			}
			g.Outputs = append(g.Outputs, Output{Name: name.text, Value: v})
		case p.is(tVal, ""):
			if err := p.value(g); err != nil {
				return nil, err
			}
		default:
			return nil, p.fail("expected input, output, meta or a value definition, found %q", p.tok.text)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return g, nil
}

func (p *parser) newVal() (string, error) {
	t, err := p.expect(tVal, "")
	if err != nil {
		return "", err
	}
	if _, dup := p.vals[t.text]; dup {
		return "", &ParseError{t.line, t.col, fmt.Sprintf("%%%s defined twice", t.text)}
	}
	return t.text, nil
}

func (p *parser) ref() (*Value, error) {
	t, err := p.expect(tVal, "")
	if err != nil {
		return nil, err
	}
	v := p.vals[t.text]
	if v == nil {
		return nil, &ParseError{t.line, t.col, fmt.Sprintf("%%%s used before it is defined", t.text)}
	}
	return v, nil
}

func (p *parser) value(g *Graph) error {
	id, err := p.newVal()
	if err != nil {
		return err
	}
	if _, err := p.expect(tPunct, "="); err != nil {
		return err
	}
	opTok, err := p.expect(tWord, "")
	if err != nil {
		return err
	}
	def := LookupOp(opTok.text)
	if def == nil || opTok.text == OpInput {
		return &ParseError{opTok.line, opTok.col, fmt.Sprintf("unknown op %q", opTok.text)}
	}
	var data *Tensor
	if opTok.text == OpConst {
		if data, err = p.tensor(); err != nil {
			return err
		}
	}
	var args []*Value
	for p.is(tVal, "") || p.is(tWord, "_") {
		if p.is(tWord, "_") {
			p.next()
			args = append(args, nil)
		} else {
			a, err := p.ref()
			if err != nil {
				return err
			}
			args = append(args, a)
		}
		if !p.is(tPunct, ",") {
			break
		}
		p.next()
	}
	var attrs Attrs
	if p.is(tPunct, "{") {
		if attrs, err = p.attrs(def); err != nil {
			return err
		}
	}
	if _, err := p.expect(tPunct, ":"); err != nil {
		return err
	}
	t, err := p.typ()
	if err != nil {
		return err
	}
	name := ""
	if p.is(tString, "") {
		name = p.tok.text
		p.next()
	}
	v := g.AddTyped(opTok.text, name, t, attrs, args...)
	v.Const = data
	p.vals[id] = v
	return p.err
}

func (p *parser) int() (int64, error) {
	t, err := p.expect(tWord, "")
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(t.text, 10, 64)
	if perr != nil {
		return 0, &ParseError{t.line, t.col, fmt.Sprintf("bad integer %q", t.text)}
	}
	return n, nil
}

func (p *parser) typ() (Type, error) {
	start := p.tok
	dt, err := p.expect(tWord, "")
	if err != nil {
		return Type{}, err
	}
	d, ok := ParseDType(dt.text)
	if !ok {
		return Type{}, &ParseError{start.line, start.col, fmt.Sprintf("unknown dtype %q", dt.text)}
	}
	if _, err := p.expect(tPunct, "["); err != nil {
		return Type{}, err
	}
	t := Type{DType: d, Shape: Shape{}}
	for !p.is(tPunct, "]") {
		var parts []string
		for {
			if p.is(tPunct, "?") {
				parts = append(parts, "?")
				p.next()
			} else {
				w, err := p.expect(tWord, "")
				if err != nil {
					return Type{}, err
				}
				parts = append(parts, w.text)
			}
			if !p.is(tPunct, "*") {
				break
			}
			p.next()
		}
		dim, err := ParseDim(strings.Join(parts, "*"))
		if err != nil {
			return Type{}, &ParseError{start.line, start.col, err.Error()}
		}
		t.Shape = append(t.Shape, dim)
		if !p.is(tPunct, ",") {
			break
		}
		p.next()
	}
	if _, err := p.expect(tPunct, "]"); err != nil {
		return Type{}, err
	}
	return t, nil
}

func (p *parser) tensor() (*Tensor, error) {
	start := p.tok
	if _, err := p.expect(tWord, "dense"); err != nil {
		return nil, err
	}
	if _, err := p.expect(tPunct, "<"); err != nil {
		return nil, err
	}
	ty, err := p.typ()
	if err != nil {
		return nil, err
	}
	dims, ok := ty.Shape.Ints()
	if !ok {
		return nil, &ParseError{start.line, start.col, "constant with a symbolic shape"}
	}
	n, err := CheckedNumElements(dims)
	if err != nil {
		return nil, &ParseError{start.line, start.col, err.Error()}
	}
	var t *Tensor
	switch {
	case p.is(tWord, "sha256"):
		p.next()
		if _, err := p.expect(tPunct, ":"); err != nil {
			return nil, err
		}
		h, err := p.expect(tWord, "")
		if err != nil {
			return nil, err
		}
		t = &Tensor{DType: ty.DType, Shape: dims, digest: h.text}
	case p.is(tWord, "splat"):
		if n > MaxParsedSplat {
			return nil, &ParseError{start.line, start.col, fmt.Sprintf("splat constant of %d elements is larger than a dump can hold (max %d)", n, MaxParsedSplat)}
		}
		p.next()
		if _, err := p.expect(tPunct, "("); err != nil {
			return nil, err
		}
		e, err := p.expect(tWord, "")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, ")"); err != nil {
			return nil, err
		}
		if t, err = NewTensor(ty.DType, dims); err != nil {
			return nil, &ParseError{start.line, start.col, err.Error()}
		}
		for i := range n {
			if err := setElem(t, int(i), e.text); err != nil {
				return nil, &ParseError{e.line, e.col, err.Error()}
			}
		}
	default:
		if _, err := p.expect(tPunct, "["); err != nil {
			return nil, err
		}
		if n > InlineLimit*1024 {
			return nil, &ParseError{start.line, start.col, "inline constant too large"}
		}
		if t, err = NewTensor(ty.DType, dims); err != nil {
			return nil, &ParseError{start.line, start.col, err.Error()}
		}
		i := int64(0)
		for !p.is(tPunct, "]") {
			e, err := p.expect(tWord, "")
			if err != nil {
				return nil, err
			}
			if i >= n {
				return nil, &ParseError{e.line, e.col, fmt.Sprintf("more than %d elements for %v", n, ty)}
			}
			if err := setElem(t, int(i), e.text); err != nil {
				return nil, &ParseError{e.line, e.col, err.Error()}
			}
			i++
			if !p.is(tPunct, ",") {
				break
			}
			p.next()
		}
		if i != n {
			return nil, p.fail("%d elements for %v, want %d", i, ty, n)
		}
		if _, err := p.expect(tPunct, "]"); err != nil {
			return nil, err
		}
	}
	if _, err := p.expect(tPunct, ">"); err != nil {
		return nil, err
	}
	return t, nil
}

func parseFloat(s string) (float64, error) {
	switch s {
	case "nan":
		return math.NaN(), nil
	case "inf", "+inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}

func setElem(t *Tensor, i int, s string) error {
	bad := func() error { return fmt.Errorf("bad %v element %q", t.DType, s) }
	switch d := t.Data.(type) {
	case []float32, []uint16, []float64:
		f, err := parseFloat(s)
		if err != nil {
			return bad()
		}
		switch d := d.(type) {
		case []float32:
			d[i] = float32(f)
		case []uint16:
			d[i] = F32ToF16(float32(f))
		case []float64:
			d[i] = f
		}
	case []bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad()
		}
		d[i] = b
	default:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return bad()
		}
		switch d := d.(type) {
		case []int8:
			if n != int64(int8(n)) {
				return bad()
			}
			d[i] = int8(n)
		case []uint8:
			if n != int64(uint8(n)) {
				return bad()
			}
			d[i] = uint8(n)
		case []int32:
			if n != int64(int32(n)) {
				return bad()
			}
			d[i] = int32(n)
		case []int64:
			d[i] = n
		}
	}
	return nil
}

func (p *parser) attrs(def *OpDef) (Attrs, error) {
	p.next() // {
	attrs := Attrs{}
	for !p.is(tPunct, "}") {
		k, err := p.expect(tWord, "")
		if err != nil {
			return nil, err
		}
		if _, dup := attrs[k.text]; dup {
			return nil, &ParseError{k.line, k.col, fmt.Sprintf("attribute %q given twice", k.text)}
		}
		if _, err := p.expect(tPunct, "="); err != nil {
			return nil, err
		}
		var want AttrKind
		if ad := def.AttrDef(k.text); ad != nil {
			want = ad.Kind
		} else {
			return nil, &ParseError{k.line, k.col, fmt.Sprintf("op %s has no attribute %q", def.Name, k.text)}
		}
		x, err := p.attrValue(want)
		if err != nil {
			return nil, err
		}
		attrs[k.text] = x
		if !p.is(tPunct, ",") {
			break
		}
		p.next()
	}
	if _, err := p.expect(tPunct, "}"); err != nil {
		return nil, err
	}
	return attrs, nil
}

func (p *parser) attrValue(want AttrKind) (any, error) {
	t := p.tok
	mismatch := func() error {
		return &ParseError{t.line, t.col, fmt.Sprintf("attribute value %q is not of kind %v", t.text, want)}
	}
	switch want {
	case AttrTensor:
		return p.tensor()
	case AttrString:
		s, err := p.expect(tString, "")
		return s.text, err
	case AttrInt:
		return p.int()
	case AttrFloat:
		w, err := p.expect(tWord, "")
		if err != nil {
			return nil, err
		}
		f, perr := parseFloat(w.text)
		if perr != nil {
			return nil, mismatch()
		}
		return float32(f), nil
	}
	if _, err := p.expect(tPunct, "["); err != nil {
		return nil, err
	}
	var ints []int64
	var floats []float32
	var strs []string
	for !p.is(tPunct, "]") {
		switch want {
		case AttrInts:
			n, err := p.int()
			if err != nil {
				return nil, err
			}
			ints = append(ints, n)
		case AttrFloats:
			w, err := p.expect(tWord, "")
			if err != nil {
				return nil, err
			}
			f, perr := parseFloat(w.text)
			if perr != nil {
				return nil, &ParseError{w.line, w.col, fmt.Sprintf("bad float %q", w.text)}
			}
			floats = append(floats, float32(f))
		case AttrStrings:
			s, err := p.expect(tString, "")
			if err != nil {
				return nil, err
			}
			strs = append(strs, s.text)
		}
		if !p.is(tPunct, ",") {
			break
		}
		p.next()
	}
	if _, err := p.expect(tPunct, "]"); err != nil {
		return nil, err
	}
	switch want {
	case AttrInts:
		if ints == nil {
			ints = []int64{}
		}
		return ints, nil
	case AttrFloats:
		if floats == nil {
			floats = []float32{}
		}
		return floats, nil
	default:
		if strs == nil {
			strs = []string{}
		}
		return strs, nil
	}
}
