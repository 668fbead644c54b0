package fuse

import (
	"slices"

	"github.com/pqvc/pqvc/ir"
	rw "github.com/pqvc/pqvc/passes/rewrite"
)

// The attention core is the same in every exporter style:
//
//	ctx = Softmax(scale · Qₕ·Kₕᵀ) · Vₕ,  out = Reshape(Transpose(ctx, [0,2,1,3]), [B,S,E])
//
// and what differs is how Qₕ, Kₕᵀ, Vₕ ([B,N,S,D] head views) are cut from
// the projections: HF reshapes each of q, k, v to [B,S,N,D] and transposes
// (Kᵀ directly with perm [0,2,3,1]); timm reshapes the packed qkv to
// [B,S,3,N,D], transposes to [3,B,N,S,D] and Gathers (or, unbind-style,
// Slices and Squeezes) index 0, 1, 2, then transposes K. The rule matches
// the core and decodes each view back to columns of a [B,S,W] tensor; the
// scale is a Mul or Div of the scores by a constant.
//
// When q, k and v are the three thirds of one Add(MatMul(x, W), b) with
// constant W and b (timm, or HF after the qkv rule), the projection goes
// into com.microsoft.Attention too; otherwise q, k, v are passed as [B,S,E]
// columns to com.microsoft.MultiHeadAttention.
//
// Torchvision's nn.MultiheadAttention is sequence-first: the projection is
// [S,B,3E], each of q, k, v is Reshaped to [S,B·N,D] and transposed to
// [B·N,S,D] (Kᵀ: [B·N,D,S]), q is divided by √D before the product, and the
// result goes back through Transpose [1,0,2] and Reshape to [S·B,E]. The
// same rule matches it (rank 3 instead of 4) and wraps the fused op in
// Transposes between [S,B,·] and [B,S,·]; the batch-first LayerNorm output
// that torchvision transposes to feed the projection is used directly.

func attentionRules(o Options) []*rw.Rule {
	if o.Target != TargetORT {
		return nil // ONNX has no attention op before opset 23
	}
	return []*rw.Rule{newAttention(o.Attention == AttentionPacked)}
}

// newAttention returns the attention rule; packed allows Attention to
// absorb the projection (option attention=packed).
//
// Reshape(Transpose(MatMul(Softmax(s)@p, vh)@ctx)@tr, _)
//
//	=> Attention(x, W, b) | MultiHeadAttention(q, k, v) {num_heads, scale}
func newAttention(packed bool) *rw.Rule {
	return &rw.Rule{
		Name: "attention",
		Pattern: rw.Op("Reshape", rw.Op("Transpose",
			rw.Op("MatMul", rw.Op("Softmax", rw.Var("s")).Bind("p"), rw.Var("vh")).Bind("ctx")).Bind("tr"), rw.Any()),
		Check: func(m *rw.Match) string {
			_, why := decodeAttention(m)
			return why
		},
		Rewrite: func(m *rw.Match, g *ir.Graph) (*ir.Value, error) {
			a, _ := decodeAttention(m)
			out, err := emitAttention(g, m.Root, a, packed)
			if err != nil || !a.seqFirst {
				return out, err
			}
			// [B,S,E] back to torchvision's [S,B,E], then its [S·B,E].
			back, err := add(g, "Transpose", m.Root, ir.Attrs{"perm": []int64{1, 0, 2}}, out)
			if err != nil {
				return nil, err
			}
			return add(g, "Reshape", m.Root, nil, back, m.Root.Arg(1))
		},
	}
}

// emitAttention adds the fused op for a, with [B,S,·] operands: Attention
// when packed allows and a's projection qualifies, else MultiHeadAttention.
func emitAttention(g *ir.Graph, root *ir.Value, a *attn, packed bool) (*ir.Value, error) {
	attrs := ir.Attrs{"num_heads": a.heads, "scale": float32(a.scale)}
	if x, w, b, ok := a.packed(); ok && packed {
		x, err := batchFirst(g, root, x, a.seqFirst)
		if err != nil {
			return nil, err
		}
		return add(g, ir.MSDomain+".Attention", root, attrs, x, w, b)
	}
	var qkv []*ir.Value
	for i, v := range []view{a.q, a.k, a.v} {
		x := v.t
		if v.off != 0 || v.t.Type.Shape[2].C != a.heads*v.dim {
			var err error
			if x, err = sliceLast(g, root.Name+"_"+"qkv"[i:i+1], v.t, v.off, v.off+a.heads*v.dim); err != nil {
				return nil, err
			}
		}
		x, err := batchFirst(g, root, x, a.seqFirst)
		if err != nil {
			return nil, err
		}
		qkv = append(qkv, x)
	}
	return add(g, ir.MSDomain+".MultiHeadAttention", root, attrs, qkv...)
}

