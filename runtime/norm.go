package runtime

import (
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/kernels"
)

func init() {
	register("Softmax", softmax)
	register("LogSoftmax", softmax)
	register("LayerNormalization", layerNorm)
	for _, op := range []string{"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare"} {
		register(op, reduce)
	}
	register("GlobalAveragePool", globalAvgPool)
}

// axisSplit views shape as [outer, n, inner] around axis.
func axisSplit(shape []int64, axis int64) (outer, n, inner int, err error) {
	r := int64(len(shape))
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return 0, 0, 0, fmt.Errorf("axis %d out of range for rank %d", axis, r)
	}
	return prod(shape[:axis]), int(shape[axis]), prod(shape[axis+1:]), nil
}

func softmax(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	if a.DType != ir.F32 {
		return nil, fmt.Errorf("%s on %v is not supported", v.Op, a.DType)
	}
	outer, n, inner, err := axisSplit(a.Shape, v.Int("axis"))
	if err != nil {
		return nil, err
	}
	res, _ := newTensor(ir.F32, a.Shape)
	src, dst := a.F32(), res.F32()
	logSm := v.Op == "LogSoftmax"
	if inner == 1 {
		// Contiguous rows (the attention scores): vector exp per row.
		parallelFor(outer, max(1, 4096/max(n, 1)), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				softmaxRow(dst[r*n:(r+1)*n], src[r*n:(r+1)*n], logSm)
			}
		})
		return res, nil
	}
	parallelFor(outer*inner, max(1, 4096/max(n, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o, i := r/inner, r%inner
			base := o*n*inner + i
			m := float32(math.Inf(-1))
			for j := range n {
				m = max(m, src[base+j*inner])
			}
			var sum float32
			for j := range n {
				e := expf(src[base+j*inner] - m)
				dst[base+j*inner] = e
				sum += e
			}
			if logSm {
				ls := float32(math.Log(float64(sum)))
				for j := range n {
					dst[base+j*inner] = src[base+j*inner] - m - ls
				}
				continue
			}
			inv := 1 / sum
			for j := range n {
				dst[base+j*inner] *= inv
			}
		}
	})
	return res, nil
}

func softmaxRow(dst, src []float32, logSm bool) {
	m := maxOf(src)
	for j, x := range src {
		dst[j] = x - m
	}
	if logSm {
		var sum float64
		for _, x := range dst {
			sum += float64(expf(x))
		}
		ls := float32(math.Log(sum))
		for j := range dst {
			dst[j] -= ls
		}
		return
	}
	kernels.Exp(dst, dst)
	inv := 1 / sum4(dst)
	for j := range dst {
		dst[j] *= inv
	}
}

func layerNorm(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a, scale := args[0], args[1]
	var bias *ir.Tensor
	if len(args) > 2 {
		bias = args[2]
	}
	if a.DType != ir.F32 {
		return nil, fmt.Errorf("LayerNormalization on %v is not supported", a.DType)
	}
	axis := v.Int("axis")
	if axis < 0 {
		axis += int64(len(a.Shape))
	}
	if axis < 0 || axis >= int64(len(a.Shape)) {
		return nil, fmt.Errorf("axis %d out of range", v.Int("axis"))
	}
	rows, n := prod(a.Shape[:axis]), prod(a.Shape[axis:])
	sc := a.Shape[axis:]
	if scale.Len() != n && scale.Len() != 1 {
		return nil, fmt.Errorf("scale %v does not match normalised dims %v", scale.Shape, sc)
	}
	if bias != nil && bias.Len() != n && bias.Len() != 1 {
		return nil, fmt.Errorf("bias %v does not match normalised dims %v", bias.Shape, sc)
	}
	eps := float64(v.Float("epsilon"))
	res, _ := newTensor(ir.F32, a.Shape)
	src, dst, g := a.F32(), res.F32(), scale.F32()
	var b []float32
	if bias != nil {
		b = bias.F32()
	}
	parallelFor(rows, max(1, 8192/max(n, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, out := src[r*n:(r+1)*n], dst[r*n:(r+1)*n]
			// Two passes in float64 for the statistics: cheap at these
			// widths and robust to large means.
			var mean float64
			for _, x := range row {
				mean += float64(x)
			}
			mean /= float64(n)
			var variance float64
			for _, x := range row {
				d := float64(x) - mean
				variance += d * d
			}
			variance /= float64(n)
			inv := float32(1 / math.Sqrt(variance+eps))
			m := float32(mean)
			for j, x := range row {
				y := (x - m) * inv * g[j%len(g)]
				if b != nil {
					y += b[j%len(b)]
				}
				out[j] = y
			}
		}
	})
	return res, nil
}

