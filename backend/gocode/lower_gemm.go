// Copyright 2026 The pqvc Authors.

package gocode

import (
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
)

func sqrt64(x float64) float64 { return math.Sqrt(x) }

// packB returns the field of w packed for SgemmPacked (op(B) is k×n).
func (c *gen) packB(w *ir.Value, transB bool, k, n int) (string, error) {
	key := w
	if name, ok := c.packed[key]; ok && !transB {
		return name, nil
	}
	src, err := c.buf(w)
	if err != nil {
		return "", err
	}
	ld := n
	if transB {
		ld = k
	}
	name := c.newField("p", "*kernels.PackedB")
	fmt.Fprintf(&c.initCode, "m.%s = kernels.PackB(%v, %d, %d, %s, %d)\n", name, transB, k, n, src, ld)
	if !transB {
		c.packed[key] = name
	}
	return name, nil
}

// lowerGemm lowers MatMul, Gemm and FusedMatMul (f32). bias, when not nil,
// is a constant row added in the GEMM epilogue.
func (c *gen) lowerGemm(v *ir.Value, dst string, args []string, bias *ir.Value) error {
	a, _ := staticDims(v.Arg(0))
	b, _ := staticDims(v.Arg(1))
	out, _ := staticDims(v)
	transA, transB := false, false
	alpha := float32(1)
	switch v.Op {
	case "Gemm":
		transA, transB, alpha = v.Int("transA") != 0, v.Int("transB") != 0, v.Float("alpha")
		if len(a) != 2 || len(b) != 2 {
			return fmt.Errorf("Gemm wants 2-D operands, have %v and %v", a, b)
		}
	case ir.MSDomain + ".FusedMatMul":
		transA, transB, alpha = v.Int("transA") != 0, v.Int("transB") != 0, v.Float("alpha")
		if v.Int("transBatchA") != 0 || v.Int("transBatchB") != 0 {
			return fmt.Errorf("FusedMatMul with transBatch has no Go lowering")
		}
	}
	if len(a) < 2 || len(b) < 2 {
		return fmt.Errorf("MatMul of rank-%d by rank-%d operands has no Go lowering", len(a), len(b))
	}
	m, k := a[len(a)-2], a[len(a)-1]
	if transA {
		m, k = k, m
	}
	n := b[len(b)-1]
	if transB {
		n = b[len(b)-2]
	}
	biasArg := "nil"
	if bias != nil {
		var err error
		if biasArg, err = c.buf(bias); err != nil {
			return err
		}
	}
	// Constant weights: packed once in New, A's leading dims flattened
	// into rows.
	if c.packable(v.Arg(1)) && !transA && alpha == 1 {
		pb, err := c.packB(v.Arg(1), transB, k, n)
		if err != nil {
			return err
		}
		rows := numel(a) / k
		c.emitf(v, "kernels.SgemmPacked(%d, %s, %d, m.%s, %s, %d, %s)", rows, args[0], k, pb, dst, n, biasArg)
		return c.gemmC(v, dst, args, out)
	}
	if bias != nil {
		return fmt.Errorf("internal: bias fused into an unpacked GEMM")
	}
	ba, bb := a[:len(a)-2], b[:len(b)-2]
	bo := out[:len(out)-2]
	nb := numel(bo)
	sa, sb := m*k, k*n
	switch {
	case numel(ba) == nb && sameTail(ba, bo):
	case numel(ba) == 1:
		sa = 0
	default:
		return fmt.Errorf("MatMul batch broadcast %v × %v has no Go lowering", a, b)
	}
	switch {
	case numel(bb) == nb && sameTail(bb, bo):
	case numel(bb) == 1:
		sb = 0
	default:
		return fmt.Errorf("MatMul batch broadcast %v × %v has no Go lowering", a, b)
	}
	c.emitf(v, "gort.BatchedMatMul(%s, %s, %s, %d, %d, %d, %d, %v, %v, %s, %d, %d)", dst, args[0], args[1],
		nb, m, n, k, transA, transB, floatLit(alpha), sa, sb)
	return c.gemmC(v, dst, args, out)
}

// gemmC adds Gemm's beta·C after the product.
func (c *gen) gemmC(v *ir.Value, dst string, args []string, out []int) error {
	if v.Op != "Gemm" || v.Arg(2) == nil {
		return nil
	}
	beta := v.Float("beta")
	cd, _ := staticDims(v.Arg(2))
	src := args[2]
	if beta != 1 {
		s := c.scratchF32(numel(cd))
		c.emitf(v, "gort.BinScalar(gort.OpMul, m.%s[:%d], %s, %s, false)", s, numel(cd), src, floatLit(beta))
		src = fmt.Sprintf("m.%s[:%d]", s, numel(cd))
	}
	c.emitf(v, "gort.BinBroadcast(gort.OpAdd, %s, %s, %s, %s, %s, %s)", dst, dst, src, intsLit(out),
		intsLit(bcastStrides(out, out)), intsLit(bcastStrides(cd, out)))
	return nil
}

