package rewrite

import (
	"fmt"
	"strings"

	"github.com/pqvc/pqvc/ir"
)

// Pattern is a tree of ops and variables matched against a value and its
// arguments. Build patterns with Op, Var, Any and Absent; they are plain data,
// built once (usually in a package-level var) and never changed while a
// match runs.
type Pattern struct {
	// Op is the op the value must have; "" makes the node a variable that
	// matches any present value.
	Op string
	// Name binds the matched value so Check and Rewrite can read it with
	// Match.V. A name used twice must match the same value both times
	// (Mul(x, x) matches only a square).
	Name string
	// Args are the argument patterns of an op node. The value's arguments
	// must line up one for one (trailing omitted optional arguments are
	// ignored) unless Rest is set.
	Args []*Pattern
	// Rest lets the value have more arguments than Args; they are not
	// examined.
	Rest bool
	// Preds must all hold for the match to be accepted. They are checked
	// after the whole tree has matched structurally, so a failure is
	// reported as a rejection with a reason rather than as no match.
	Preds []Pred

	absent bool // matches only an omitted optional argument
}

// Pred is a named predicate on a matched value. Name completes the sentence
// "x is not …" in rejection reasons: "const", "used once", "rank 2".
type Pred struct {
	Name string
	Fn   func(v *ir.Value) bool
}

// Op returns a pattern matching a value computed by op whose arguments
// match args, in order (either order of the first two for a commutative op).
func Op(op string, args ...*Pattern) *Pattern { return &Pattern{Op: op, Args: args} }

// Var returns a variable: it matches any present value, binds it to name and
// requires preds.
func Var(name string, preds ...Pred) *Pattern { return &Pattern{Name: name, Preds: preds} }

// Any matches any present value without binding it.
func Any() *Pattern { return &Pattern{} }

// Absent matches only an omitted optional argument.
func Absent() *Pattern { return &Pattern{absent: true} }

// Bind names the value an op node matches, so Check and Rewrite can reach
// intermediate values. It returns p for chaining.
func (p *Pattern) Bind(name string) *Pattern { p.Name = name; return p }

// Where adds predicates to p and returns it.
func (p *Pattern) Where(preds ...Pred) *Pattern { p.Preds = append(p.Preds, preds...); return p }

// AnyRest lets an op node match values with more arguments than it lists
// and returns p.
func (p *Pattern) AnyRest() *Pattern { p.Rest = true; return p }

// String renders the pattern as the s-expression rules are commented with:
// "Add(MatMul(x, w), b)". Variables print as their name, unnamed ones as _.
func (p *Pattern) String() string {
	var b strings.Builder
	p.write(&b)
	return b.String()
}

func (p *Pattern) write(b *strings.Builder) {
	switch {
	case p.absent:
		b.WriteString("∅")
		return
	case p.Op == "":
		if p.Name == "" {
			b.WriteByte('_')
		} else {
			b.WriteString(p.Name)
		}
		return
	}
	b.WriteString(p.Op)
	b.WriteByte('(')
	for i, a := range p.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		a.write(b)
	}
	if p.Rest {
		if len(p.Args) > 0 {
			b.WriteString(", ")
		}
		b.WriteString("...")
	}
	b.WriteByte(')')
	if p.Name != "" {
		b.WriteString("@" + p.Name)
	}
}

// label names a pattern node in rejection reasons.
func (p *Pattern) label() string {
	if p.Name != "" {
		return p.Name
	}
	if p.Op != "" {
		return p.Op
	}
	return "_"
}

// validate reports a pattern that can never match or would confuse the
// matcher; rules are data, so this runs once per Apply.
func (p *Pattern) validate() error {
	if p == nil {
		return fmt.Errorf("nil pattern")
	}
	if p.Op != "" && ir.LookupOp(p.Op) == nil {
		return fmt.Errorf("unknown op %q", p.Op)
	}
	if p.Op == "" && (len(p.Args) > 0 || p.Rest) {
		return fmt.Errorf("variable %s has arguments", p.label())
	}
	for _, a := range p.Args {
		if err := a.validate(); err != nil {
			return err
		}
	}
	for _, pr := range p.Preds {
		if pr.Fn == nil || pr.Name == "" {
			return fmt.Errorf("%s: predicate without a name or func", p.label())
		}
	}
	return nil
}

// Built-in predicates.
var (
	// IsConst holds for a constant with data.
	IsConst = Pred{"const", func(v *ir.Value) bool { return v.IsConst() && !v.Const.Opaque() }}
	// OneUse holds for a value with exactly one user that is not a graph
	// output: fusing it away cannot duplicate work.
	OneUse = Pred{"used once", func(v *ir.Value) bool { return len(v.Uses()) == 1 && !isOutput(v) }}
	// StaticShape holds for a value whose every dim is a known integer.
	StaticShape = Pred{"static", func(v *ir.Value) bool { return v.Type.Shape.IsStatic() }}
)

// Rank holds for a value of rank n.
func Rank(n int) Pred {
	return Pred{fmt.Sprintf("rank %d", n), func(v *ir.Value) bool { return v.Type.Rank() == n }}
}

// DType holds for a value of element type dt.
func DType(dt ir.DType) Pred {
	return Pred{dt.String(), func(v *ir.Value) bool { return v.Type.DType == dt }}
}

// ConstAll holds for a constant every element of which satisfies f (and
// which has at least one element); for "is zero" and "is one" tests.
func ConstAll(name string, f func(x float64) bool) Pred {
	return Pred{name, func(v *ir.Value) bool {
		xs, ok := ir.ConstFloats(v)
		if !ok {
			if is, ok2 := ir.ConstInts(v); ok2 {
				xs = make([]float64, len(is))
				for i, x := range is {
					xs[i] = float64(x)
				}
				ok = true
			}
		}
		if !ok || len(xs) == 0 {
			return false
		}
		for _, x := range xs {
			if !f(x) {
				return false
			}
		}
		return true
	}}
}

func isOutput(v *ir.Value) bool {
	g := v.Graph()
	if g == nil {
		return false
	}
	for _, o := range g.Outputs {
		if o.Value == v {
			return true
		}
	}
	return false
}
