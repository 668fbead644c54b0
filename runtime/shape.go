package runtime

import (
	"errors"
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
)

func init() {
	register("Reshape", reshape)
	register("Flatten", flatten)
	register("Squeeze", squeeze)
	register("Unsqueeze", unsqueeze)
	register("Transpose", transpose)
	register("Slice", slice)
	register("Gather", gather)
	register("Concat", concat)
	register("Expand", expand)
	register("Shape", shapeOp)
	register("ConstantOfShape", constantOfShape)
	register("Range", rangeOp)
	register("Tile", tile)
}

func intsArg(t *ir.Tensor, what string) ([]int64, error) {
	if t == nil {
		return nil, fmt.Errorf("%s is missing", what)
	}
	xs, err := t.AsInt64s()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return xs, nil
}

func reshape(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	target, err := intsArg(args[1], "shape")
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(target))
	infer := -1
	known := int64(1)
	for i, d := range target {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has two -1", target)
			}
			infer = i
			continue
		case d == 0 && v.Int("allowzero") == 0:
			if i >= len(a.Shape) {
				return nil, fmt.Errorf("shape %v copies dim %d of %v", target, i, a.Shape)
			}
			d = a.Shape[i]
		case d < 0:
			return nil, fmt.Errorf("negative dim in shape %v", target)
		}
		out[i] = d
		known *= d
	}
	n := int64(a.Len())
	if infer >= 0 {
		if known == 0 || n%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", a.Shape, target)
		}
		out[infer] = n / known
	} else if known != n {
		return nil, fmt.Errorf("cannot reshape %v to %v", a.Shape, target)
	}
	return a.Reshaped(out), nil
}

func flatten(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	axis := int(v.Int("axis"))
	if axis < 0 {
		axis += len(a.Shape)
	}
	return a.Reshaped([]int64{int64(prod(a.Shape[:axis])), int64(prod(a.Shape[axis:]))}), nil
}

// squeeze and unsqueeze take the shape the graph inferred (it is static
// apart from symbolic dims, which keep their place), so they only relabel.
func squeeze(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	drop := make([]bool, len(a.Shape))
	if len(args) > 1 && args[1] != nil {
		axes, err := intsArg(args[1], "axes")
		if err != nil {
			return nil, err
		}
		for _, ax := range axes {
			if ax < 0 {
				ax += int64(len(a.Shape))
			}
			if ax < 0 || ax >= int64(len(a.Shape)) || a.Shape[ax] != 1 {
				return nil, fmt.Errorf("cannot squeeze axis %d of %v", ax, a.Shape)
			}
			drop[ax] = true
		}
	} else {
		for i, d := range a.Shape {
			drop[i] = d == 1
		}
	}
	out := []int64{}
	for i, d := range a.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return a.Reshaped(out), nil
}

func unsqueeze(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	axes, err := intsArg(args[1], "axes")
	if err != nil {
		return nil, err
	}
	rank := len(a.Shape) + len(axes)
	ins := make([]bool, rank)
	for _, ax := range axes {
		if ax < 0 {
			ax += int64(rank)
		}
		if ax < 0 || ax >= int64(rank) || ins[ax] {
			return nil, fmt.Errorf("bad unsqueeze axes %v", axes)
		}
		ins[ax] = true
	}
	out := make([]int64, 0, rank)
	j := 0
	for i := range rank {
		if ins[i] {
			out = append(out, 1)
		} else {
			out = append(out, a.Shape[j])
			j++
		}
	}
	return a.Reshaped(out), nil
}