func reduce(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	axes, err := ir.ReduceAxes(v, len(a.Shape))
	if err != nil {
		return nil, err
	}
	if axes == nil {
		return a, nil
	}
	red := make([]bool, len(a.Shape))
	for _, ax := range axes {
		red[ax] = true
	}
	var kept, full []int64
	for i, d := range a.Shape {
		if red[i] {
			full = append(full, 1)
			if v.Int("keepdims") != 0 {
				kept = append(kept, 1)
			}
		} else {
			full = append(full, d)
			kept = append(kept, d)
		}
	}
	if kept == nil {
		kept = []int64{}
	}
	if f, ok := a.Data.([]float32); ok && len(axes) == 1 && axes[0] == len(a.Shape)-1 {
		return reduceLastF32(v.Op, f, a.Shape, kept)
	}
	if f, ok := a.Data.([]float32); ok && len(axes) == len(a.Shape) {
		// A reduction over everything (dynamic quantization's ranges) is a
		// reduction of the last axis of the flattened tensor.
		return reduceLastF32(v.Op, f, []int64{int64(len(f))}, kept)
	}
	src, err := a.AsFloat64s()
	if err != nil {
		return nil, err
	}
	nOut := prod(full)
	acc := make([]float64, nOut)
	cnt := prod(a.Shape) / max(nOut, 1)
	init := map[string]float64{"ReduceMax": math.Inf(-1), "ReduceMin": math.Inf(1), "ReduceProd": 1}[v.Op]
	for i := range acc {
		acc[i] = init
	}
	// Map each input element to its output slot via strides over full.
	outStr := stridesOf(full)
	rank := len(a.Shape)
	idx := make([]int, rank)
	for _, x := range src {
		o := 0
		for d := range rank {
			if !red[d] {
				o += idx[d] * outStr[d]
			}
		}
		switch v.Op {
		case "ReduceMean", "ReduceSum":
			acc[o] += x
		case "ReduceSumSquare", "ReduceL2":
			acc[o] += x * x
		case "ReduceMax":
			acc[o] = max(acc[o], x)
		case "ReduceMin":
			acc[o] = min(acc[o], x)
		case "ReduceProd":
			acc[o] *= x
		}
		for d := rank - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < int(a.Shape[d]) {
				break
			}
			idx[d] = 0
		}
	}
	for i := range acc {
		switch v.Op {
		case "ReduceMean":
			acc[i] /= float64(cnt)
		case "ReduceL2":
			acc[i] = math.Sqrt(acc[i])
		}
	}
	return castTo(&ir.Tensor{DType: ir.F64, Shape: kept, Data: acc}, a.DType)
}

// reduceLastF32 reduces contiguous rows (the LayerNorm statistics of
// opset-13 exports), accumulating in float64.
func reduceLastF32(op string, src []float32, shape, kept []int64) (*ir.Tensor, error) {
	n := int(shape[len(shape)-1])
	rows := prod(shape[:len(shape)-1])
	res, err := newTensor(ir.F32, kept)
	if err != nil {
		return nil, err
	}
	dst := res.F32()
	parallelFor(rows, max(1, 16384/max(n, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := src[r*n : (r+1)*n]
			var acc float64
			switch op {
			case "ReduceMax":
				acc = math.Inf(-1)
			case "ReduceMin":
				acc = math.Inf(1)
			case "ReduceProd":
				acc = 1
			}
			for _, x := range row {
				switch op {
				case "ReduceMean", "ReduceSum":
					acc += float64(x)
				case "ReduceSumSquare", "ReduceL2":
					acc += float64(x) * float64(x)
				case "ReduceMax":
					acc = max(acc, float64(x))
				case "ReduceMin":
					acc = min(acc, float64(x))
				case "ReduceProd":
					acc *= float64(x)
				}
			}
			switch op {
			case "ReduceMean":
				acc /= float64(n)
			case "ReduceL2":
				acc = math.Sqrt(acc)
			}
			dst[r] = float32(acc)
		}
	})
	return res, nil
}

func globalAvgPool(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	if a.DType != ir.F32 || len(a.Shape) < 3 {
		return nil, fmt.Errorf("GlobalAveragePool on %v%v is not supported", a.DType, a.Shape)
	}
	out := append([]int64{}, a.Shape[:2]...)
	for range a.Shape[2:] {
		out = append(out, 1)
	}
	res, _ := newTensor(ir.F32, out)
	n := prod(a.Shape[2:])
	src := a.F32()
	for i := range res.F32() {
		var s float64
		for _, x := range src[i*n : (i+1)*n] {
			s += float64(x)
		}
		res.F32()[i] = float32(s / float64(n))
	}
	return res, nil
}
