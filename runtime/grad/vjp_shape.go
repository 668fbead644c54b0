package grad

import (
	"errors"
	"fmt"

	"github.com/pqvc/pqvc/ir"
)

func init() {
	vjpTable["Transpose"] = vjpTranspose
	vjpTable["Slice"] = vjpSlice
	vjpTable["Expand"] = vjpExpand
	vjpTable["Gather"] = vjpGather
	vjpTable["Concat"] = vjpConcat
}

// scatterStrided adds g (shaped out) into dst at base + Σ idx·st: the
// adjoint of reading a strided view, which is what Transpose and Slice do.
func scatterStrided(dst, g []float32, out []int64, base int, st []int) {
	inner, si := rowLen(out), lastStride(st)
	forEachRow(out, [][]int{st}, false, func(r int, o []int) {
		off := base + o[0] // the step may be negative
		for j, x := range g[r*inner : (r+1)*inner] {
			dst[off+j*si] += x
		}
	})
}

func vjpTranspose(c *vctx) error {
	shape := c.args[0].Shape
	perm := c.v.Ints("perm")
	if perm == nil {
		for i := len(shape) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	in := stridesOf(shape)
	st := make([]int, len(perm))
	for i, p := range perm {
		st[i] = in[p]
	}
	res := make([]float32, prod(shape))
	scatterStrided(res, c.g, c.out.Shape, 0, st)
	c.res[0] = res
	return nil
}

func intsOf(t *ir.Tensor, what string) ([]int64, error) {
	if t == nil {
		return nil, fmt.Errorf("%s is missing", what)
	}
	return t.AsInt64s()
}

// vjpSlice recomputes the view the forward Slice read (same clamping
// rules) and scatters the gradient into it; unselected elements get zero.
func vjpSlice(c *vctx) error {
	shape := c.args[0].Shape
	rank := len(shape)
	starts, err := intsOf(c.args[1], "starts")
	if err != nil {
		return err
	}
	ends, err := intsOf(c.args[2], "ends")
	if err != nil {
		return err
	}
	axes := make([]int64, len(starts))
	for i := range axes {
		axes[i] = int64(i)
	}
	if len(c.args) > 3 && c.args[3] != nil {
		if axes, err = intsOf(c.args[3], "axes"); err != nil {
			return err
		}
	}
	steps := make([]int64, len(starts))
	for i := range steps {
		steps[i] = 1
	}
	if len(c.args) > 4 && c.args[4] != nil {
		if steps, err = intsOf(c.args[4], "steps"); err != nil {
			return err
		}
	}
	if len(ends) != len(starts) || len(axes) != len(starts) || len(steps) != len(starts) {
		return errors.New("slice parameters differ in length")
	}
	in := stridesOf(shape)
	st := append([]int{}, in...)
	base := 0
	for i, ax := range axes {
		if ax < 0 {
			ax += int64(rank)
		}
		if ax < 0 || ax >= int64(rank) || steps[i] == 0 {
			return fmt.Errorf("bad slice axis %d or step %d", axes[i], steps[i])
		}
		n := shape[ax]
		if ir.SliceLen(starts[i], ends[i], steps[i], n) > 0 {
			base += int(sliceStart(starts[i], steps[i], n)) * in[ax]
		}
		st[ax] = in[ax] * int(steps[i])
	}
	res := make([]float32, prod(shape))
	if len(c.g) > 0 {
		scatterStrided(res, c.g, c.out.Shape, base, st)
	}
	c.res[0] = res
	return nil
}

// sliceStart clamps a start index as ONNX Slice does (as the runtime does).
func sliceStart(start, step, n int64) int64 {
	if start < 0 {
		start += n
	}
	if step > 0 {
		return min(max(start, 0), n)
	}
	return min(max(start, 0), n-1)
}

// vjpExpand sums the gradient over the broadcast axes.
func vjpExpand(c *vctx) error {
	c.res[0] = reduceTo(c.g, c.out.Shape, c.args[0].Shape)
	return nil
}

// vjpGather scatter-adds each gathered block back to the row it came from
// (repeated indices accumulate).
func vjpGather(c *vctx) error {
	shape := c.args[0].Shape
	idx, err := intsOf(c.args[1], "indices")
	if err != nil {
		return err
	}
	axis := int(c.v.Int("axis"))
	if axis < 0 {
		axis += len(shape)
	}
	if axis < 0 || axis >= len(shape) {
		return fmt.Errorf("axis %d out of range", c.v.Int("axis"))
	}
	n := int(shape[axis])
	outer, inner := prod(shape[:axis]), prod(shape[axis+1:])
	res := make([]float32, prod(shape))
	ni := len(idx)
	for o := range outer {
		for j, s := range idx {
			if s < 0 {
				s += int64(n)
			}
			if s < 0 || s >= int64(n) {
				return fmt.Errorf("index %d out of range", idx[j])
			}
			addInto(res[(o*n+int(s))*inner:(o*n+int(s)+1)*inner], c.g[(o*ni+j)*inner:(o*ni+j+1)*inner])
		}
	}
	c.res[0] = res
	return nil
}

// vjpConcat hands each input its block of the gradient.
func vjpConcat(c *vctx) error {
	out := c.out.Shape
	axis := int(c.v.Int("axis"))
	if axis < 0 {
		axis += len(out)
	}
	outer, inner := prod(out[:axis]), prod(out[axis+1:])
	total := int(out[axis])
	off := 0
	for i, t := range c.args {
		w := int(t.Shape[axis])
		if c.need[i] {
			res := make([]float32, t.Len())
			for o := range outer {
				copy(res[o*w*inner:(o+1)*w*inner], c.g[(o*total+off)*inner:(o*total+off+w)*inner])
			}
			c.res[i] = res
		}
		off += w
	}
	return nil
}
