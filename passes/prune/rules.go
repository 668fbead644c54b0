package prune

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
)

// unaryOps keep every axis of their first argument.
var unaryOps = map[string]bool{
	"Sqrt": true, "Erf": true, "Relu": true, "Neg": true, "Exp": true, "Log": true, "Tanh": true,
	"Sigmoid": true, "Abs": true, "Reciprocal": true, "Identity": true, "Gelu": true, "Cast": true,
	"Dropout": true, "Clip": true, "Sin": true, "Cos": true, "HardSigmoid": true, "HardSwish": true,
}

// broadcastOps combine their arguments elementwise with numpy broadcasting.
var broadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Max": true, "Min": true, "Where": true,
}

// rule applies the axis ties of the op computing u, in both directions.
func (l *labeling) rule(u *ir.Value) error {
	if err := l.rule1(u); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	return nil
}

func (l *labeling) rule1(u *ir.Value) error {
	r := u.Type.Rank()
	x := u.Arg(0)
	switch {
	case unaryOps[u.Op]:
		for i := range r {
			if err := l.link(x, i, u, i); err != nil {
				return err
			}
		}
		return nil
	case broadcastOps[u.Op]:
		for _, a := range u.Args() {
			if a == nil {
				continue
			}
			off := r - a.Type.Rank()
			for j := range a.Type.Rank() {
				if a.Type.Shape[j] == u.Type.Shape[j+off] {
					if err := l.link(a, j, u, j+off); err != nil {
						return err
					}
				} else if l.get(a, j) != nil {
					return fmt.Errorf("pruned axis %d of %s is broadcast", j, a)
				}
			}
		}
		return nil
	}
	switch u.Op {
	case "Softmax", "LogSoftmax":
		ax := int(u.Int("axis"))
		if ax < 0 {
			ax += r
		}
		if l.get(x, ax) != nil || l.get(u, ax) != nil {
			return fmt.Errorf("softmax over a pruned axis %d", ax)
		}
		for i := range r {
			if err := l.link(x, i, u, i); err != nil {
				return err
			}
		}
	case "LayerNormalization":
		ax := int(u.Int("axis"))
		if ax < 0 {
			ax += r
		}
		for i := range r {
			if err := l.link(x, i, u, i); err != nil {
				return err
			}
		}
		for _, p := range u.Args()[1:] {
			if p == nil {
				continue
			}
			off := r - p.Type.Rank()
			for j := range p.Type.Rank() {
				if j+off >= ax && p.Type.Shape[j] == x.Type.Shape[j+off] {
					if err := l.link(x, j+off, p, j); err != nil {
						return err
					}
				}
			}
		}
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceSumSquare", "ReduceProd":
		axes, err := ir.ReduceAxes(u, x.Type.Rank())
		if err != nil {
			return err
		}
		red := map[int]bool{}
		for _, a := range axes {
			red[a] = true
		}
		keep := u.Int("keepdims") != 0
		j := 0
		for i := range x.Type.Rank() {
			if red[i] {
				if keep {
					j++
				}
				continue
			}
			if err := l.link(x, i, u, j); err != nil {
				return err
			}
			j++
		}
	case "Transpose":
		perm := u.Ints("perm")
		if len(perm) == 0 {
			for i := range r {
				perm = append(perm, int64(r-1-i))
			}
		}
		for i, p := range perm {
			if err := l.link(x, int(p), u, i); err != nil {
				return err
			}
		}
	case "Reshape", "Flatten":
		if l.labelled(x) {
			lbs, err := regroup(l.flatten(x), u.Type.Shape)
			if err != nil {
				return err
			}
			for i, lb := range lbs {
				if err := l.set(u, i, lb); err != nil {
					return err
				}
			}
		}
		if l.labelled(u) {
			lbs, err := regroup(l.flatten(u), x.Type.Shape)
			if err != nil {
				return err
			}
			for i, lb := range lbs {
				if err := l.set(x, i, lb); err != nil {
					return err
				}
			}
		}
	case "Concat":
		ax := int(u.Int("axis"))
		if ax < 0 {
			ax += r
		}
		for _, a := range u.Args() {
			for i := range r {
				if i == ax {
					if l.get(a, i) != nil || l.get(u, i) != nil {
						return fmt.Errorf("concatenation along a pruned axis %d", i)
					}
					continue
				}
				if err := l.link(a, i, u, i); err != nil {
					return err
				}
			}
		}
	case "Gather":
		ax := int(u.Int("axis"))
		xr := x.Type.Rank()
		if ax < 0 {
			ax += xr
		}
		if l.get(x, ax) != nil {
			return fmt.Errorf("gather along a pruned axis %d", ax)
		}
		ir1 := u.Arg(1).Type.Rank()
		for i := range xr {
			switch {
			case i < ax:
				if err := l.link(x, i, u, i); err != nil {
					return err
				}
			case i > ax:
				if err := l.link(x, i, u, i+ir1-1); err != nil {
					return err
				}
			}
		}
	case "Squeeze", "Unsqueeze":
		var axes []int64
		if a := u.Arg(1); a != nil {
			var ok bool
			if axes, ok = ir.ConstInts(a); !ok {
				return fmt.Errorf("axes are not constant")
			}
		}
		big, small := x, u
		if u.Op == "Unsqueeze" {
			big, small = u, x
		}
		br := big.Type.Rank()
		drop := map[int]bool{}
		for _, a := range axes {
			if a < 0 {
				a += int64(br)
			}
			drop[int(a)] = true
		}
		if len(axes) == 0 {
			for i, d := range big.Type.Shape {
				if d == ir.Static(1) {
					drop[i] = true
				}
			}
		}
		j := 0
		for i := range br {
			if drop[i] {
				continue
			}
			if err := l.link(big, i, small, j); err != nil {
				return err
			}
			j++
		}
	case "Expand":
		off := r - x.Type.Rank()
		for j := range x.Type.Rank() {
			if x.Type.Shape[j] == u.Type.Shape[j+off] {
				if err := l.link(x, j, u, j+off); err != nil {
					return err
				}
			}
		}
	case "Slice":
		return l.sliceRule(u)
	case "MatMul":
		return l.matmulRule(u)
	case "Gemm":
		return l.gemmRule(u)
	case "Conv":
		w, b := u.Arg(1), u.Arg(2)
		if err := l.link(u, 1, w, 0); err != nil {
			return err
		}
		if err := l.link(b, 0, w, 0); err != nil {
			return err
		}
		if err := l.link(u, 1, w, 0); err != nil {
			return err
		}
		if u.Int("group") != 1 && (l.get(x, 1) != nil || l.get(w, 1) != nil) {
			return fmt.Errorf("grouped convolution over pruned channels")
		}
		return l.link(x, 1, w, 1)
	case "Shape", "Size":
		if l.labelled(x) {
			return fmt.Errorf("reads the shape of pruned %s at run time; run canonicalize before prune so static shapes are constants", x)
		}
	default:
		for _, a := range append([]*ir.Value{u}, u.Args()...) {
			if l.labelled(a) {
				return fmt.Errorf("op %s is not understood on pruned channels (of %s)", u.Op, a)
			}
		}
	}
	return nil
}