func sameTail(a, b []int) bool {
	for len(a) > 0 && a[0] == 1 {
		a = a[1:]
	}
	for len(b) > 0 && b[0] == 1 {
		b = b[1:]
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lowerMatMulInteger emits the int8 GEMM: weights packed once in New
// (PackBS8), activations u8 or s8 with a run-time zero point.
func (c *gen) lowerMatMulInteger(v *ir.Value, dst string, args []string) error {
	c.usesQuant = true
	a, _ := staticDims(v.Arg(0))
	b, _ := staticDims(v.Arg(1))
	if len(a) < 2 || len(b) != 2 || v.Arg(1).Type.DType != ir.I8 {
		return fmt.Errorf("MatMulInteger of %v by %v %v has no Go lowering (want int8 2-D weights)", a, v.Arg(1).Type.DType, b)
	}
	if !c.packable(v.Arg(1)) {
		return fmt.Errorf("MatMulInteger with run-time weights has no Go lowering")
	}
	if w := v.Arg(3); w != nil {
		if zs, ok := ir.ConstFloats(w); !ok || len(zs) != 1 || zs[0] != 0 {
			return fmt.Errorf("MatMulInteger with a weight zero point has no Go lowering")
		}
	}
	k, n := b[0], b[1]
	rows := numel(a) / k
	wsrc, err := c.buf(v.Arg(1))
	if err != nil {
		return err
	}
	name := c.newField("q", "*kernels.PackedBS8")
	fmt.Fprintf(&c.initCode, "m.%s = kernels.PackBS8(false, %d, %d, %s, %d)\n", name, k, n, wsrc, n)
	zp := "0"
	if z := v.Arg(2); z != nil {
		if zp, err = c.scalar(z); err != nil {
			return err
		}
		if r := c.root(z); r.IsConst() {
			is, _ := ir.ConstInts(r)
			if len(is) > 0 {
				zp = fmt.Sprint(is[0])
			}
		}
	}
	switch v.Arg(0).Type.DType {
	case ir.U8:
		c.emitf(v, "kernels.GemmU8S8Packed(%d, %s, %d, %s, m.%s, %s, %d)", rows, args[0], k, zp, name, dst, n)
	case ir.I8:
		c.emitf(v, "kernels.GemmS8S8Packed(%d, %s, %d, %s, m.%s, 0, %s, %d)", rows, args[0], k, zp, name, dst, n)
	default:
		return fmt.Errorf("MatMulInteger on %v activations has no Go lowering", v.Arg(0).Type.DType)
	}
	return nil
}

// lowerFused writes a GEMM with its epilogue (see fuseEpilogues).
func (c *gen) lowerFused(v *ir.Value, f *fusion) error {
	dst, err := c.buf(v)
	if err != nil {
		return err
	}
	if f.scale == nil {
		args := make([]string, v.NumArgs())
		for i, a := range v.Args() {
			if a != nil {
				if args[i], err = c.buf(a); err != nil {
					return err
				}
			}
		}
		return c.lowerGemm(v, dst, args, f.bias)
	}
	acc, err := c.buf(f.gemm)
	if err != nil {
		return err
	}
	s, err := c.scalar(f.scale)
	if err != nil {
		return err
	}
	bias := "nil"
	if f.bias != nil {
		if bias, err = c.buf(f.bias); err != nil {
			return err
		}
	}
	c.emitf(v, "gort.Rescale(%s, %s, %s, %s)", dst, acc, s, bias)
	return nil
}

func (c *gen) lowerConv(v *ir.Value, dst string, args []string) error {
	x, _ := staticDims(v.Arg(0))
	w, _ := staticDims(v.Arg(1))
	out, _ := staticDims(v)
	if len(x) != 4 || len(w) != 4 {
		return fmt.Errorf("only 2-D convolutions have a Go lowering, have input %v", x)
	}
	geo, err := ir.ConvParams(v, v.Arg(0).Type.Shape, v.Arg(1).Type.Shape)
	if err != nil {
		return err
	}
	if geo.Group != 1 {
		return fmt.Errorf("grouped convolution (group=%d) has no Go lowering", geo.Group)
	}
	g := []int{x[2], x[3], w[2], w[3], int(geo.Strides[0]), int(geo.Strides[1]), int(geo.Dilations[0]),
		int(geo.Dilations[1]), int(geo.Pads[0]), int(geo.Pads[1]), out[2], out[3]}
	col := c.scratchF32(w[1] * w[2] * w[3] * out[2] * out[3])
	bias := "nil"
	if v.NumArgs() > 2 && v.Arg(2) != nil {
		bias = args[2]
	}
	c.emitf(v, "gort.Conv2D(%s, %s, %s, %s, m.%s, %d, %d, %d, %s)", dst, args[0], args[1], bias, col, x[0], x[1], w[0], intsLit(g))
	return nil
}

// qInner returns the per-axis channel stride of a Q/DQ's parameters.
func qInner(v *ir.Value, in []int) (int, error) {
	n := numelType(v.Arg(1))
	if n <= 1 {
		return 1, nil
	}
	ax := int(v.Int("axis"))
	if ax < 0 {
		ax += len(in)
	}
	if ax < 0 || ax >= len(in) || in[ax] != n {
		return 0, fmt.Errorf("per-axis parameters of %d entries do not fit axis %d of %v", n, v.Int("axis"), in)
	}
	return numel(in[ax+1:]), nil
}

func (c *gen) lowerQuantize(v *ir.Value, dst string, args []string) error {
	c.usesQuant = true
	in, _ := staticDims(v.Arg(0))
	inner, err := qInner(v, in)
	if err != nil {
		return err
	}
	if v.Arg(0).Type.DType != ir.F32 {
		return fmt.Errorf("QuantizeLinear of %v has no Go lowering", v.Arg(0).Type.DType)
	}
	zp := "nil"
	if v.NumArgs() > 2 && v.Arg(2) != nil {
		zp = args[2]
	}
	switch v.Type.DType {
	case ir.U8:
		c.emitf(v, "gort.QuantizeU8(%s, %s, %s, %s, %d)", dst, args[0], args[1], zp, inner)
	case ir.I8:
		c.emitf(v, "gort.QuantizeS8(%s, %s, %s, %s, %d)", dst, args[0], args[1], zp, inner)
	default:
		return fmt.Errorf("QuantizeLinear to %v has no Go lowering", v.Type.DType)
	}
	return nil
}

func (c *gen) lowerDequantize(v *ir.Value, dst string, args []string) error {
	c.usesQuant = true
	in, _ := staticDims(v.Arg(0))
	inner, err := qInner(v, in)
	if err != nil {
		return err
	}
	switch v.Arg(0).Type.DType {
	case ir.U8, ir.I8, ir.I32:
	default:
		return fmt.Errorf("DequantizeLinear of %v has no Go lowering", v.Arg(0).Type.DType)
	}
	zp := "nil"
	if v.NumArgs() > 2 && v.Arg(2) != nil {
		zp = args[2]
	}
	c.emitf(v, "gort.Dequantize(%s, %s, %s, %s, %d)", dst, args[0], args[1], zp, inner)
	return nil
}

func (c *gen) lowerConcat(v *ir.Value, dst string, args []string, out []int) error {
	ax := int(v.Int("axis"))
	if ax < 0 {
		ax += len(out)
	}
	if ax < 0 || ax >= len(out) {
		return fmt.Errorf("axis %d out of range", v.Int("axis"))
	}
	typ, err := goType(v.Type.DType)
	if err != nil {
		return err
	}
	var srcs []string
	var widths []int
	for i, a := range v.Args() {
		d, _ := staticDims(a)
		srcs = append(srcs, args[i])
		widths = append(widths, numel(d[ax:]))
	}
	c.emitf(v, "gort.Concat(%s, %d, [][]%s{%s}, %s)", dst, numel(out[:ax]), typ, joinComma(srcs), intsLit(widths))
	return nil
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

func (c *gen) lowerSlice(v *ir.Value, dst, src string, out []int) error {
	in, _ := staticDims(v.Arg(0))
	starts, _, axes, steps, ok := ir.SliceParams(v)
	if !ok {
		return fmt.Errorf("Slice with run-time bounds has no Go lowering")
	}
	if len(in) > 8 {
		return fmt.Errorf("rank %d slice has no Go lowering (max 8)", len(in))
	}
	start := make([]int, len(in))
	step := make([]int, len(in))
	for i := range step {
		step[i] = 1
	}
	for i, ax := range axes {
		n := int64(in[ax])
		st := int64(1)
		if steps != nil {
			st = steps[i]
		}
		s := starts[i]
		if s < 0 {
			s += n
		}
		if st > 0 {
			s = min(max(s, 0), n)
		} else {
			s = min(max(s, 0), n-1)
		}
		start[ax], step[ax] = int(s), int(st)
	}
	c.emitf(v, "gort.Slice(%s, %s, %s, %s, %s, %s)", dst, src, intsLit(in), intsLit(out), intsLit(start), intsLit(step))
	return nil
}
