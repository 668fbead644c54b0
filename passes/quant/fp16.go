package quant

import (
	"slices"

	"github.com/pqvc/pqvc/ir"
)

// toFP16 converts g to f16 in place, as onnxconverter-common's float16
// conversion does: every float constant and every op not in o.Block computes
// in f16; blocked ops, quantized ops and the graph's inputs and outputs stay
// f32, with a Cast wherever the two meet. Values are visited in topological
// order, so each op's arguments already have their final types.
func toFP16(g *ir.Graph, o QuantizeOptions) (*Stats, error) {
	order, err := g.Topo()
	if err != nil {
		return nil, err
	}
	st := &Stats{}
	half := map[*ir.Value]*ir.Value{} // f32 value → its f16 twin
	full := map[*ir.Value]*ir.Value{} // f16 value → its f32 twin
	n := 0
	cast := func(a *ir.Value, to ir.DType, cache map[*ir.Value]*ir.Value) (*ir.Value, error) {
		if c := cache[a]; c != nil {
			return c, nil
		}
		n++
		var c *ir.Value
		if a.IsConst() && to == ir.F16 {
			c = g.AddConst(a.Name+"_fp16", constToF16(a.Const))
		} else {
			var err error
			name := ""
			if a.Name != "" {
				name = a.Name + "_to_" + to.String()
			}
			if c, err = g.Add("Cast", name, ir.Attrs{"to": to.String()}, a); err != nil {
				return nil, err
			}
			st.Casts++
		}
		cache[a] = c
		return c, nil
	}
	for _, v := range order {
		if v.Op == ir.OpInput || v.Op == ir.OpConst {
			continue
		}
		def := ir.LookupOp(v.Op)
		// ONNX Runtime's CPU contrib kernels (Attention, MultiHeadAttention,
		// Gelu, …) are registered for float only, so a fused graph keeps
		// them in f32 with Casts around.
		contrib, _ := ir.SplitDomain(v.Op)
		keep := slices.Contains(o.Block, v.Op) || def != nil && def.Quantized || v.Op == "Cast" || contrib != ""
		for i, a := range v.Args() {
			if a == nil {
				continue
			}
			switch {
			case keep && a.Type.DType == ir.F16 && v.Op != "Cast":
				c, err := cast(a, ir.F32, full)
				if err != nil {
					return nil, err
				}
				v.SetArg(i, c)
			case !keep && a.Type.DType == ir.F32:
				c, err := cast(a, ir.F16, half)
				if err != nil {
					return nil, err
				}
				v.SetArg(i, c)
			}
		}
		if err := g.Reinfer(v); err != nil {
			return nil, err
		}
		if !keep && v.Type.DType == ir.F16 {
			st.Quantized++
		}
	}
	for i, out := range g.Outputs {
		if out.Value.Type.DType == ir.F16 {
			c, err := cast(out.Value, ir.F32, full)
			if err != nil {
				return nil, err
			}
			g.Outputs[i].Value = c
		}
	}
	g.RemoveDead()
	return st, nil
}

// constToF16 rounds a float constant to f16, saturating to ±65504 rather
// than overflowing to infinity (as onnxconverter's clamping does).
func constToF16(t *ir.Tensor) *ir.Tensor {
	xs, _ := t.AsFloat64s()
	out := ir.MustTensor(ir.F16, t.Shape...)
	d := out.Data.([]uint16)
	for i, x := range xs {
		d[i] = ir.F32ToF16(float32(min(max(x, -65504), 65504)))
	}
	return out
}