// sliceRule ties the unsliced axes and, on a sliced axis, keeps the inner
// factors of a slice that takes whole blocks of them: torchvision's
// in_proj output [L, B, 3·H·D] sliced at 0:H·D, H·D:2H·D, … gives q, k, v
// with channels [H, D].
func (l *labeling) sliceRule(u *ir.Value) error {
	x := u.Arg(0)
	starts, ends, axes, steps, ok := ir.SliceParams(u)
	sliced := map[int]int{}
	if ok {
		for i, a := range axes {
			sliced[int(a)] = i
		}
	}
	for i := range u.Type.Rank() {
		k, isSliced := sliced[i]
		if !isSliced {
			if !ok && (l.get(x, i) != nil || l.get(u, i) != nil) {
				return fmt.Errorf("slice bounds are not constant")
			}
			if err := l.link(x, i, u, i); err != nil {
				return err
			}
			continue
		}
		in, out := l.get(x, i), l.get(u, i)
		if in == nil && out == nil {
			continue
		}
		if steps[k] != 1 {
			return fmt.Errorf("strided slice of a pruned axis %d", i)
		}
		inner := in
		if inner == nil {
			inner = out
		}
		if inner[0].role == "" {
			inner = inner[1:]
		}
		p := inner.product()
		if !p.IsStatic() {
			return fmt.Errorf("pruned axis %d has a symbolic inner size", i)
		}
		dim := x.Type.Shape[i]
		s, e := starts[k], ends[k]
		if dim.IsStatic() {
			s, e = clampBound(s, dim.C), clampBound(e, dim.C)
		}
		if s%p.C != 0 || e%p.C != 0 || e < s {
			return fmt.Errorf("slice %d:%d of axis %d cuts through pruned channels %v", starts[k], ends[k], i, inner)
		}
		outLb := append(label{{size: ir.Static((e - s) / p.C)}}, inner...)
		if err := l.set(u, i, outLb); err != nil {
			return err
		}
		n, ok2 := dim.Div(p)
		if !ok2 {
			return fmt.Errorf("axis %d of size %v is not whole blocks of %v", i, dim, inner)
		}
		if err := l.set(x, i, append(label{{size: n}}, inner...)); err != nil {
			return err
		}
	}
	return nil
}

