package runtime

import (
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
)

// Kernels for ONNX Runtime's fused quantized matmuls, which fuse's qmatmul
// pattern emits for target=ort. Each computes exactly what the subgraph it
// replaces computes here (same float32 operations in the same order), so
// fusing changes no bits in pqvc's own evaluation.

func init() {
	register(ir.MSDomain+".DynamicQuantizeMatMul", dynamicQuantizeMatMul)
	register(ir.MSDomain+".MatMulIntegerToFloat", matMulIntegerToFloat)
}

// minDynScale is the floor quantize puts under run-time scales (its
// minScale): an all-zero activation quantizes to zeros, not NaN.
const minDynScale float32 = 1e-30

// dynamicQuantizeU8 is DynamicQuantizeLinear as quantize's function body
// computes it: the range widened to include 0, scale (max−min)/255 floored
// at minDynScale, zero point round half to even(clip(−min/scale, 0, 255)).
func dynamicQuantizeU8(a *ir.Tensor) (*ir.Tensor, float32, int32, error) {
	xs := a.F32()
	lo, hi := float32(0), float32(0)
	if len(xs) > 0 {
		lo, hi = minMax(xs)
		lo, hi = min(lo, 0), max(hi, 0)
	}
	scale := max((hi-lo)/255, minDynScale)
	z := float32(math.RoundToEven(float64(min(max(-(lo/scale), 0), 255))))
	zp := int32(z)
	q, err := newTensor(ir.U8, a.Shape)
	if err != nil {
		return nil, 0, 0, err
	}
	qd := q.Data.([]uint8)
	parallelFor(len(xs), 4096, func(s, e int) {
		for i := s; i < e; i++ {
			qd[i] = uint8(QuantizeValue(xs[i], scale, zp, 0, 255))
		}
	})
	return q, scale, zp, nil
}

// rescale turns i32 accumulators into acc·(aScale·bScale[j]) (+ bias[j]) in
// f32: the Cast, Mul and Add the fused subgraph ran.
func rescale(acc *ir.Tensor, aScale float32, bScale, bias *ir.Tensor) (*ir.Tensor, error) {
	n := int(acc.Shape[len(acc.Shape)-1])
	bs, err := floats(bScale)
	if err != nil {
		return nil, fmt.Errorf("b_scale: %w", err)
	}
	if len(bs) != 1 && len(bs) != n {
		return nil, fmt.Errorf("b_scale has %d entries, want 1 or %d", len(bs), n)
	}
	mult := make([]float32, n)
	for j := range mult {
		mult[j] = aScale * bs[min(j, len(bs)-1)]
	}
	var bv []float32
	if bias != nil {
		if bv, err = floats(bias); err != nil {
			return nil, fmt.Errorf("bias: %w", err)
		}
		if len(bv) != n && len(bv) != 1 {
			return nil, fmt.Errorf("bias has %d entries, want %d", len(bv), n)
		}
	}
	res, err := newTensor(ir.F32, acc.Shape)
	if err != nil {
		return nil, err
	}
	src, dst := acc.Data.([]int32), res.F32()
	parallelFor(len(src)/max(n, 1), 16, func(s, e int) {
		for r := s; r < e; r++ {
			row, out := src[r*n:r*n+n], dst[r*n:r*n+n]
			for j, a := range row {
				out[j] = float32(a) * mult[j]
			}
			if bv != nil {
				for j := range out {
					out[j] += bv[min(j, len(bv)-1)]
				}
			}
		}
	})
	return res, nil
}

// dynamicQuantizeMatMul: A, B, b_scale, b_zero_point, bias.
func dynamicQuantizeMatMul(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	if args[0].DType != ir.F32 {
		return nil, fmt.Errorf("A is %v, want f32", args[0].DType)
	}
	b := args[1]
	bz, err := columnZP(optArg(args, 3), int(b.Shape[len(b.Shape)-1]))
	if err != nil {
		return nil, fmt.Errorf("b_zero_point: %w", err)
	}
	q, scale, zp, err := dynamicQuantizeU8(args[0])
	if err != nil {
		return nil, err
	}
	acc, err := intProduct(x, v.Arg(1), q, b, zp, bz)
	if err != nil {
		return nil, err
	}
	return rescale(acc, scale, args[2], optArg(args, 4))
}

// matMulIntegerToFloat: A, B, a_scale, b_scale, a_zero_point, b_zero_point,
// bias.
func matMulIntegerToFloat(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a, b := args[0], args[1]
	as, err := floats(args[2])
	if err != nil || len(as) != 1 {
		return nil, fmt.Errorf("a_scale must be one f32 (%v)", args[2].Shape)
	}
	az, err := scalarZP(optArg(args, 4))
	if err != nil {
		return nil, fmt.Errorf("a_zero_point: %w", err)
	}
	bz, err := columnZP(optArg(args, 5), int(b.Shape[len(b.Shape)-1]))
	if err != nil {
		return nil, fmt.Errorf("b_zero_point: %w", err)
	}
	acc, err := intProduct(x, v.Arg(1), a, b, az, bz)
	if err != nil {
		return nil, err
	}
	return rescale(acc, as[0], args[3], optArg(args, 6))
}
