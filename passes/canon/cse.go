package canon

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

const cseDoc = `cse: merge values that compute the same thing
Two pure values with the same op, the same attributes (an absent attribute
equals its default) and the same arguments are one value: the later one's
users move to the earlier (in topological order) and it is deleted.
Constants are the same when dtype, shape and data are (compared by digest,
and byte for byte when small); names do not matter. The first two
arguments of a commutative op are compared as a set. Weight tensors (float
or 8-bit constants of more than one element) are merged only with
params=true, so each layer keeps its own weights for pruning and
quantization to edit.

Requires: nothing. Establishes: no two pure values are identical in the
sense above (merging is complete in one run, since arguments are merged
before their users).`

// CSEOptions configure cse.
type CSEOptions struct {
	Params bool `pqv:"params" doc:"also merge equal weight tensors (float or 8-bit constants of more than one element)"`
}

func init() {
	passes.Register(&passes.Pass{
		Name:    "cse",
		Doc:     cseDoc,
		Options: &CSEOptions{},
		Run: func(ctx *passes.Context, g *ir.Graph) (any, error) {
			return CSE(g, *ctx.Options.(*CSEOptions))
		},
	})
}

// CSE runs cse over g. Stats: merged (values replaced by an equal one),
// removed (values deleted, the merged ones included).
func CSE(g *ir.Graph, opts CSEOptions) (map[string]int, error) {
	order, err := g.Topo()
	if err != nil {
		return nil, fmt.Errorf("cse: %w", err)
	}
	st := map[string]int{}
	seen := map[string]*ir.Value{}
	consts := map[string][]*ir.Value{} // by type: digest only on a clash
	for _, v := range order {
		if v.Graph() != g {
			continue
		}
		var rep *ir.Value
		switch def := ir.LookupOp(v.Op); {
		case v.Op == ir.OpConst && isParam(v) && !opts.Params:
			continue
		case v.Op == ir.OpConst:
			k := v.Type.String()
			rep = sameConst(consts[k], v)
			if rep == nil {
				consts[k] = append(consts[k], v)
			}
		case def != nil && def.Pure:
			k := cseKey(v, def)
			if rep = seen[k]; rep == nil {
				seen[k] = v
			}
		}
		if rep == nil || isOutput(v) && isOutput(rep) {
			// Two graph outputs stay two values, so a backend can give
			// each its own name.
			continue
		}
		st["merged"]++
		st["removed"] += replace(g, v, rep)
	}
	return st, nil
}

// sameConst returns the constant in cands holding the same data as v.
func sameConst(cands []*ir.Value, v *ir.Value) *ir.Value {
	if v.Const == nil {
		return nil
	}
	for _, c := range cands {
		a, b := c.Const, v.Const
		if a == b {
			return c
		}
		if a == nil || a.Opaque() != b.Opaque() || a.Digest() != b.Digest() {
			continue
		}
		// The digest is 64 bits of SHA-256; compare small tensors' bytes
		// anyway, so CSE is exact where it is cheap.
		if a.Opaque() || a.Bytes() > 1<<16 || bytes.Equal(a.RawBytes(), b.RawBytes()) {
			return c
		}
	}
	return nil
}

// cseKey identifies what v computes: op, effective attributes, argument
// identities (already merged, since arguments come first in topological
// order) and type.
func cseKey(v *ir.Value, def *ir.OpDef) string {
	var b strings.Builder
	b.WriteString(v.Op)
	b.WriteByte('(')
	ids := make([]int, v.NumArgs())
	for i, a := range v.Args() {
		if a == nil {
			ids[i] = -1
		} else {
			ids[i] = a.ID
		}
	}
	if def.Commutative && len(ids) >= 2 && ids[0] > ids[1] {
		ids[0], ids[1] = ids[1], ids[0]
	}
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(id))
	}
	b.WriteString("){")
	for _, ad := range def.Attrs {
		x, ok := v.Attrs[ad.Name]
		if !ok {
			if presenceMatters[v.Op+"."+ad.Name] {
				continue
			}
			x = ad.Default
		}
		if x == nil {
			continue
		}
		b.WriteString(ad.Name)
		b.WriteByte('=')
		if t, ok := x.(*ir.Tensor); ok {
			fmt.Fprintf(&b, "%v:%s", t.Type(), t.Digest())
		} else {
			fmt.Fprintf(&b, "%T%v", x, x)
		}
		b.WriteByte(';')
	}
	b.WriteString("}:")
	b.WriteString(v.Type.String())
	return b.String()
}

// presenceMatters lists attributes whose absence does not mean their
// declared default: Shape's end defaults to 0 in the op table, but an
// absent end means "to the last dim".
var presenceMatters = map[string]bool{"Shape.end": true}

func isOutput(v *ir.Value) bool {
	for _, o := range v.Graph().Outputs {
		if o.Value == v {
			return true
		}
	}
	return false
}