// clampBound resolves a Slice bound against a dim of size n, as ONNX does
// for a positive step.
func clampBound(b, n int64) int64 {
	if b < 0 {
		b += n
	}
	return max(0, min(b, n))
}

// matmulRule ties the batch and row axes of a to the output, the columns of
// b to the output, and a's columns to b's rows (the contracted axis).
func (l *labeling) matmulRule(u *ir.Value) error {
	a, b := u.Arg(0), u.Arg(1)
	ra, rb, r := a.Type.Rank(), b.Type.Rank(), u.Type.Rank()
	if ra < 2 || rb < 2 {
		if l.labelled(a) || l.labelled(b) || l.labelled(u) {
			return fmt.Errorf("1-D matmul over pruned channels")
		}
		return nil
	}
	for _, x := range []*ir.Value{a, b} {
		rx := x.Type.Rank()
		off := r - rx
		for j := range rx - 2 {
			if x.Type.Shape[j] == u.Type.Shape[j+off] {
				if err := l.link(x, j, u, j+off); err != nil {
					return err
				}
			}
		}
	}
	if err := l.link(a, ra-2, u, r-2); err != nil {
		return err
	}
	if err := l.link(b, rb-1, u, r-1); err != nil {
		return err
	}
	return l.link(a, ra-1, b, rb-2)
}

func (l *labeling) gemmRule(u *ir.Value) error {
	a, b, c := u.Arg(0), u.Arg(1), u.Arg(2)
	am, ak := 0, 1
	if u.Int("transA") != 0 {
		am, ak = 1, 0
	}
	bk, bn := 0, 1
	if u.Int("transB") != 0 {
		bk, bn = 1, 0
	}
	if err := l.link(a, am, u, 0); err != nil {
		return err
	}
	if err := l.link(a, ak, b, bk); err != nil {
		return err
	}
	if err := l.link(b, bn, u, 1); err != nil {
		return err
	}
	if c != nil && c.Type.Rank() >= 1 {
		rc := c.Type.Rank()
		if c.Type.Shape[rc-1] == u.Type.Shape[1] {
			if err := l.link(c, rc-1, u, 1); err != nil {
				return err
			}
		}
		if rc == 2 && c.Type.Shape[0] == u.Type.Shape[0] {
			return l.link(c, 0, u, 0)
		}
	}
	return nil
}
