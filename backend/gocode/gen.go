// Copyright 2026 The pqvc Authors.

package gocode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/ir"
)

// gen turns a specialised graph into the Go source of a Model: fields,
// New's body (buffers, weights, packing, constant-only computations) and
// Predict's straight-line body.
type gen struct {
	g     *ir.Graph
	order []*ir.Value       // values that produce data, in emission order
	pos   map[*ir.Value]int // index in order
	// alias maps a value to the value whose buffer it shares (Reshape and
	// friends, and Adds fused into a GEMM epilogue).
	alias map[*ir.Value]*ir.Value
	// fused holds GEMM-epilogue rewrites, keyed by the value that carries
	// the result; skip the values folded into them.
	fused map[*ir.Value]*fusion
	skip  map[*ir.Value]bool
	// pair maps the first of a ReduceMin/ReduceMax pair to the second.
	pair map[*ir.Value]*ir.Value
	// hoisted values depend on constants only: New computes them once.
	hoisted map[*ir.Value]bool
	last    map[*ir.Value]int // last reading position of a buffer root
	outputs map[*ir.Value]bool

	consts    map[*ir.Value]string // const field names
	weights   bytes.Buffer
	fields    []string
	slots     []*slot
	slotOf    map[*ir.Value]*slot
	free      []*slot
	packed    map[*ir.Value]string // PackB fields by weight value
	scratch   map[string]int       // f32 scratch fields and sizes
	initCode  bytes.Buffer
	loadCode  bytes.Buffer
	runCode   bytes.Buffer
	nfield    int
	usesQuant bool
	quant     bool // the graph has quantized ops (set by plan)
}

// slot is one reusable activation buffer.
type slot struct {
	name  string
	goTyp string
	size  int
	perm  bool // never returned to the pool
}

// fusion is a GEMM with its epilogue folded in.
type fusion struct {
	gemm  *ir.Value // MatMul, Gemm or MatMulInteger
	bias  *ir.Value // const row bias, or nil
	scale *ir.Value // int8: the dequantizing scale (scalar), or nil
	reads []*ir.Value
}

func goType(dt ir.DType) (string, error) {
	switch dt {
	case ir.F32:
		return "float32", nil
	case ir.I8:
		return "int8", nil
	case ir.U8:
		return "uint8", nil
	case ir.I32:
		return "int32", nil
	case ir.I64:
		return "int64", nil
	case ir.Bool:
		return "bool", nil
	}
	return "", fmt.Errorf("dtype %v has no Go lowering", dt)
}

func (c *gen) newField(prefix, decl string) string {
	c.nfield++
	name := fmt.Sprintf("%s%d", prefix, c.nfield)
	c.fields = append(c.fields, name+" "+decl)
	return name
}

// root follows aliases to the value that owns the buffer.
func (c *gen) root(v *ir.Value) *ir.Value {
	for {
		a, ok := c.alias[v]
		if !ok {
			return v
		}
		v = a
	}
}

// constRef registers a constant for weights.bin and returns its field.
func (c *gen) constRef(v *ir.Value) (string, error) {
	if f, ok := c.consts[v]; ok {
		return f, nil
	}
	t := v.Const
	if t == nil || t.Data == nil {
		return "", fmt.Errorf("%v: constant has no data", v)
	}
	typ, err := goType(t.DType)
	if err != nil {
		return "", fmt.Errorf("%v: %w", v, err)
	}
	for c.weights.Len()%64 != 0 {
		c.weights.WriteByte(0)
	}
	off := c.weights.Len()
	var dec string
	switch d := t.Data.(type) {
	case []float32:
		for _, x := range d {
			binary.Write(&c.weights, binary.LittleEndian, math.Float32bits(x))
		}
		dec = "F32s"
	case []int8:
		for _, x := range d {
			c.weights.WriteByte(byte(x))
		}
		dec = "I8s"
	case []uint8:
		c.weights.Write(d)
		dec = "U8s"
	case []int32:
		binary.Write(&c.weights, binary.LittleEndian, d)
		dec = "I32s"
	case []int64:
		binary.Write(&c.weights, binary.LittleEndian, d)
		dec = "I64s"
	case []bool:
		for _, x := range d {
			b := byte(0)
			if x {
				b = 1
			}
			c.weights.WriteByte(b)
		}
		dec = "Bools"
	default:
		return "", fmt.Errorf("%v: constant data %T has no Go lowering", v, t.Data)
	}
	name := c.newField("c", "[]"+typ)
	fmt.Fprintf(&c.loadCode, "m.%s = gort.%s(weights[%d:%d]) // %s\n", name, dec, off, c.weights.Len(), comment(v))
	c.consts[v] = name
	return name, nil
}

