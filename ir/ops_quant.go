package ir

import "fmt"

func init() {
	RegisterOp(&OpDef{Name: "QuantizeLinear", MinArgs: 2, MaxArgs: 3, Pure: true, Quantized: true,
		Attrs: []AttrDef{intAttr("axis", 1)},
		Doc:   "y = saturate(round_half_even(x/scale) + zero_point); u8 unless zero_point says otherwise",
		Infer: func(v *Value) (Type, error) {
			x, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			dt := U8
			if zp := v.Arg(2); zp != nil {
				dt = zp.Type.DType
			}
			if dt != U8 && dt != I8 {
				return Type{}, fmt.Errorf("zero point is %v, want u8 or i8", dt)
			}
			if err := checkQParams(v, x.Shape, 1, 2); err != nil {
				return Type{}, err
			}
			return Type{dt, x.Shape.Clone()}, nil
		}})
	RegisterOp(&OpDef{Name: "DequantizeLinear", MinArgs: 2, MaxArgs: 3, Pure: true, Quantized: true,
		Attrs: []AttrDef{intAttr("axis", 1)},
		Doc:   "y = (x - zero_point) * scale",
		Infer: func(v *Value) (Type, error) {
			x, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			if zp := v.Arg(2); zp != nil && zp.Type.DType != x.DType {
				return Type{}, fmt.Errorf("zero point is %v, input is %v", zp.Type.DType, x.DType)
			}
			if err := checkQParams(v, x.Shape, 1, 2); err != nil {
				return Type{}, err
			}
			return Type{v.Arg(1).Type.DType, x.Shape.Clone()}, nil
		}})
	RegisterOp(&OpDef{Name: "MatMulInteger", MinArgs: 2, MaxArgs: 4, Pure: true, Quantized: true,
		Doc: "integer matmul of (A - a_zero_point) and (B - b_zero_point), i32 result",
		Infer: func(v *Value) (Type, error) {
			a, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			b, err := argType(v, 1)
			if err != nil {
				return Type{}, err
			}
			s, err := MatMulShape(a.Shape, b.Shape)
			if err != nil {
				return Type{}, err
			}
			return Type{I32, s}, nil
		}})
	RegisterOp(&OpDef{Name: "QLinearMatMul", MinArgs: 8, MaxArgs: 8, Pure: true, Quantized: true,
		Doc: "quantized matmul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp",
		Infer: func(v *Value) (Type, error) {
			a, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			b, err := argType(v, 3)
			if err != nil {
				return Type{}, err
			}
			s, err := MatMulShape(a.Shape, b.Shape)
			if err != nil {
				return Type{}, err
			}
			return Type{v.Arg(7).Type.DType, s}, nil
		}})
	RegisterOp(&OpDef{Name: "ConvInteger", MinArgs: 2, MaxArgs: 4, Pure: true, Quantized: true,
		Attrs: convAttrs(), Doc: "integer convolution, i32 result", Infer: inferConv})
	RegisterOp(&OpDef{Name: "QLinearConv", MinArgs: 8, MaxArgs: 9, Pure: true, Quantized: true,
		Attrs: convAttrs(), Doc: "quantized conv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias(i32)",
		Infer: func(v *Value) (Type, error) {
			x, err := argType(v, 0)
			if err != nil {
				return Type{}, err
			}
			w, err := argType(v, 3)
			if err != nil {
				return Type{}, err
			}
			g, err := ConvParams(v, x.Shape, w.Shape)
			if err != nil {
				return Type{}, err
			}
			out := Shape{x.Shape[0], w.Shape[0]}
			for i, d := range x.Shape[2:] {
				if d.IsStatic() {
					out = append(out, Static(g.OutSize(i, d.C)))
				} else {
					out = append(out, Unknown)
				}
			}
			return Type{v.Arg(7).Type.DType, out}, nil
		}})
}

// checkQParams checks a Q/DQ's scale and zero point: scalar (per-tensor) or
// 1-D along axis (per-channel), with matching shapes; scale float.
func checkQParams(v *Value, x Shape, si, zi int) error {
	s := v.Arg(si)
	if !s.Type.DType.IsFloat() {
		return fmt.Errorf("scale is %v, want a float type", s.Type.DType)
	}
	switch s.Type.Rank() {
	case 0:
	case 1:
		ax, err := normAxis(v.Int("axis"), len(x))
		if err != nil {
			return err
		}
		if d := x[ax]; d.IsStatic() && s.Type.Shape[0].IsStatic() && d.C != s.Type.Shape[0].C {
			return fmt.Errorf("per-channel scale has %d entries for axis %d of size %d", s.Type.Shape[0].C, ax, d.C)
		}
	default:
		return fmt.Errorf("scale has rank %d, want 0 or 1", s.Type.Rank())
	}
	if zp := v.Arg(zi); zp != nil && !zp.Type.Shape.Equal(s.Type.Shape) {
		return fmt.Errorf("zero point %v and scale %v shapes differ", zp.Type, s.Type)
	}
	return nil
}