// gatherIndex copies elements by a flat source index per output element;
// the shape ops below all reduce to it or to strided row copies.
func gatherIndex(a *ir.Tensor, shape []int64, src func(i int) int) (*ir.Tensor, error) {
	res, err := newTensor(a.DType, shape)
	if err != nil {
		return nil, err
	}
	n := prod(shape)
	switch d := res.Data.(type) {
	case []float32:
		s := a.F32()
		parallelFor(n, 65536, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				d[i] = s[src(i)]
			}
		})
	case []int64:
		copyIdx(d, a.I64(), n, src)
	case []int32:
		copyIdx(d, a.Data.([]int32), n, src)
	case []int8:
		copyIdx(d, a.Data.([]int8), n, src)
	case []uint8:
		copyIdx(d, a.Data.([]uint8), n, src)
	case []uint16:
		copyIdx(d, a.Data.([]uint16), n, src)
	case []bool:
		copyIdx(d, a.Data.([]bool), n, src)
	case []float64:
		copyIdx(d, a.Data.([]float64), n, src)
	}
	return res, nil
}

func copyIdx[T any](dst, src []T, n int, idx func(int) int) {
	for i := range n {
		dst[i] = src[idx(i)]
	}
}

// stridedCopy builds a tensor of shape out whose element at multi-index i
// is a's element at base + Σ i[d]·st[d]; rows along the last dim are copied
// with a tight loop.
func stridedCopy(a *ir.Tensor, out []int64, base int, st []int) (*ir.Tensor, error) {
	rank := len(out)
	if rank == 0 {
		return gatherIndex(a, out, func(int) int { return base })
	}
	inner := int(out[rank-1])
	innerStride := st[rank-1]
	rowStart := func(r int) int {
		off := base
		for d := rank - 2; d >= 0; d-- {
			off += (r % int(out[d])) * st[d]
			r /= int(out[d])
		}
		return off
	}
	if innerStride == 1 && inner >= 8 {
		// Contiguous rows: copy whole rows (transposes that keep the last
		// dim, slices on outer axes, broadcasts of whole rows).
		res, err := newTensor(a.DType, out)
		if err != nil {
			return nil, err
		}
		rows := prod(out) / max(inner, 1)
		parallelFor(rows, max(1, 32768/inner), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				copyRange(res, r*inner, a, rowStart(r), inner)
			}
		})
		return res, nil
	}
	if src, ok := a.Data.([]float32); ok {
		// Strided rows (the key transpose of attention): a tight strided
		// loop per row instead of index arithmetic per element.
		res, err := newTensor(a.DType, out)
		if err != nil {
			return nil, err
		}
		dst := res.F32()
		rows := prod(out) / max(inner, 1)
		parallelFor(rows, max(1, 16384/max(inner, 1)), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				off := rowStart(r)
				row := dst[r*inner : (r+1)*inner]
				for j := range row {
					row[j] = src[off+j*innerStride]
				}
			}
		})
		return res, nil
	}
	return gatherIndex(a, out, func(i int) int {
		j := i % inner
		rem := i / inner
		off := base + j*innerStride
		for d := rank - 2; d >= 0; d-- {
			off += (rem % int(out[d])) * st[d]
			rem /= int(out[d])
		}
		return off
	})
}