// comment is a value's description for generated comments.
func comment(v *ir.Value) string {
	s := v.Op
	if v.Name != "" {
		s += " " + v.Name
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// buf returns the slice expression of v's data.
func (c *gen) buf(v *ir.Value) (string, error) {
	r := c.root(v)
	if r.IsConst() {
		f, err := c.constRef(r)
		return "m." + f, err
	}
	s := c.slotOf[r]
	if s == nil {
		return "", fmt.Errorf("internal: %v read before it is computed", v)
	}
	dims, err := staticDims(v)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("m.%s[:%d]", s.name, numel(dims)), nil
}

// scalar returns an expression for element 0 of a (a scalar), inlining a
// constant's value.
func (c *gen) scalar(v *ir.Value) (string, error) {
	if r := c.root(v); r.IsConst() {
		if fs, ok := ir.ConstFloats(r); ok && len(fs) >= 1 {
			return floatLit(float32(fs[0])), nil
		}
	}
	b, err := c.buf(v)
	if err != nil {
		return "", err
	}
	return b + "[0]", nil
}

func floatLit(f float32) string {
	switch {
	case math.IsInf(float64(f), 1):
		return "float32(math.Inf(1))"
	case math.IsInf(float64(f), -1):
		return "float32(math.Inf(-1))"
	case f != f:
		return "float32(math.NaN())"
	}
	s := ir.FormatFloat(f)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return "float32(" + s + ")"
}

func intsLit(xs []int) string {
	var b strings.Builder
	b.WriteString("[]int{")
	for i, x := range xs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, x)
	}
	b.WriteString("}")
	return b.String()
}

// alloc gives v (a buffer root) a slot, reusing a free one of its type.
func (c *gen) alloc(v *ir.Value) error {
	dims, err := staticDims(v)
	if err != nil {
		return err
	}
	typ, err := goType(v.Type.DType)
	if err != nil {
		return fmt.Errorf("%v: %w", v, err)
	}
	n := numel(dims)
	perm := c.hoisted[v] || c.outputs[v] || v.Op == ir.OpInput
	var s *slot
	if !perm {
		// Best fit: the smallest free slot that holds n, else the largest
		// (which then grows), so big buffers are not wasted on scalars.
		best := -1
		for i, f := range c.free {
			if f.goTyp != typ {
				continue
			}
			switch {
			case best < 0:
				best = i
			case f.size >= n && (c.free[best].size < n || f.size < c.free[best].size):
				best = i
			case c.free[best].size < n && f.size > c.free[best].size:
				best = i
			}
		}
		if best >= 0 {
			s = c.free[best]
			c.free = append(c.free[:best], c.free[best+1:]...)
		}
	}
	if s == nil {
		c.nfield++
		s = &slot{name: fmt.Sprintf("b%d", c.nfield), goTyp: typ, perm: perm}
		c.slots = append(c.slots, s)
	}
	s.size = max(s.size, n)
	c.slotOf[v] = s
	return nil
}

// release returns the buffers whose last reader is at position i.
func (c *gen) release(i int) {
	var done []*ir.Value
	for r, l := range c.last {
		if l == i {
			done = append(done, r)
		}
	}
	sort.Slice(done, func(a, b int) bool { return done[a].ID < done[b].ID })
	for _, r := range done {
		if s := c.slotOf[r]; s != nil && !s.perm {
			c.free = append(c.free, s)
		}
	}
}

// emitf writes one line of generated code for v: into New when v is
// hoisted, else into Predict.
func (c *gen) emitf(v *ir.Value, format string, args ...any) {
	w := &c.runCode
	if c.hoisted[v] {
		w = &c.initCode
	}
	fmt.Fprintf(w, format+"\n", args...)
}

// check emits a call returning an error, wrapped with v's name. New and
// Predict both return (something, error), so one form serves both.
func (c *gen) check(v *ir.Value, call string) {
	msg := strconv.Quote(strings.ReplaceAll(v.String(), "%", "%%") + ": %w")
	c.emitf(v, "if err := %s; err != nil {\nreturn nil, fmt.Errorf(%s, err)\n}", call, msg)
}