// batchFirst returns x, or for a sequence-first layout x as [B,S,·]: the
// argument of a Transpose [1,0,2] when x is one (torchvision transposes the
// LayerNorm output), else a new Transpose.
func batchFirst(g *ir.Graph, root, x *ir.Value, seqFirst bool) (*ir.Value, error) {
	if !seqFirst {
		return x, nil
	}
	if x.Op == "Transpose" && slices.Equal(perm(x), []int64{1, 0, 2}) {
		return x.Arg(0), nil
	}
	return add(g, "Transpose", root, ir.Attrs{"perm": []int64{1, 0, 2}}, x)
}

// view is a head view [B,N,S,D] decoded as columns off..off+N·D of a
// [B,S,W] tensor t; first is the op that reads t.
type view struct {
	t, first   *ir.Value
	off, heads int64
	dim        int64
}

// attn is a decoded attention block.
type attn struct {
	q, k, v  view
	heads    int64
	scale    float64
	seqFirst bool // torchvision: views of [S,B,W] tensors, result [S·B,E]
}

// packed reports q, k, v as the thirds of one constant projection and
// returns its input, weights and bias.
func (a *attn) packed() (x, w, b *ir.Value, ok bool) {
	t := a.q.t
	e := a.heads * a.q.dim
	if a.k.t != t || a.v.t != t || a.q.off != 0 || a.k.off != e || a.v.off != 2*e || a.v.dim != a.q.dim || t.Op != "Add" {
		return nil, nil, nil, false
	}
	mm, bias := linearParts(t)
	if mm.Op != "MatMul" || !uses(mm, 1) || !mm.Arg(1).IsConst() || !bias.IsConst() || bias.Type.Rank() != 1 ||
		mm.Arg(0).Type.Rank() != 3 || mm.Arg(1).Type.Rank() != 2 || mm.Arg(1).Type.Shape[1].C != 3*e {
		return nil, nil, nil, false
	}
	for _, u := range t.Uses() { // computed for this attention alone
		if u != a.q.first && u != a.k.first && u != a.v.first {
			return nil, nil, nil, false
		}
	}
	return mm.Arg(0), mm.Arg(1), bias, true
}

func decodeAttention(m *rw.Match) (*attn, string) {
	root, tr, p := m.Root, m.V("tr"), m.V("p")
	a := &attn{scale: 1, seqFirst: tr.Type.Rank() == 3}
	switch {
	case root.Type.DType != ir.F32:
		return nil, "result is not f32"
	case a.seqFirst && !slices.Equal(perm(tr), []int64{1, 0, 2}):
		return nil, "heads are not merged by Transpose [1,0,2]"
	case !a.seqFirst && !slices.Equal(perm(tr), []int64{0, 2, 1, 3}):
		return nil, "heads are not merged by Transpose [0,2,1,3]"
	}
	if ax := p.Int("axis"); ax != -1 && ax != int64(p.Type.Rank()-1) {
		return nil, "softmax is not over keys"
	}
	for _, n := range []string{"p", "ctx", "tr"} {
		if !uses(m.V(n), 1) {
			return nil, n + " is used outside the attention"
		}
	}
	qk := m.V("s")
	if qk.Op == "Mul" || qk.Op == "Div" {
		if !uses(qk, 1) {
			return nil, "scores are used outside the attention"
		}
		x, c := qk.Arg(0), qk.Arg(1)
		if qk.Op == "Mul" && x.IsConst() {
			x, c = c, x
		}
		f, ok := scalar(c)
		if !ok || f == 0 {
			return nil, "scores are not scaled by a scalar constant"
		}
		a.scale = scaleBy(qk.Op, f)
		qk = x
	}
	if qk.Op != "MatMul" || !uses(qk, 1) {
		return nil, "scores are not a single-use MatMul"
	}
	q := qk.Arg(0)
	if (q.Op == "Mul" || q.Op == "Div") && uses(q, 1) { // the scale on q (torchvision)
		if f, ok := scalar(q.Arg(1)); ok && f != 0 {
			a.scale *= scaleBy(q.Op, f)
			q = q.Arg(0)
		}
	}
	heads, keys := headsView, keysView
	if a.seqFirst {
		heads, keys = seqHeadsView, seqKeysView
	}
	var ok bool
	if a.q, ok = heads(q); !ok {
		return nil, "query is not a head view of a [B,S,E] tensor"
	}
	if a.k, ok = keys(qk.Arg(1)); !ok {
		return nil, "key is not a transposed head view of a [B,S,E] tensor"
	}
	if a.v, ok = heads(m.V("vh")); !ok {
		return nil, "value is not a head view of a [B,S,E] tensor"
	}
	a.heads = a.q.heads
	if a.k.heads != a.heads || a.v.heads != a.heads || a.k.dim != a.q.dim {
		return nil, "query, key and value disagree on heads"
	}
	st := root.Type.Shape
	qs := a.q.t.Type.Shape
	if a.seqFirst {
		if len(st) != 2 || !st[1].IsStatic() || st[1].C != a.heads*a.v.dim || st[0] != qs[0].Mul(qs[1]) {
			return nil, "output is not [S·B,heads·head_dim]"
		}
		return a, ""
	}
	if len(st) != 3 || !st[2].IsStatic() || st[2].C != a.heads*a.v.dim || st[0] != qs[0] || st[1] != qs[1] {
		return nil, "output is not [B,S,heads·head_dim]"
	}
	return a, ""
}

