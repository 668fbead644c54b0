// Copyright 2026 The pqvc Authors.

package gocode

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/canon" // shape_fold, dce, canonicalize
	_ "github.com/pqvc/pqvc/passes/fuse"  // fuse
	"github.com/pqvc/pqvc/passes/quant"
)

// specialise returns a clone of g with every symbolic input dim bound to
// batch, every type re-inferred to static shapes and shape computations
// folded to constants. The caller's graph is not changed (backends never
// change the graph they are given).
//
// With fuse set and a graph free of quantized ops, it also runs
// canonicalize and fuse attention=mha on the clone: LayerNorm, GELU,
// attention and GEMM+bias become single ops with fast lowerings (ONNX
// Runtime, the peer, fuses the same way at load). Quantized graphs are left
// as the recipe made them, since their rounding must match the runtime's.
func specialise(g *ir.Graph, batch int64, fuse bool) (*ir.Graph, error) {
	c := g.Clone()
	// ONNX Runtime's fused int8 matmuls go back to the MatMulInteger form
	// the lowering knows (same values).
	if _, err := quant.ExpandContrib(c); err != nil {
		return nil, err
	}
	if err := c.BindInputs(batch); err != nil {
		return nil, err
	}
	names := []string{"shape_fold", "dce"}
	if fuse && !quantized(c) {
		names = append(names, "canonicalize", "fuse")
	}
	pl := &passes.Pipeline{}
	for _, name := range names {
		p := passes.Lookup(name)
		if p == nil {
			return nil, fmt.Errorf("pass %s is not registered", name)
		}
		opts := passes.NewOptions(p)
		if name == "fuse" {
			if err := passes.SetOption(p, opts, "attention", passes.Literal{Kind: passes.LitIdent, Text: "mha"}); err != nil {
				return nil, err
			}
		}
		pl.Steps = append(pl.Steps, passes.Step{Pass: p, Options: opts, Pos: "emit go"})
	}
	if _, err := passes.Run(c, pl, passes.Config{Verify: true}); err != nil {
		return nil, fmt.Errorf("folding shapes with batch=%d: %w", batch, err)
	}
	return c, nil
}

// quantized reports whether g has any quantized op.
func quantized(g *ir.Graph) bool {
	for _, v := range g.Values() {
		switch v.Op {
		case "QuantizeLinear", "DequantizeLinear", "MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv", "DynamicQuantizeLinear":
			return true
		}
	}
	return false
}

// staticDims returns v's shape as ints, or an error naming v when a dim is
// still symbolic.
func staticDims(v *ir.Value) ([]int, error) {
	out := make([]int, len(v.Type.Shape))
	for i, d := range v.Type.Shape {
		if !d.IsStatic() {
			return nil, fmt.Errorf("%v: dim %d (%v) is not static after binding the batch", v, i, d)
		}
		out[i] = int(d.C)
	}
	return out, nil
}

func numel(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}
