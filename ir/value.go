package ir

import (
	"fmt"
	"slices"
)

// Value is one SSA value: the single result of one op.
//
// Args and uses are private so that def-use chains stay exact: change an
// argument with SetArg, redirect users with ReplaceUses, delete with
// Graph.Remove. A nil argument stands for an omitted optional input.
type Value struct {
	ID    int     // unique within the graph; not the printed number
	Op    string  // op name from the op table ("Input", "Const", "MatMul", ...)
	Type  Type    // result type, kept equal to re-inferred type (see Verify)
	Name  string  // source name (ONNX tensor or node name) for errors and patterns
	Attrs Attrs   // attributes, checked against the op's schema
	Const *Tensor // data of a Const value; nil otherwise

	args  []*Value
	uses  []*Value // one entry per argument slot that refers to this value
	graph *Graph
}

// Args returns the arguments. The slice must not be modified.
func (v *Value) Args() []*Value { return v.args }

// Arg returns argument i, or nil if it is absent.
func (v *Value) Arg(i int) *Value {
	if i < len(v.args) {
		return v.args[i]
	}
	return nil
}

// NumArgs is the number of argument slots, including omitted ones.
func (v *Value) NumArgs() int { return len(v.args) }

// Uses returns the values that use v, once per argument slot. The slice must
// not be modified.
func (v *Value) Uses() []*Value { return v.uses }

// Graph returns the graph v belongs to (nil once removed).
func (v *Value) Graph() *Graph { return v.graph }

// IsConst reports whether v is a constant with data attached.
func (v *Value) IsConst() bool { return v.Op == OpConst && v.Const != nil }

// SetArg replaces argument i, keeping use lists exact.
func (v *Value) SetArg(i int, a *Value) {
	if old := v.args[i]; old != nil {
		old.removeUse(v)
	}
	v.args[i] = a
	if a != nil {
		a.uses = append(a.uses, v)
	}
}

// SetArgs replaces all arguments.
func (v *Value) SetArgs(args ...*Value) {
	for _, old := range v.args {
		if old != nil {
			old.removeUse(v)
		}
	}
	v.args = slices.Clone(args)
	for _, a := range v.args {
		if a != nil {
			a.uses = append(a.uses, v)
		}
	}
}

func (v *Value) removeUse(user *Value) {
	if i := slices.Index(v.uses, user); i >= 0 {
		v.uses = slices.Delete(v.uses, i, i+1)
	}
}

// ReplaceUses makes every user of v (and every graph output that is v) use
// w instead.
func (v *Value) ReplaceUses(w *Value) {
	if v == w {
		return
	}
	for len(v.uses) > 0 {
		u := v.uses[0]
		for i, a := range u.args {
			if a == v {
				u.SetArg(i, w)
				break
			}
		}
	}
	if g := v.graph; g != nil {
		for i, o := range g.Outputs {
			if o.Value == v {
				g.Outputs[i].Value = w
			}
		}
	}
}

// String names the value for error messages: op, source name and ID.
func (v *Value) String() string {
	if v == nil {
		return "<nil>"
	}
	if v.Name != "" {
		return fmt.Sprintf("%s %q (#%d)", v.Op, v.Name, v.ID)
	}
	return fmt.Sprintf("%s #%d", v.Op, v.ID)
}