// scaleBy is the factor that multiplying (Mul) or dividing (Div) by f
// applies.
func scaleBy(op string, f float64) float64 {
	if op == "Div" {
		return 1 / f
	}
	return f
}

// headsView decodes a [B,N,S,D] value.
func headsView(v *ir.Value) (view, bool) {
	if v.Type.Rank() != 4 {
		return view{}, false
	}
	switch v.Op {
	case "Transpose": // HF: Transpose(Reshape(t, [B,S,N,D]), [0,2,1,3])
		if !slices.Equal(perm(v), []int64{0, 2, 1, 3}) {
			return view{}, false
		}
		return splitHeads(v.Arg(0))
	case "Gather": // timm: Gather(Transpose(Reshape(t, [B,S,3,N,D]), [2,0,3,1,4]), i)
		i, ok := ir.ConstInts(v.Arg(1))
		if !ok || len(i) != 1 || v.Arg(1).Type.Rank() != 0 || v.Int("axis") != 0 {
			return view{}, false
		}
		return packedHeads(v.Arg(0), i[0])
	case "Squeeze": // timm unbind: Squeeze(Slice(Transpose(...), [i], [i+1], [0]), [0])
		ax, ok := ir.ConstInts(v.Arg(1))
		s := v.Arg(0)
		if !ok || !slices.Equal(ax, []int64{0}) || s.Op != "Slice" {
			return view{}, false
		}
		starts, ends, axes, steps, ok := ir.SliceParams(s)
		if !ok || len(starts) != 1 || axes[0] != 0 || steps[0] != 1 || ends[0] != starts[0]+1 || starts[0] < 0 {
			return view{}, false
		}
		return packedHeads(s.Arg(0), starts[0])
	}
	return view{}, false
}

// keysView decodes a [B,N,D,S] value: a transposed head view, or HF's
// Transpose(Reshape(t, [B,S,N,D]), [0,2,3,1]).
func keysView(v *ir.Value) (view, bool) {
	if v.Op != "Transpose" || v.Type.Rank() != 4 {
		return view{}, false
	}
	switch p := perm(v); {
	case slices.Equal(p, []int64{0, 1, 3, 2}):
		return headsView(v.Arg(0))
	case slices.Equal(p, []int64{0, 2, 3, 1}):
		return splitHeads(v.Arg(0))
	}
	return view{}, false
}

// splitHeads decodes Reshape(u, [B,S,N,D]) of a [B,S,N·D] u.
func splitHeads(r *ir.Value) (view, bool) {
	if r.Op != "Reshape" || r.Type.Rank() != 4 {
		return view{}, false
	}
	t, off, first, ok := columns(r.Arg(0), r)
	s := r.Type.Shape
	if !ok || !s[2].IsStatic() || !s[3].IsStatic() || !sameLead(r.Arg(0), s) ||
		r.Arg(0).Type.Shape[2].C != s[2].C*s[3].C {
		return view{}, false
	}
	return view{t: t, first: first, off: off, heads: s[2].C, dim: s[3].C}, true
}

