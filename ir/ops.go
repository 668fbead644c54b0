package ir

import (
	"errors"
	"fmt"
	"sort"
)

// AttrDef declares one attribute of an op.
type AttrDef struct {
	Name     string
	Kind     AttrKind
	Default  any  // value used when the attribute is absent (nil: none)
	Required bool // absence is an error
}

// OpDef is the op table's entry for one op: everything the IR knows about it.
type OpDef struct {
	Name    string
	Doc     string
	MinArgs int
	MaxArgs int // -1: variadic
	Attrs   []AttrDef
	// Infer computes the result type from the arguments' types (and, for
	// shape-carrying arguments, their values when known).
	Infer func(v *Value) (Type, error)

	Pure        bool // no side effects; safe to CSE, fold and delete when dead
	Commutative bool // first two arguments may be swapped
	Elementwise bool // numpy-broadcasting elementwise op
	Quantized   bool // consumes or produces quantized integer tensors
}

var opTable = map[string]*OpDef{}

// RegisterOp adds an op to the table. It panics on a duplicate: the table is
// built at init time and a clash is a programming error.
func RegisterOp(d *OpDef) {
	if d.Name == "" || d.Infer == nil {
		panic("ir: RegisterOp: op needs a name and an Infer func")
	}
	if _, dup := opTable[d.Name]; dup {
		panic("ir: RegisterOp: duplicate op " + d.Name)
	}
	opTable[d.Name] = d
}

// LookupOp returns the op's table entry, or nil for an unknown op.
func LookupOp(name string) *OpDef { return opTable[name] }

// OpNames lists every op in the table, sorted.
func OpNames() []string {
	names := make([]string, 0, len(opTable))
	for n := range opTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AttrDef returns the declaration of attribute name, or nil.
func (d *OpDef) AttrDef(name string) *AttrDef {
	for i := range d.Attrs {
		if d.Attrs[i].Name == name {
			return &d.Attrs[i]
		}
	}
	return nil
}

// checkArgs validates arity and attributes against the schema.
func (d *OpDef) checkArgs(v *Value) error {
	var errs []error
	n := len(v.args)
	if n < d.MinArgs || d.MaxArgs >= 0 && n > d.MaxArgs {
		if d.MaxArgs == d.MinArgs {
			errs = append(errs, fmt.Errorf("has %d arguments, want %d", n, d.MinArgs))
		} else if d.MaxArgs < 0 {
			errs = append(errs, fmt.Errorf("has %d arguments, want at least %d", n, d.MinArgs))
		} else {
			errs = append(errs, fmt.Errorf("has %d arguments, want %d to %d", n, d.MinArgs, d.MaxArgs))
		}
	}
	for i := 0; i < n && i < d.MinArgs; i++ {
		if v.args[i] == nil {
			errs = append(errs, fmt.Errorf("required argument %d is missing", i))
		}
	}
	for _, k := range v.Attrs.Keys() {
		ad := d.AttrDef(k)
		if ad == nil {
			errs = append(errs, fmt.Errorf("unknown attribute %q", k))
			continue
		}
		if got := KindOf(v.Attrs[k]); got != ad.Kind {
			errs = append(errs, fmt.Errorf("attribute %q is %v, want %v", k, got, ad.Kind))
		}
	}
	for _, ad := range d.Attrs {
		if _, ok := v.Attrs[ad.Name]; ad.Required && !ok {
			errs = append(errs, fmt.Errorf("missing required attribute %q", ad.Name))
		}
	}
	return errors.Join(errs...)
}

// Shorthands for schemas.
func intAttr(name string, def int64) AttrDef { return AttrDef{Name: name, Kind: AttrInt, Default: def} }
func floatAttr(name string, def float32) AttrDef {
	return AttrDef{Name: name, Kind: AttrFloat, Default: def}
}
func intsAttr(name string) AttrDef { return AttrDef{Name: name, Kind: AttrInts} }
func strAttr(name, def string) AttrDef {
	return AttrDef{Name: name, Kind: AttrString, Default: def}
}

func init() {
	RegisterOp(&OpDef{Name: OpInput, Doc: "a graph input", Infer: func(v *Value) (Type, error) { return v.Type, nil }})
	RegisterOp(&OpDef{Name: OpConst, Doc: "a constant tensor", Pure: true, Infer: func(v *Value) (Type, error) {
		if v.Const == nil {
			return Type{}, errors.New("constant has no data")
		}
		return v.Const.Type(), nil
	}})
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	a := axis
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return int(a), nil
}

// argType returns the type of argument i, or an error if it is missing.
func argType(v *Value, i int) (Type, error) {
	a := v.Arg(i)
	if a == nil {
		return Type{}, fmt.Errorf("argument %d is missing", i)
	}
	return a.Type, nil
}
