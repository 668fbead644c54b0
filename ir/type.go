package ir

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Dim is one dimension of a shape: a product C·s1·s2… of a non-negative
// constant and zero or more symbols. A static dim has no symbols. Keeping
// products (rather than an opaque "unknown") lets inference follow dynamic
// batch through Reshape: [batch,197,192] → [197*batch,192] → back again.
type Dim struct {
	C    int64  // constant factor; 0 only for a genuinely empty static dim
	Syms string // sorted symbol names joined by '*'; "" for a static dim
}

// Static returns a static dim of size n.
func Static(n int64) Dim { return Dim{C: n} }

// Sym returns the symbolic dim named s (with factor 1).
func Sym(s string) Dim { return Dim{C: 1, Syms: s} }

// Unknown is a dim nothing is known about. Each "?" is its own unknown: two
// unknown dims are not known to be equal, but print and compare alike so that
// re-inference is stable.
var Unknown = Dim{C: 1, Syms: "?"}

// IsStatic reports whether d has a known integer size.
func (d Dim) IsStatic() bool { return d.Syms == "" }

// IsUnknown reports whether d involves an unknown factor.
func (d Dim) IsUnknown() bool { return strings.Contains(d.Syms, "?") }

// Mul returns d·e.
func (d Dim) Mul(e Dim) Dim {
	if d.Syms == "" || e.Syms == "" {
		return Dim{C: d.C * e.C, Syms: d.Syms + e.Syms}
	}
	parts := append(strings.Split(d.Syms, "*"), strings.Split(e.Syms, "*")...)
	slices.Sort(parts)
	return Dim{C: d.C * e.C, Syms: strings.Join(parts, "*")}
}

// Div returns d/e when the division is exact and representable.
func (d Dim) Div(e Dim) (Dim, bool) {
	if e.C == 0 || d.C%e.C != 0 {
		return Dim{}, false
	}
	if e.Syms == "" {
		return Dim{C: d.C / e.C, Syms: d.Syms}, true
	}
	if e.IsUnknown() {
		return Dim{}, false
	}
	have := strings.Split(d.Syms, "*")
	for _, s := range strings.Split(e.Syms, "*") {
		i := slices.Index(have, s)
		if i < 0 || d.Syms == "" {
			return Dim{}, false
		}
		have = slices.Delete(have, i, i+1)
	}
	return Dim{C: d.C / e.C, Syms: strings.Join(have, "*")}, true
}

// String prints a dim as "3", "batch" or "197*batch".
func (d Dim) String() string {
	switch {
	case d.Syms == "":
		return strconv.FormatInt(d.C, 10)
	case d.C == 1:
		return d.Syms
	default:
		return strconv.FormatInt(d.C, 10) + "*" + d.Syms
	}
}

// ParseDim is the inverse of Dim.String.
func ParseDim(s string) (Dim, error) {
	d := Dim{C: 1}
	var syms []string
	for _, p := range strings.Split(s, "*") {
		if p == "" {
			return Dim{}, fmt.Errorf("bad dim %q", s)
		}
		if n, err := strconv.ParseInt(p, 10, 64); err == nil {
			if n < 0 {
				return Dim{}, fmt.Errorf("negative dim %q", s)
			}
			d.C *= n
			if d.C > 1<<53 {
				return Dim{}, fmt.Errorf("dim %q too large", s)
			}
			continue
		}
		if !isIdent(p) && p != "?" {
			return Dim{}, fmt.Errorf("bad dim %q", s)
		}
		syms = append(syms, p)
	}
	slices.Sort(syms)
	d.Syms = strings.Join(syms, "*")
	return d, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '.') {
			continue
		}
		return false
	}
	return true
}

// Shape is a list of dims; a scalar has an empty shape.
type Shape []Dim

// StaticShape builds a Shape from integer sizes.
func StaticShape(dims ...int64) Shape {
	s := make(Shape, len(dims))
	for i, n := range dims {
		s[i] = Static(n)
	}
	return s
}

// IsStatic reports whether every dim is static.
func (s Shape) IsStatic() bool {
	for _, d := range s {
		if !d.IsStatic() {
			return false
		}
	}
	return true
}

// Ints returns the sizes of a static shape; ok is false if any dim is symbolic.
func (s Shape) Ints() (dims []int64, ok bool) {
	dims = make([]int64, len(s))
	for i, d := range s {
		if !d.IsStatic() {
			return nil, false
		}
		dims[i] = d.C
	}
	return dims, true
}

// NumElements is the product of all dims (symbolic when any dim is).
func (s Shape) NumElements() Dim {
	n := Static(1)
	for _, d := range s {
		n = n.Mul(d)
	}
	return n
}

// Equal reports whether two shapes have the same dims.
func (s Shape) Equal(t Shape) bool { return slices.Equal(s, t) }

// Clone returns a copy that can be modified freely.
func (s Shape) Clone() Shape { return slices.Clone(s) }

// Type is the type of a value: element dtype plus shape.
type Type struct {
	DType DType
	Shape Shape
}

// TensorType is shorthand for a Type.
func TensorType(dt DType, s Shape) Type { return Type{DType: dt, Shape: s} }

// Rank is the number of dims.
func (t Type) Rank() int { return len(t.Shape) }

// Equal reports whether two types are identical.
func (t Type) Equal(u Type) bool { return t.DType == u.DType && t.Shape.Equal(u.Shape) }

// String prints a type as "f32[batch,197,192]" ("f32[]" for a scalar).
func (t Type) String() string {
	var b strings.Builder
	b.WriteString(t.DType.String())
	b.WriteByte('[')
	for i, d := range t.Shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.String())
	}
	b.WriteByte(']')
	return b.String()
}

// ParseType is the inverse of Type.String.
func ParseType(s string) (Type, error) {
	i := strings.IndexByte(s, '[')
	if i < 0 || !strings.HasSuffix(s, "]") {
		return Type{}, fmt.Errorf("bad type %q: want dtype[dims]", s)
	}
	dt, ok := ParseDType(s[:i])
	if !ok {
		return Type{}, fmt.Errorf("bad type %q: unknown dtype %q", s, s[:i])
	}
	t := Type{DType: dt, Shape: Shape{}}
	body := s[i+1 : len(s)-1]
	if body == "" {
		return t, nil
	}
	for _, p := range strings.Split(body, ",") {
		d, err := ParseDim(strings.TrimSpace(p))
		if err != nil {
			return Type{}, fmt.Errorf("bad type %q: %w", s, err)
		}
		t.Shape = append(t.Shape, d)
	}
	return t, nil
}

// Bind returns d with every symbol set to n (C·n^k for k symbols); a
// static dim is returned as it is. An unknown dim cannot be bound.
func (d Dim) Bind(n int64) (Dim, error) {
	if d.IsStatic() {
		return d, nil
	}
	if d.IsUnknown() {
		return Dim{}, fmt.Errorf("dim %v is unknown; give the model a static or named dim", d)
	}
	v := d.C
	for range strings.Split(d.Syms, "*") {
		v *= n
	}
	return Static(v), nil
}
