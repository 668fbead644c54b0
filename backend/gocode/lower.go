// Copyright 2026 The pqvc Authors.

package gocode

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
)

var binOps = map[string]string{"Add": "OpAdd", "Sub": "OpSub", "Mul": "OpMul", "Div": "OpDiv",
	"Pow": "OpPow", "Max": "OpMax", "Min": "OpMin"}

var unaryOps = map[string]string{"Neg": "OpNeg", "Sqrt": "OpSqrt", "Exp": "OpExp", "Erf": "OpErf",
	"Relu": "OpRelu", "Tanh": "OpTanh", "Sigmoid": "OpSigmoid", "Abs": "OpAbs", "Reciprocal": "OpReciprocal",
	"Round": "OpRound", "Floor": "OpFloor", "Ceil": "OpCeil", "Log": "OpLog",
	ir.MSDomain + ".Gelu": "OpGelu", "Gelu": "OpGelu"}

var reduceOps = map[string]string{"ReduceSum": "RedSum", "ReduceMean": "RedMean", "ReduceMax": "RedMax", "ReduceMin": "RedMin"}

// lower writes the code computing v into its (already allocated) buffer.
// An op without a Go lowering is an error naming it.
func (c *gen) lower(v *ir.Value) error {
	dst, err := c.buf(v)
	if err != nil {
		return err
	}
	out, err := staticDims(v)
	if err != nil {
		return err
	}
	args := make([]string, v.NumArgs())
	for i, a := range v.Args() {
		if a == nil {
			continue
		}
		if !isShapeArg(v, i) {
			if args[i], err = c.buf(a); err != nil {
				return err
			}
		}
	}
	f32 := v.Type.DType == ir.F32
	for _, a := range dataArgs(v) {
		if a.Type.DType != ir.F32 && !movesAnyType(v.Op) && !isQuantOp(v.Op) {
			f32 = false
		}
	}
	switch op := v.Op; {
	case binOps[op] != "" && f32:
		return c.lowerBinary(v, binOps[op], dst, args, out)
	case unaryOps[op] != "" && f32:
		if op == "Gelu" && v.Str("approximate") == "tanh" {
			c.emitf(v, "gort.Unary(gort.OpGeluTanh, %s, %s)", dst, args[0])
			return nil
		}
		if op == ir.MSDomain+".Gelu" && v.Arg(1) != nil {
			return fmt.Errorf("%s with a bias argument has no Go lowering", op)
		}
		c.emitf(v, "gort.Unary(gort.%s, %s, %s)", unaryOps[op], dst, args[0])
	case op == "Clip" && f32:
		lo, hi := "float32(math.Inf(-1))", "float32(math.Inf(1))"
		if a := v.Arg(1); a != nil {
			if lo, err = c.scalar(a); err != nil {
				return err
			}
		}
		if a := v.Arg(2); a != nil {
			if hi, err = c.scalar(a); err != nil {
				return err
			}
		}
		c.emitf(v, "gort.Clip(%s, %s, %s, %s)", dst, args[0], lo, hi)
	case c.pair[v] != nil:
		lo, hi := v, c.pair[v]
		if v.Op == "ReduceMax" {
			lo, hi = hi, lo
		}
		lb, err := c.buf(lo)
		if err != nil {
			return err
		}
		hb, err := c.buf(hi)
		if err != nil {
			return err
		}
		c.emitf(v, "gort.MinMax(%s, %s, %s)", lb, hb, args[0])
	case reduceOps[op] != "" && f32:
		return c.lowerReduce(v, dst, args[0])
	case op == "Softmax" && f32:
		in, _ := staticDims(v.Arg(0))
		o, n, inner, err := axisSplit(in, int(v.Int("axis")))
		if err != nil {
			return err
		}
		c.emitf(v, "gort.Softmax(%s, %s, %d, %d, %d)", dst, args[0], o, n, inner)
	case op == "LayerNormalization" && f32:
		return c.lowerLayerNorm(v, dst, args, out)
	case op == ir.MSDomain+".MultiHeadAttention" && f32:
		return c.lowerMHA(v, dst, args)
	case (op == "MatMul" || op == "Gemm" || op == ir.MSDomain+".FusedMatMul") && f32:
		return c.lowerGemm(v, dst, args, nil)
	case op == "MatMulInteger":
		return c.lowerMatMulInteger(v, dst, args)
	case op == "Conv" && f32:
		return c.lowerConv(v, dst, args)
	case op == "Cast":
		st, _ := goType(v.Arg(0).Type.DType)
		if v.Arg(0).Type.DType == ir.Bool || v.Type.DType == ir.Bool {
			return fmt.Errorf("Cast from %s to %v has no Go lowering", st, v.Type.DType)
		}
		c.emitf(v, "gort.Convert(%s, %s)", dst, args[0])
	case op == "QuantizeLinear":
		return c.lowerQuantize(v, dst, args)
	case op == "DequantizeLinear":
		return c.lowerDequantize(v, dst, args)
	case op == "Transpose":
		in, _ := staticDims(v.Arg(0))
		perm := make([]int, len(in))
		for i, p := range v.Ints("perm") {
			perm[i] = int(p)
		}
		if len(v.Ints("perm")) == 0 {
			for i := range perm {
				perm[i] = len(in) - 1 - i
			}
		}
		if len(in) > 8 {
			return fmt.Errorf("rank %d transpose has no Go lowering (max 8)", len(in))
		}
		c.emitf(v, "gort.Transpose(%s, %s, %s, %s)", dst, args[0], intsLit(in), intsLit(perm))
	case op == "Expand":
		in, _ := staticDims(v.Arg(0))
		c.emitf(v, "gort.Broadcast(%s, %s, %s, %s)", dst, args[0], intsLit(out), intsLit(bcastStrides(in, out)))
	case op == "Concat":
		return c.lowerConcat(v, dst, args, out)
	case op == "Slice":
		return c.lowerSlice(v, dst, args[0], out)
	case op == "Gather":
		in, _ := staticDims(v.Arg(0))
		if v.Arg(1).Type.DType != ir.I64 && v.Arg(1).Type.DType != ir.I32 {
			return fmt.Errorf("Gather indices of %v have no Go lowering", v.Arg(1).Type.DType)
		}
		ax := int(v.Int("axis"))
		if ax < 0 {
			ax += len(in)
		}
		if ax < 0 || ax >= len(in) {
			return fmt.Errorf("axis %d out of range", v.Int("axis"))
		}
		c.check(v, fmt.Sprintf("gort.Gather(%s, %s, %s, %d, %d, %d)", dst, args[0], args[1], numel(in[:ax]), in[ax], numel(in[ax+1:])))
	default:
		return fmt.Errorf("op %s (on %v) has no Go lowering", op, v.Type.DType)
	}
	return nil
}