func transpose(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	perm := v.Ints("perm")
	if perm == nil {
		for i := len(a.Shape) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	in := stridesOf(a.Shape)
	out := make([]int64, len(perm))
	st := make([]int, len(perm))
	for i, p := range perm {
		out[i] = a.Shape[p]
		st[i] = in[p]
	}
	return stridedCopy(a, out, 0, st)
}

func slice(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	rank := len(a.Shape)
	starts, err := intsArg(args[1], "starts")
	if err != nil {
		return nil, err
	}
	ends, err := intsArg(args[2], "ends")
	if err != nil {
		return nil, err
	}
	if len(ends) != len(starts) {
		return nil, errors.New("starts and ends differ in length")
	}
	axes := make([]int64, len(starts))
	for i := range axes {
		axes[i] = int64(i)
	}
	if len(args) > 3 && args[3] != nil {
		if axes, err = intsArg(args[3], "axes"); err != nil {
			return nil, err
		}
	}
	steps := make([]int64, len(starts))
	for i := range steps {
		steps[i] = 1
	}
	if len(args) > 4 && args[4] != nil {
		if steps, err = intsArg(args[4], "steps"); err != nil {
			return nil, err
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, errors.New("slice parameters differ in length")
	}
	out := append([]int64{}, a.Shape...)
	in := stridesOf(a.Shape)
	st := append([]int{}, in...)
	base := 0
	seen := make([]bool, rank)
	for i, ax := range axes {
		if ax < 0 {
			ax += int64(rank)
		}
		if ax < 0 || ax >= int64(rank) || seen[ax] {
			return nil, fmt.Errorf("bad slice axis %d", axes[i])
		}
		seen[ax] = true
		if steps[i] == 0 {
			return nil, errors.New("slice step 0")
		}
		n := a.Shape[ax]
		cnt := ir.SliceLen(starts[i], ends[i], steps[i], n)
		lo := sliceStart(starts[i], steps[i], n)
		out[ax] = cnt
		if cnt > 0 {
			base += int(lo) * in[ax]
		}
		st[ax] = in[ax] * int(steps[i])
	}
	return stridedCopy(a, out, base, st)
}

// sliceStart clamps a start index as ONNX Slice does.
func sliceStart(start, step, n int64) int64 {
	if start < 0 {
		start += n
	}
	if step > 0 {
		return min(max(start, 0), n)
	}
	return min(max(start, 0), n-1)
}

func gather(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	idx, err := intsArg(args[1], "indices")
	if err != nil {
		return nil, err
	}
	axis := int(v.Int("axis"))
	if axis < 0 {
		axis += len(a.Shape)
	}
	n := a.Shape[axis]
	norm := make([]int, len(idx))
	for i, j := range idx {
		if j < -n || j >= n {
			return nil, fmt.Errorf("index %d out of range for axis %d of size %d", j, axis, n)
		}
		if j < 0 {
			j += n
		}
		norm[i] = int(j)
	}
	outer := prod(a.Shape[:axis])
	inner := prod(a.Shape[axis+1:])
	out := append(append(append([]int64{}, a.Shape[:axis]...), args[1].Shape...), a.Shape[axis+1:]...)
	ni := len(norm)
	if inner >= 16 {
		// Whole contiguous blocks per index (timm's qkv[0], the cls token).
		res, err := newTensor(a.DType, out)
		if err != nil {
			return nil, err
		}
		for o := range outer {
			for j, src := range norm {
				copyRange(res, (o*ni+j)*inner, a, (o*int(n)+src)*inner, inner)
			}
		}
		return res, nil
	}
	return gatherIndex(a, out, func(i int) int {
		k := i % inner
		r := i / inner
		j := r % max(ni, 1)
		o := r / max(ni, 1)
		if o >= outer {
			return 0
		}
		return (o*int(n)+norm[j])*inner + k
	})
}

func concat(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	axis := int(v.Int("axis"))
	if axis < 0 {
		axis += len(a.Shape)
	}
	out := append([]int64{}, a.Shape...)
	out[axis] = 0
	for _, t := range args {
		if len(t.Shape) != len(a.Shape) || t.DType != a.DType {
			return nil, fmt.Errorf("cannot concatenate %v%v with %v%v", a.DType, a.Shape, t.DType, t.Shape)
		}
		for d := range out {
			if d != axis && t.Shape[d] != a.Shape[d] {
				return nil, fmt.Errorf("cannot concatenate %v with %v on axis %d", a.Shape, t.Shape, axis)
			}
		}
		out[axis] += t.Shape[axis]
	}
	res, err := newTensor(a.DType, out)
	if err != nil {
		return nil, err
	}
	outer := prod(out[:axis])
	inner := prod(out[axis+1:])
	rowOut := int(out[axis]) * inner
	off := 0
	for _, t := range args {
		w := int(t.Shape[axis]) * inner
		for o := range outer {
			copyRange(res, o*rowOut+off, t, o*w, w)
		}
		off += w
	}
	return res, nil
}

// copyRange copies n elements of src from si to dst at di (same dtype).
func copyRange(dst *ir.Tensor, di int, src *ir.Tensor, si, n int) {
	switch d := dst.Data.(type) {
	case []float32:
		copy(d[di:di+n], src.F32()[si:si+n])
	case []int64:
		copy(d[di:di+n], src.I64()[si:si+n])
	case []int32:
		copy(d[di:di+n], src.Data.([]int32)[si:si+n])
	case []int8:
		copy(d[di:di+n], src.Data.([]int8)[si:si+n])
	case []uint8:
		copy(d[di:di+n], src.Data.([]uint8)[si:si+n])
	case []uint16:
		copy(d[di:di+n], src.Data.([]uint16)[si:si+n])
	case []bool:
		copy(d[di:di+n], src.Data.([]bool)[si:si+n])
	case []float64:
		copy(d[di:di+n], src.Data.([]float64)[si:si+n])
	}
}

func expand(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	target, err := intsArg(args[1], "shape")
	if err != nil {
		return nil, err
	}
	out, err := broadcastShape(a.Shape, target)
	if err != nil {
		return nil, err
	}
	return stridedCopy(a, out, 0, bstrides(a.Shape, out))
}

func shapeOp(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	s := args[0].Shape
	rank := int64(len(s))
	clamp := func(i int64) int64 {
		if i < 0 {
			i += rank
		}
		return min(max(i, 0), rank)
	}
	lo, hi := clamp(v.Int("start")), rank
	if v.HasAttr("end") {
		hi = clamp(v.Int("end"))
	}
	hi = max(hi, lo)
	return ir.I64Tensor([]int64{hi - lo}, append([]int64{}, s[lo:hi]...)), nil
}

func constantOfShape(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	shape, err := intsArg(args[0], "shape")
	if err != nil {
		return nil, err
	}
	dt := v.Type.DType
	res, err := newTensor(dt, shape)
	if err != nil {
		return nil, err
	}
	if fill, ok := v.Attrs["value"].(*ir.Tensor); ok && fill.Len() == 1 {
		n := res.Len()
		one := fill.Reshaped([]int64{})
		for i := range n {
			copyRange(res, i, one, 0, 1)
		}
	}
	return res, nil
}

func rangeOp(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	var p [3]float64
	for i := range 3 {
		f, err := args[i].AsFloat64s()
		if err != nil || len(f) != 1 {
			return nil, errors.New("range bounds must be scalars")
		}
		p[i] = f[0]
	}
	if p[2] == 0 {
		return nil, errors.New("range delta is 0")
	}
	n := int64(max(0, math.Ceil((p[1]-p[0])/p[2])))
	if n > ir.MaxElements {
		return nil, fmt.Errorf("range of %d elements", n)
	}
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = p[0] + float64(i)*p[2]
	}
	return castTo(&ir.Tensor{DType: ir.F64, Shape: []int64{n}, Data: vals}, v.Type.DType)
}

func tile(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	a := args[0]
	reps, err := intsArg(args[1], "repeats")
	if err != nil {
		return nil, err
	}
	if len(reps) != len(a.Shape) {
		return nil, fmt.Errorf("%d repeats for rank %d", len(reps), len(a.Shape))
	}
	out := make([]int64, len(reps))
	for i, r := range reps {
		if r < 0 {
			return nil, fmt.Errorf("negative repeat %d", r)
		}
		out[i] = a.Shape[i] * r
	}
	if _, err := ir.CheckedNumElements(out); err != nil {
		return nil, err
	}
	in := stridesOf(a.Shape)
	return gatherIndex(a, out, func(i int) int {
		off := 0
		for d := len(out) - 1; d >= 0; d-- {
			off += (i % int(out[d]) % int(a.Shape[d])) * in[d]
			i /= int(out[d])
		}
		return off
	})
}
