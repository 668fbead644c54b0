package ir

import (
	"fmt"
)

// Broadcast returns the numpy-broadcast shape of a and b. Where a static dim
// meets a symbolic one, the static one wins (as ONNX shape inference does);
// two static dims that differ and are not 1 are an error.
func Broadcast(a, b Shape) (Shape, error) {
	n := max(len(a), len(b))
	out := make(Shape, n)
	for i := range n {
		var x, y Dim = Static(1), Static(1)
		if j := len(a) - n + i; j >= 0 {
			x = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			y = b[j]
		}
		switch {
		case x == y:
			out[i] = x
		case x.IsStatic() && x.C == 1:
			out[i] = y
		case y.IsStatic() && y.C == 1:
			out[i] = x
		case x.IsStatic() && y.IsStatic():
			return nil, fmt.Errorf("cannot broadcast %v with %v", Type{F32, a}, Type{F32, b})
		case x.IsStatic():
			out[i] = x
		case y.IsStatic():
			out[i] = y
		case x.IsUnknown():
			out[i] = y
		case y.IsUnknown():
			out[i] = x
		default:
			// Two different symbolic dims: equal at run time or an error
			// there; which one it is cannot be known here.
			out[i] = Unknown
		}
	}
	return out, nil
}

// inferBroadcast types an elementwise op: all args broadcast together;
// the result dtype is the first arg's, or outDT if set.
func inferBroadcast(outDT DType, sameDType bool) func(v *Value) (Type, error) {
	return func(v *Value) (Type, error) {
		t0, err := argType(v, 0)
		if err != nil {
			return Type{}, err
		}
		first := 0
		if v.Op == "Where" {
			first = 1 // the condition is bool; the data dtype comes from x
		}
		dt := v.Arg(first).Type.DType
		shape := t0.Shape
		for i := 1; i < v.NumArgs(); i++ {
			t, err := argType(v, i)
			if err != nil {
				return Type{}, err
			}
			if sameDType && i > first && t.DType != dt {
				return Type{}, fmt.Errorf("argument %d is %v, want %v like argument %d", i, t.DType, dt, first)
			}
			if shape, err = Broadcast(shape, t.Shape); err != nil {
				return Type{}, err
			}
		}
		if outDT != Invalid {
			dt = outDT
		}
		return Type{DType: dt, Shape: shape}, nil
	}
}

func inferSame(v *Value) (Type, error) {
	t, err := argType(v, 0)
	if err != nil {
		return Type{}, err
	}
	return Type{t.DType, t.Shape.Clone()}, nil
}

func init() {
	for _, op := range []struct {
		name string
		comm bool
	}{{"Add", true}, {"Sub", false}, {"Mul", true}, {"Div", false}, {"Pow", false}, {"Max", true}, {"Min", true}, {"Mod", false}} {
		d := &OpDef{Name: op.name, MinArgs: 2, MaxArgs: 2, Pure: true, Elementwise: true, Commutative: op.comm,
			Infer: inferBroadcast(Invalid, op.name != "Pow")}
		if op.name == "Mod" {
			d.Attrs = []AttrDef{intAttr("fmod", 0)}
		}
		d.Doc = "elementwise " + op.name + " with numpy broadcasting"
		RegisterOp(d)
	}
	for _, name := range []string{"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"} {
		RegisterOp(&OpDef{Name: name, MinArgs: 2, MaxArgs: 2, Pure: true, Elementwise: true,
			Commutative: name == "Equal" || name == "And" || name == "Or" || name == "Xor",
			Doc:         "elementwise comparison or logic, bool result", Infer: inferBroadcast(Bool, true)})
	}
	RegisterOp(&OpDef{Name: "Where", MinArgs: 3, MaxArgs: 3, Pure: true, Elementwise: true,
		Doc: "select x where cond else y", Infer: func(v *Value) (Type, error) {
			if c := v.Arg(0); c != nil && c.Type.DType != Bool {
				return Type{}, fmt.Errorf("condition is %v, want bool", c.Type.DType)
			}
			return inferBroadcast(Invalid, true)(v)
		}})
	for _, name := range []string{"Sqrt", "Erf", "Relu", "Neg", "Exp", "Log", "Tanh", "Sigmoid", "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Not", "Identity", "Sin", "Cos"} {
		RegisterOp(&OpDef{Name: name, MinArgs: 1, MaxArgs: 1, Pure: true, Elementwise: true,
			Doc: "elementwise " + name, Infer: inferSame})
	}
	RegisterOp(&OpDef{Name: "Gelu", MinArgs: 1, MaxArgs: 1, Pure: true, Elementwise: true,
		Attrs: []AttrDef{strAttr("approximate", "none")},
		Doc:   "GELU (opset 20); approximate=none uses erf, tanh the tanh approximation", Infer: inferSame})
	RegisterOp(&OpDef{Name: "LeakyRelu", MinArgs: 1, MaxArgs: 1, Pure: true, Elementwise: true,
		Attrs: []AttrDef{floatAttr("alpha", 0.01)}, Doc: "leaky ReLU", Infer: inferSame})
	RegisterOp(&OpDef{Name: "HardSigmoid", MinArgs: 1, MaxArgs: 1, Pure: true, Elementwise: true,
		Attrs: []AttrDef{floatAttr("alpha", 0.2), floatAttr("beta", 0.5)}, Doc: "hard sigmoid", Infer: inferSame})
	RegisterOp(&OpDef{Name: "Clip", MinArgs: 1, MaxArgs: 3, Pure: true, Elementwise: true,
		Doc: "clamp to [min, max] (optional scalar args)", Infer: inferSame})
	RegisterOp(&OpDef{Name: "Cast", MinArgs: 1, MaxArgs: 1, Pure: true, Elementwise: true,
		Attrs: []AttrDef{{Name: "to", Kind: AttrString, Required: true}},
		Doc:   "convert elements to dtype `to` (f32, f16, i64, ...)",
		Infer: func(v *Value) (Type, error) {
			t, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			dt, ok := ParseDType(v.Str("to"))
			if !ok {
				return Type{}, fmt.Errorf("cast to unknown dtype %q", v.Str("to"))
			}
			return Type{dt, t.Shape.Clone()}, nil
		}})
}