// packedHeads decodes entry i of Transpose(Reshape(u, [B,S,P,N,D]),
// [2,0,3,1,4]) for a [B,S,P·N·D] u.
func packedHeads(tr *ir.Value, i int64) (view, bool) {
	if tr.Op != "Transpose" || !slices.Equal(perm(tr), []int64{2, 0, 3, 1, 4}) {
		return view{}, false
	}
	r := tr.Arg(0)
	if r.Op != "Reshape" || r.Type.Rank() != 5 {
		return view{}, false
	}
	s := r.Type.Shape
	for _, d := range s[2:] {
		if !d.IsStatic() {
			return view{}, false
		}
	}
	t, off, first, ok := columns(r.Arg(0), r)
	if !ok || !sameLead(r.Arg(0), s) || r.Arg(0).Type.Shape[2].C != s[2].C*s[3].C*s[4].C || i >= s[2].C {
		return view{}, false
	}
	return view{t: t, first: first, off: off + i*s[3].C*s[4].C, heads: s[3].C, dim: s[4].C}, true
}

// columns returns u as columns off.. of a [B,S,W] tensor: a Slice of the
// last axis with step 1 is looked through. first is the op reading t.
func columns(u, reader *ir.Value) (t *ir.Value, off int64, first *ir.Value, ok bool) {
	if u.Type.Rank() != 3 || !u.Type.Shape[2].IsStatic() {
		return nil, 0, nil, false
	}
	if u.Op == "Slice" && u.Arg(0).Type.Rank() == 3 {
		starts, _, axes, steps, ok := ir.SliceParams(u)
		if ok && len(starts) == 1 && axes[0] == 2 && steps[0] == 1 && starts[0] >= 0 && u.Arg(0).Type.Shape[2].IsStatic() {
			return u.Arg(0), starts[0], u, true
		}
	}
	return u, 0, reader, true
}

// sameLead reports whether u's [B,S] equal the first two dims of s.
func sameLead(u *ir.Value, s ir.Shape) bool {
	us := u.Type.Shape
	return us[0] == s[0] && us[1] == s[1] && !us[0].IsUnknown() && !us[1].IsUnknown()
}

// seqHeadsView decodes torchvision's [B·N,S,D] value: Transpose(Reshape(u,
// [S,B·N,D]), [1,0,2]) of a [S,B,N·D] u.
func seqHeadsView(v *ir.Value) (view, bool) {
	if v.Op != "Transpose" || v.Type.Rank() != 3 || !slices.Equal(perm(v), []int64{1, 0, 2}) {
		return view{}, false
	}
	return seqSplitHeads(v.Arg(0))
}

// seqKeysView decodes torchvision's Kᵀ: Transpose(Reshape(u, [S,B·N,D]),
// [1,2,0]).
func seqKeysView(v *ir.Value) (view, bool) {
	if v.Op != "Transpose" || v.Type.Rank() != 3 || !slices.Equal(perm(v), []int64{1, 2, 0}) {
		return view{}, false
	}
	return seqSplitHeads(v.Arg(0))
}

// seqSplitHeads decodes Reshape(u, [S,B·N,D]) of a [S,B,N·D] u (the
// reshape puts batch outside heads, as the result's Reshape expects).
func seqSplitHeads(r *ir.Value) (view, bool) {
	if r.Op != "Reshape" || r.Type.Rank() != 3 {
		return view{}, false
	}
	u, s := r.Arg(0), r.Type.Shape
	t, off, first, ok := columns(u, r)
	if !ok || !s[2].IsStatic() || s[2].C == 0 || u.Type.Shape[2].C%s[2].C != 0 {
		return view{}, false
	}
	n := u.Type.Shape[2].C / s[2].C
	us := u.Type.Shape
	if s[0] != us[0] || s[1] != us[1].Mul(ir.Static(n)) || us[0].IsUnknown() || us[1].IsUnknown() {
		return view{}, false
	}
	return view{t: t, first: first, off: off, heads: n, dim: s[2].C}, true
}