// isShapeArg reports whether argument i of v is read at emit time only.
func isShapeArg(v *ir.Value, i int) bool {
	for _, a := range dataArgs(v) {
		if a == v.Arg(i) {
			return false
		}
	}
	return true
}

func movesAnyType(op string) bool {
	switch op {
	case "Transpose", "Expand", "Concat", "Slice", "Gather", "Cast":
		return true
	}
	return false
}

func isQuantOp(op string) bool {
	switch op {
	case "QuantizeLinear", "DequantizeLinear", "MatMulInteger", "Clip":
		return true
	}
	return false
}

// axisSplit views a shape as [outer, n, inner] around axis.
func axisSplit(dims []int, axis int) (outer, n, inner int, err error) {
	if axis < 0 {
		axis += len(dims)
	}
	if axis < 0 || axis >= len(dims) {
		return 0, 0, 0, fmt.Errorf("axis %d out of range for rank %d", axis, len(dims))
	}
	return numel(dims[:axis]), dims[axis], numel(dims[axis+1:]), nil
}

// bcastStrides returns the strides of a tensor of shape in read over the
// broadcast shape out (0 on broadcast axes; in is right-aligned).
func bcastStrides(in, out []int) []int {
	st := make([]int, len(out))
	s := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := i - (len(out) - len(in))
		if j < 0 {
			continue
		}
		if in[j] != 1 || out[i] == 1 {
			st[i] = s
		}
		s *= in[j]
	}
	return st
}

func (c *gen) lowerBinary(v *ir.Value, op, dst string, args []string, out []int) error {
	a, _ := staticDims(v.Arg(0))
	b, _ := staticDims(v.Arg(1))
	na, nb, n := numel(a), numel(b), numel(out)
	switch {
	case na == n && nb == n:
		c.emitf(v, "gort.BinSame(gort.%s, %s, %s, %s)", op, dst, args[0], args[1])
	case nb == 1 && na == n:
		s, err := c.scalar(v.Arg(1))
		if err != nil {
			return err
		}
		c.emitf(v, "gort.BinScalar(gort.%s, %s, %s, %s, false)", op, dst, args[0], s)
	case na == 1 && nb == n:
		s, err := c.scalar(v.Arg(0))
		if err != nil {
			return err
		}
		c.emitf(v, "gort.BinScalar(gort.%s, %s, %s, %s, true)", op, dst, args[1], s)
	case na == n && isRow(b, out):
		c.emitf(v, "gort.BinRow(gort.%s, %s, %s, %s, false)", op, dst, args[0], args[1])
	case nb == n && isRow(a, out):
		c.emitf(v, "gort.BinRow(gort.%s, %s, %s, %s, true)", op, dst, args[1], args[0])
	default:
		if len(out) > 8 {
			return fmt.Errorf("rank %d broadcast has no Go lowering (max 8)", len(out))
		}
		c.emitf(v, "gort.BinBroadcast(gort.%s, %s, %s, %s, %s, %s, %s)", op, dst, args[0], args[1],
			intsLit(out), intsLit(bcastStrides(a, out)), intsLit(bcastStrides(b, out)))
	}
	return nil
}

