package ir

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Verify checks every invariant of g and returns all problems joined, each
// naming the value: def-use lists both ways, arity and attributes, stored
// type equal to re-inferred type, acyclicity, defined outputs, constant data
// matching its type, and valid Q/DQ scales and zero points.
func Verify(g *Graph) error {
	var errs []error
	bad := func(v *Value, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", v, fmt.Sprintf(format, args...)))
	}
	live := make(map[*Value]bool)
	for _, v := range g.Values() {
		live[v] = true
	}
	for _, in := range g.Inputs {
		if !live[in] || in.Op != OpInput {
			bad(in, "graph input is not a live Input value")
		}
	}
	for _, o := range g.Outputs {
		switch {
		case o.Value == nil:
			errs = append(errs, fmt.Errorf("output %q is not defined", o.Name))
		case !live[o.Value]:
			errs = append(errs, fmt.Errorf("output %q refers to removed value %s", o.Name, o.Value))
		}
	}
	for _, v := range g.Values() {
		def := LookupOp(v.Op)
		if def == nil {
			bad(v, "unknown op %q", v.Op)
			continue
		}
		for i, a := range v.args {
			if a == nil {
				continue
			}
			if !live[a] {
				bad(v, "argument %d refers to a value not in the graph (%s)", i, a)
				continue
			}
			if countOf(a.uses, v) != countOf(v.args, a) {
				bad(v, "argument %d: use list of %s is out of date", i, a)
			}
		}
		for _, u := range v.uses {
			if !live[u] {
				bad(v, "used by %s, which is not in the graph", u)
			} else if !slices.Contains(u.args, v) {
				bad(v, "listed as used by %s, which does not use it", u)
			}
		}
		switch v.Op {
		case OpInput:
			if !slices.Contains(g.Inputs, v) {
				bad(v, "Input value is not a graph input")
			}
			continue
		case OpConst:
			verifyConst(v, bad)
			continue
		}
		if err := def.checkArgs(v); err != nil {
			bad(v, "%v", err)
			continue
		}
		t, err := def.Infer(v)
		if err != nil {
			bad(v, "type inference: %v", err)
			continue
		}
		if !t.Equal(v.Type) {
			bad(v, "stored type %v, inferred %v", v.Type, t)
		}
		if v.Op == "QuantizeLinear" || v.Op == "DequantizeLinear" {
			verifyQParams(v, bad)
		}
	}
	if _, err := g.Topo(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func countOf(xs []*Value, x *Value) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

func verifyConst(v *Value, bad func(*Value, string, ...any)) {
	t := v.Const
	if t == nil {
		bad(v, "constant has no tensor")
		return
	}
	if !t.Type().Equal(v.Type) {
		bad(v, "stored type %v, data is %v", v.Type, t.Type())
	}
	if t.Opaque() {
		return
	}
	n, err := CheckedNumElements(t.Shape)
	if err != nil {
		bad(v, "%v", err)
		return
	}
	want := map[DType]func() int{
		F32: func() int { return len(sliceOr[float32](t.Data)) }, F16: func() int { return len(sliceOr[uint16](t.Data)) },
		I8: func() int { return len(sliceOr[int8](t.Data)) }, U8: func() int { return len(sliceOr[uint8](t.Data)) },
		I32: func() int { return len(sliceOr[int32](t.Data)) }, I64: func() int { return len(sliceOr[int64](t.Data)) },
		Bool: func() int { return len(sliceOr[bool](t.Data)) }, F64: func() int { return len(sliceOr[float64](t.Data)) },
	}[t.DType]
	if want == nil {
		bad(v, "constant of dtype %v", t.DType)
		return
	}
	if got := want(); int64(got) != n {
		bad(v, "constant holds %d %v elements, shape %v needs %d", got, t.DType, t.Shape, n)
	}
}

func sliceOr[T any](x any) []T {
	s, _ := x.([]T)
	if s == nil {
		return nil
	}
	return s
}

// verifyQParams checks that constant scales are positive and finite and that
// zero points lie in their type's range (always true for i8/u8 data, but a
// zero point of the wrong dtype is caught by inference).
func verifyQParams(v *Value, bad func(*Value, string, ...any)) {
	if s, ok := ConstFloats(v.Arg(1)); ok {
		for _, x := range s {
			if !(x > 0) || math.IsInf(x, 0) {
				bad(v, "scale %g is not positive and finite", x)
				return
			}
		}
	}
}
