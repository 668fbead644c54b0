// Copyright 2026 The pqvc Authors.

package gocode

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
)

// dataArgs lists the arguments whose data v reads at run time. Shape-like
// arguments (Reshape targets, Slice bounds, reduction axes) are read at
// emit time from the static types and constants instead.
func dataArgs(v *ir.Value) []*ir.Value {
	var idx []int
	switch v.Op {
	case "Reshape", "Expand", "Squeeze", "Unsqueeze", "Slice", "Flatten", "Identity",
		"ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean":
		idx = []int{0}
	case "Shape", "ConstantOfShape", "Size":
		return nil
	default:
		var out []*ir.Value
		for _, a := range v.Args() {
			if a != nil {
				out = append(out, a)
			}
		}
		return out
	}
	var out []*ir.Value
	for _, i := range idx {
		if a := v.Arg(i); a != nil {
			out = append(out, a)
		}
	}
	return out
}

// aliasOps produce their argument's data unchanged (only the shape
// differs), so they share its buffer.
var aliasOps = map[string]bool{"Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true, "Identity": true}

// plan decides, before any code is written, which values are computed, in
// what order, which share buffers, which fuse into a GEMM and which are
// computed once in New; and when each buffer is read for the last time.
func (c *gen) plan() error {
	c.quant = quantized(c.g)
	topo, err := c.g.Topo()
	if err != nil {
		return err
	}
	needed := map[*ir.Value]bool{}
	var mark func(v *ir.Value)
	mark = func(v *ir.Value) {
		if needed[v] {
			return
		}
		needed[v] = true
		for _, a := range dataArgs(v) {
			mark(a)
		}
	}
	for _, o := range c.g.Outputs {
		mark(o.Value)
		c.outputs[o.Value] = true
	}
	for _, v := range topo {
		if !needed[v] {
			continue
		}
		if !v.IsConst() && v.Op != ir.OpInput {
			c.hoisted[v] = true
			for _, a := range dataArgs(v) {
				if !a.IsConst() && !c.hoisted[a] {
					c.hoisted[v] = false
				}
			}
			if aliasOps[v.Op] || v.Op == "Cast" && v.Arg(0).Type.DType == v.Type.DType {
				c.alias[v] = v.Arg(0)
			}
		}
		c.pos[v] = len(c.order)
		c.order = append(c.order, v)
	}
	c.fuseEpilogues()
	c.pairMinMax()
	// Outputs keep their buffers: mark the roots permanent.
	for o := range c.outputs {
		c.outputs[c.root(o)] = true
	}
	for _, v := range c.order {
		if c.skip[v] && !c.pairedSecond(v) || c.alias[v] != nil {
			continue
		}
		reads := dataArgs(v)
		if f := c.fused[v]; f != nil {
			reads = f.reads
		}
		for _, a := range reads {
			r := c.root(a)
			c.last[r] = max(c.last[r], c.pos[v])
		}
	}
	return nil
}

// pairedSecond reports whether v is the skipped half of a min/max pair
// (its buffer is still read by later values).
func (c *gen) pairedSecond(v *ir.Value) bool {
	for _, s := range c.pair {
		if s == v {
			return true
		}
	}
	return false
}

// onlyUse returns v's single user when v has exactly one use and is not a
// graph output, else nil.
func (c *gen) onlyUse(v *ir.Value) *ir.Value {
	us := v.Uses()
	if len(us) != 1 || c.outputs[v] {
		return nil
	}
	return us[0]
}

// rowBias reports whether b (an argument of Add) is a constant that adds the
// same row of n values to every row of out.
func rowBias(b *ir.Value, n int) bool {
	if !b.IsConst() || b.Type.DType != ir.F32 {
		return false
	}
	dims := make([]int, 0, len(b.Type.Shape))
	for _, d := range b.Type.Shape {
		if !d.IsStatic() {
			return false
		}
		dims = append(dims, int(d.C))
	}
	return numel(dims) == n && (len(dims) == 0 || dims[len(dims)-1] == n)
}

// packable reports whether a GEMM's weight w is a 2-D constant (or computed
// from constants in New), so it can be packed once.
func (c *gen) packable(w *ir.Value) bool {
	return w != nil && (w.IsConst() || c.hoisted[w]) && w.Type.Rank() == 2
}

// fuseEpilogues folds a constant bias Add into the GEMM before it, and
// the dequantizing Cast→Mul(scale)[→Add(bias)] after an int8 product into
// one pass over the accumulators.
func (c *gen) fuseEpilogues() {
	for _, v := range c.order {
		if c.hoisted[v] {
			continue
		}
		switch v.Op {
		case "MatMul", "Gemm":
			if v.Op == "Gemm" && (v.Arg(2) != nil || v.Int("transA") != 0 || v.Float("alpha") != 1) {
				continue
			}
			if !c.packable(v.Arg(1)) || v.Type.DType != ir.F32 {
				continue
			}
			add := c.onlyUse(v)
			if add == nil || add.Op != "Add" || !add.Type.Equal(v.Type) {
				continue
			}
			n := int(v.Type.Shape[v.Type.Rank()-1].C)
			other := add.Arg(0)
			if other == v {
				other = add.Arg(1)
			}
			if other == v || !rowBias(other, n) {
				continue
			}
			c.fused[v] = &fusion{gemm: v, bias: other, reads: append(dataArgs(v), other)}
			c.alias[add] = v
		case "MatMulInteger":
			if v.Arg(3) != nil || !c.packable(v.Arg(1)) {
				continue
			}
			cast := c.onlyUse(v)
			if cast == nil || cast.Op != "Cast" || cast.Type.DType != ir.F32 {
				continue
			}
			mul := c.onlyUse(cast)
			if mul == nil || mul.Op != "Mul" || !mul.Type.Equal(cast.Type) {
				continue
			}
			scale := mul.Arg(0)
			if scale == cast {
				scale = mul.Arg(1)
			}
			if scale == cast || scale.Type.DType != ir.F32 || numelType(scale) != 1 {
				continue
			}
			f := &fusion{gemm: v, scale: scale}
			end := mul
			n := int(v.Type.Shape[v.Type.Rank()-1].C)
			if add := c.onlyUse(mul); add != nil && add.Op == "Add" && add.Type.Equal(mul.Type) {
				other := add.Arg(0)
				if other == mul {
					other = add.Arg(1)
				}
				if other != mul && rowBias(other, n) {
					f.bias = other
					c.skip[mul] = true
					end = add
				}
			}
			c.skip[cast] = true
			f.reads = []*ir.Value{v, scale}
			if f.bias != nil {
				f.reads = append(f.reads, f.bias)
			}
			c.fused[end] = f
		}
	}
}

// fullReduce reports whether v is a ReduceMin or ReduceMax of an f32 value
// over all its elements.
func fullReduce(v *ir.Value, op string) bool {
	if v.Op != op || v.Type.DType != ir.F32 || numelType(v) != 1 {
		return false
	}
	axes, err := ir.ReduceAxes(v, v.Arg(0).Type.Rank())
	return err == nil && len(axes) == v.Arg(0).Type.Rank()
}

// pairMinMax finds ReduceMin and ReduceMax of one tensor (the range a
// dynamic quantizer measures) so that one pass computes both: the first of
// the two in order computes both, the second is skipped.
func (c *gen) pairMinMax() {
	for _, v := range c.order {
		if c.hoisted[v] || c.skip[v] || !fullReduce(v, "ReduceMin") {
			continue
		}
		for _, u := range v.Arg(0).Uses() {
			if _, needed := c.pos[u]; !needed || u == v || c.skip[u] || c.hoisted[u] || !fullReduce(u, "ReduceMax") {
				continue
			}
			first, second := v, u
			if c.pos[u] < c.pos[v] {
				first, second = u, v
			}
			c.pair[first] = second
			c.skip[second] = true
			break
		}
	}
}

func numelType(v *ir.Value) int {
	n := 1
	for _, d := range v.Type.Shape {
		if !d.IsStatic() {
			return -1
		}
		n *= int(d.C)
	}
	return n
}

// emitAll writes New's and Predict's bodies in order.
func (c *gen) emitAll() error {
	for i, v := range c.order {
		switch {
		case v.IsConst(), c.skip[v]:
		case c.alias[v] != nil:
			// Shares its argument's buffer: nothing to compute.
		case v.Op == ir.OpInput:
			if err := c.alloc(v); err != nil {
				return err
			}
		default:
			if err := c.alloc(v); err != nil {
				return err
			}
			if p := c.pair[v]; p != nil {
				if err := c.alloc(p); err != nil {
					return err
				}
			}
			var err error
			if f := c.fused[v]; f != nil {
				err = c.lowerFused(v, f)
			} else {
				err = c.lower(v)
			}
			if err != nil {
				return fmt.Errorf("%v: %w", v, err)
			}
		}
		c.release(i)
	}
	return nil
}
