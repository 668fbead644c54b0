package ir

// Stats summarises a graph's size and cost.
type Stats struct {
	Params int64          // elements of weight constants (float or 8-bit, more than one element)
	Bytes  int64          // bytes of all constant data
	MACs   int64          // multiply-accumulates of MatMul/Gemm/Conv per sample (symbols = 1)
	Ops    map[string]int // op histogram (excluding Input and Const)
}

// ComputeStats counts params, bytes, MACs and ops. Symbolic dims count as 1,
// so MACs are per sample when only the batch is symbolic.
func ComputeStats(g *Graph) Stats {
	s := Stats{Ops: map[string]int{}}
	for _, v := range g.Values() {
		switch v.Op {
		case OpInput:
			continue
		case OpConst:
			if v.Const == nil {
				continue
			}
			s.Bytes += v.Const.Bytes()
			if dt := v.Const.DType; (dt.IsFloat() || dt == I8 || dt == U8) && v.Const.Len() > 1 && !onlyQParams(v) {
				s.Params += int64(v.Const.Len())
			}
			continue
		}
		s.Ops[v.Op]++
		s.MACs += MACs(v)
	}
	return s
}

// onlyQParams reports whether every use of v is as a quantization scale or
// zero point: per-channel scales are not parameters of the model.
func onlyQParams(v *Value) bool {
	if len(v.uses) == 0 {
		return false
	}
	for _, u := range v.uses {
		switch u.Op {
		case "QuantizeLinear", "DequantizeLinear":
			if u.Arg(0) == v {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func dimOr1(d Dim) int64 {
	if d.IsStatic() {
		return d.C
	}
	return d.C // the static factor of a symbolic product (symbols count as 1)
}

func numel(s Shape) int64 {
	n := int64(1)
	for _, d := range s {
		n *= dimOr1(d)
	}
	return n
}

// MACs is the multiply-accumulate count of one value (0 for ops that are not
// matrix products or convolutions).
func MACs(v *Value) int64 {
	switch v.Op {
	case "MatMul", "MatMulInteger", "QLinearMatMul", MSDomain + ".DynamicQuantizeMatMul", MSDomain + ".MatMulIntegerToFloat":
		a := v.Arg(0)
		if a == nil || a.Type.Rank() == 0 {
			return 0
		}
		return numel(v.Type.Shape) * dimOr1(a.Type.Shape[a.Type.Rank()-1])
	case "Gemm":
		a := v.Arg(0)
		k := a.Type.Shape[1]
		if v.Int("transA") != 0 {
			k = a.Type.Shape[0]
		}
		return numel(v.Type.Shape) * dimOr1(k)
	case "Conv", "ConvInteger", "QLinearConv":
		w := v.Arg(1)
		if v.Op == "QLinearConv" {
			w = v.Arg(3)
		}
		if w == nil || w.Type.Rank() < 2 {
			return 0
		}
		return numel(v.Type.Shape) * numel(w.Type.Shape[1:])
	case MSDomain + ".MultiHeadAttention":
		// softmax(Q·Kᵀ)·V: S·Sk·E for the scores, S·Sk·Ev for the mix.
		q, k := v.Arg(0), v.Arg(1)
		if q == nil || k == nil || q.Type.Rank() != 3 || k.Type.Rank() != 3 {
			return 0
		}
		sk := dimOr1(k.Type.Shape[1])
		return numel(q.Type.Shape)*sk + numel(v.Type.Shape)*sk
	case MSDomain + ".Attention":
		// The QKV projection x·W, then the same two products as above.
		x, w := v.Arg(0), v.Arg(1)
		if x == nil || w == nil || x.Type.Rank() != 3 || w.Type.Rank() != 2 {
			return 0
		}
		s := dimOr1(x.Type.Shape[1])
		return numel(x.Type.Shape)*dimOr1(w.Type.Shape[1]) + 2*numel(v.Type.Shape)*s
	}
	return 0
}