// isRow reports whether shape s, right-aligned against out, is a trailing
// block (ones, then out's trailing dims): one row repeated over the rest.
func isRow(s, out []int) bool {
	k := len(s)
	for k > 0 && s[len(s)-k] == 1 {
		k--
	}
	if k == 0 || k > len(out) {
		return false
	}
	for i := 0; i < k; i++ {
		if s[len(s)-k+i] != out[len(out)-k+i] {
			return false
		}
	}
	return true
}

func (c *gen) lowerReduce(v *ir.Value, dst, src string) error {
	in, _ := staticDims(v.Arg(0))
	axes, err := ir.ReduceAxes(v, len(in))
	if err != nil {
		return err
	}
	if axes == nil { // noop_with_empty_axes: a copy
		c.emitf(v, "gort.Copy(%s, %s)", dst, src)
		return nil
	}
	lo, hi := axes[0], axes[0]
	for _, a := range axes {
		lo, hi = min(lo, a), max(hi, a)
	}
	if hi-lo+1 != len(axes) {
		return fmt.Errorf("reduction over non-adjacent axes %v has no Go lowering", axes)
	}
	c.emitf(v, "gort.Reduce(gort.%s, %s, %s, %d, %d, %d)", reduceOps[v.Op], dst, src,
		numel(in[:lo]), numel(in[lo:hi+1]), numel(in[hi+1:]))
	return nil
}

func (c *gen) lowerLayerNorm(v *ir.Value, dst string, args []string, out []int) error {
	ax := int(v.Int("axis"))
	if ax < 0 {
		ax += len(out)
	}
	if ax < 0 || ax >= len(out) {
		return fmt.Errorf("axis %d out of range", v.Int("axis"))
	}
	n := numel(out[ax:])
	for i := 1; i <= 2; i++ {
		if a := v.Arg(i); a != nil && numelType(a) != n {
			return fmt.Errorf("LayerNormalization argument %d has %d elements, want %d", i, numelType(a), n)
		}
	}
	beta := "nil"
	if v.Arg(2) != nil {
		beta = args[2]
	}
	fn := "LayerNormFast"
	if c.quant {
		fn = "LayerNorm"
	}
	c.emitf(v, "gort.%s(%s, %s, %s, %s, %d, %d, %s)", fn, dst, args[0], args[1], beta, numel(out[:ax]), n, floatLit(v.Float("epsilon")))
	return nil
}

func (c *gen) lowerMHA(v *ir.Value, dst string, args []string) error {
	for i := 3; i < v.NumArgs(); i++ {
		if v.Arg(i) != nil {
			return fmt.Errorf("MultiHeadAttention with argument %d (bias, mask or past) has no Go lowering", i)
		}
	}
	if v.Arg(1) == nil || v.Arg(2) == nil {
		return fmt.Errorf("MultiHeadAttention without separate key and value has no Go lowering")
	}
	q, _ := staticDims(v.Arg(0))
	k, _ := staticDims(v.Arg(1))
	val, _ := staticDims(v.Arg(2))
	if len(q) != 3 || len(k) != 3 || len(val) != 3 {
		return fmt.Errorf("MultiHeadAttention wants [B,S,E] query, key and value")
	}
	heads := int(v.Int("num_heads"))
	if heads <= 0 || q[2]%heads != 0 || val[2]%heads != 0 {
		return fmt.Errorf("widths %d and %d are not multiples of num_heads %d", q[2], val[2], heads)
	}
	scale := v.Float("scale")
	if scale == 0 {
		scale = float32(1 / sqrt64(float64(q[2]/heads)))
	}
	scores := c.scratchF32(q[1] * k[1])
	c.emitf(v, "gort.MHA(%s, %s, %s, %s, m.%s, %d, %d, %d, %d, %d, %d, %s)", dst, args[0], args[1], args[2],
		scores, q[0], q[1], k[1], q[2], val[2], heads, floatLit(scale))
	return nil
}

// scratchF32 returns a shared f32 scratch buffer of at least n floats.
// Scratch is only used inside one op, so one buffer serves all ops.
func (c *gen) scratchF32(n int) string {
	c.scratch["scratch"] = max(c.scratch["scratch"], n)
	return "scratch"
}
