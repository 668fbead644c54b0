package ir

import (
	"fmt"
	"slices"
	"sort"
)

// Attrs are an op's attributes. Values are int64, float32, string, []int64,
// []float32, []string or *Tensor; the op table gives each name its kind.
type Attrs map[string]any

// AttrKind is the kind of an attribute value.
type AttrKind uint8

// Attribute kinds.
const (
	AttrInt AttrKind = iota + 1
	AttrFloat
	AttrString
	AttrInts
	AttrFloats
	AttrStrings
	AttrTensor
)

func (k AttrKind) String() string {
	return [...]string{"?", "int", "float", "string", "ints", "floats", "strings", "tensor"}[k]
}

// KindOf returns the kind of an attribute value, or 0 if it is not one.
func KindOf(x any) AttrKind {
	switch x.(type) {
	case int64:
		return AttrInt
	case float32:
		return AttrFloat
	case string:
		return AttrString
	case []int64:
		return AttrInts
	case []float32:
		return AttrFloats
	case []string:
		return AttrStrings
	case *Tensor:
		return AttrTensor
	}
	return 0
}

// Keys returns the attribute names sorted.
func (a Attrs) Keys() []string {
	ks := make([]string, 0, len(a))
	for k := range a {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Clone returns a copy (lists are copied; tensors are shared).
func (a Attrs) Clone() Attrs {
	if a == nil {
		return nil
	}
	b := make(Attrs, len(a))
	for k, x := range a {
		switch y := x.(type) {
		case []int64:
			x = slices.Clone(y)
		case []float32:
			x = slices.Clone(y)
		case []string:
			x = slices.Clone(y)
		}
		b[k] = x
	}
	return b
}

// Int returns an int attribute of v, falling back to the op's default.
func (v *Value) Int(name string) int64 {
	x, _ := v.attr(name).(int64)
	return x
}

// Float returns a float attribute of v, falling back to the op's default.
func (v *Value) Float(name string) float32 {
	x, _ := v.attr(name).(float32)
	return x
}

// Str returns a string attribute of v, falling back to the op's default.
func (v *Value) Str(name string) string {
	x, _ := v.attr(name).(string)
	return x
}

// Ints returns an ints attribute of v, falling back to the op's default.
func (v *Value) Ints(name string) []int64 {
	x, _ := v.attr(name).([]int64)
	return x
}

// Floats returns a floats attribute of v, falling back to the op's default.
func (v *Value) Floats(name string) []float32 {
	x, _ := v.attr(name).([]float32)
	return x
}

// HasAttr reports whether the attribute is set explicitly.
func (v *Value) HasAttr(name string) bool {
	_, ok := v.Attrs[name]
	return ok
}

func (v *Value) attr(name string) any {
	if x, ok := v.Attrs[name]; ok {
		return x
	}
	if def := LookupOp(v.Op); def != nil {
		for _, a := range def.Attrs {
			if a.Name == name {
				return a.Default
			}
		}
	}
	return nil
}

// SetAttr sets an attribute.
func (v *Value) SetAttr(name string, x any) {
	if KindOf(x) == 0 {
		panic(fmt.Sprintf("ir: attribute %s: unsupported value %T", name, x))
	}
	if v.Attrs == nil {
		v.Attrs = Attrs{}
	}
	v.Attrs[name] = x
}
