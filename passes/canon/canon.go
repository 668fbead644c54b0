// Package canon holds pqvc's canonicalising passes: shape_fold, const_fold,
// identity_elim, cse and dce, and canonicalize, which runs them together to
// a fixpoint.
//
// Exporters spell the same model many ways: shape arithmetic rebuilt at run
// time from Shape ops, constants computed from other constants, Identity and
// no-op Reshapes, the same Unsqueeze axes constant a hundred times. Later
// passes (fusions, structure analyses, pruning) match patterns, and every
// spelling they do not have to know about is a bug they cannot have. These
// passes bring every export to one form: static shapes are constants, a Reshape
// target with one batch-dependent entry says -1, no value computes what another
// already does, and nothing is left that no output needs.
//
// Every pass here is idempotent: running it twice changes nothing the second
// time. Each is also a plain Go function (ShapeFold, ConstFold, …) for passes
// that want to clean up after themselves without going through the runner.
package canon

import (
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/rewrite"
)

// replace points every use of old (and any graph output that is old) at
// repl and deletes what that left dead; it returns the number deleted.
func replace(g *ir.Graph, old, repl *ir.Value) int {
	old.ReplaceUses(repl)
	return rewrite.RemoveDeadFrom(g, old)
}

// knownShapeEqual reports whether two shapes are equal and free of unknown
// dims. Two "?" dims print and compare alike but need not be the same size,
// so a rewrite that relies on "same shape" must not trust them.
func knownShapeEqual(a, b ir.Shape) bool {
	if !a.Equal(b) {
		return false
	}
	for _, d := range a {
		if d.IsUnknown() {
			return false
		}
	}
	return true
}

// tensorOf builds a tensor of type t (which must be static, with dtype
// integer or bool) from int64 elements, as shape folding produces them.
func tensorOf(t ir.Type, xs []int64) (*ir.Tensor, bool) {
	dims, ok := t.Shape.Ints()
	if !ok {
		return nil, false
	}
	out, err := ir.NewTensor(t.DType, dims)
	if err != nil || out.Len() != len(xs) {
		return nil, false
	}
	switch d := out.Data.(type) {
	case []int64:
		copy(d, xs)
	case []int32:
		for i, x := range xs {
			d[i] = int32(x)
		}
	case []int8:
		for i, x := range xs {
			d[i] = int8(x)
		}
	case []uint8:
		for i, x := range xs {
			d[i] = uint8(x)
		}
	case []bool:
		for i, x := range xs {
			d[i] = x != 0
		}
	default:
		return nil, false
	}
	return out, true
}

// isParam reports whether v is a weight tensor: a float or 8-bit constant of
// more than one element (ir.Stats counts the same as params). By default
// cse and identity_elim leave weights alone even when their values make
// them redundant: test models keep biases at zero and norm scales at one,
// and merging or dropping those would give every layer a different
// structure from a trained model's, sharing one bias between unrelated
// layers or removing the Add that bias correction writes to.
func isParam(v *ir.Value) bool {
	if !v.IsConst() {
		return false
	}
	dt := v.Type.DType
	return (dt.IsFloat() || dt == ir.I8 || dt == ir.U8) && v.Const.Len() > 1
}
