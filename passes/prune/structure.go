// Package prune holds pqvc's structured pruning: Analyze, which recovers a
// vision transformer's prunable structure from the IR alone, and the prune
// pass, which removes heads, head dims, MLP channels or embedding channels
// and rewrites every weight and shape constant that depends on them.
//
// The analysis does not match exporter patterns op by op. It finds each
// attention block from its Softmax (score MatMul before it, value MatMul
// after it, projections with constant weights around them), each MLP from
// the residual stream, and the residual stream from the patch-embedding
// Conv; then, from one seed axis per unit kind, it floods the graph through
// every op whose semantics tie an axis of one tensor to an axis of another
// (labels.go, rules.go). Axes are tracked as products of factors, so the
// fused [3, heads, head_dim] axis of timm's qkv, torchvision's in_proj
// slices and Hugging Face's separate projections all come out the same way,
// and every Reshape, Slice and Expand constant that names a pruned size is
// found by the flood rather than by a pattern.
//
// Graphs must be canonical (run canonicalize first): shapes computed at run
// time from Shape ops are not followed, and an unknown dim is an error.
package prune

import (
	"fmt"
	"slices"

	"github.com/pqvc/pqvc/ir"
)

// Unit kinds.
const (
	KindHeads   = "heads"
	KindHeadDim = "head_dim"
	KindMLP     = "mlp"
	KindEmbed   = "embed"
)

// Slice is part of a weight: the positions Index along axis Axis of W. It
// has the same shape as importance.Slice, so the two convert field by field.
type Slice struct {
	W     *ir.Value
	Axis  int
	Index []int
}

// Unit is what pruning removes as one piece: a head, a head dim, an MLP
// channel or an embedding channel, with every weight slice that goes with it.
type Unit struct {
	Name   string
	Slices []Slice
}

// Group is a set of units ranked against each other (one block's heads,
// one block's MLP channels, the embedding).
type Group struct {
	Name  string
	Units []Unit
}

// Attention is one multi-head attention block.
type Attention struct {
	Index    int
	Name     string      // the Softmax's source name, for messages
	Heads    int         // number of heads
	HeadDim  int         // dims per head
	Width    int         // Heads·HeadDim (may differ from the embedding width)
	QKV      []*ir.Value // q, k, v projection weights (one if fused)
	Biases   []*ir.Value // their biases (where found)
	Proj     *ir.Value   // output projection weight
	ProjOp   *ir.Value   // the MatMul or Gemm applying it
	ProjBias *ir.Value
	Shapes   []*ir.Value // Reshape, Slice and Expand ops whose constants name H or D
	HRole    string
	DRole    string
	labels   *labeling
}

// MLP is one feed-forward block.
type MLP struct {
	Index    int
	Name     string
	FC1, FC2 *ir.Value // weights
	FC2Op    *ir.Value // the MatMul applying FC2
	Hidden   int
	Role     string
	labels   *labeling
}

// Embed is the residual stream's channel group.
type Embed struct {
	Width  int
	Consts []*ir.Value // every constant with an embedding axis
	Shapes []*ir.Value
	Role   string
	labels *labeling
}

// Structure is what Analyze recovers.
type Structure struct {
	Attention []*Attention
	MLPs      []*MLP
	Embed     *Embed // nil when no patch-embedding Conv was found
	// EmbedErr says why Embed is nil.
	EmbedErr error
}

// Analyze recovers the attention blocks, MLP blocks and residual stream of
// a canonical graph. It does not change g.
func Analyze(g *ir.Graph) (*Structure, error) {
	order, err := g.Topo()
	if err != nil {
		return nil, err
	}
	st := &Structure{}
	projs := map[*ir.Value]bool{}
	for _, v := range order {
		if v.Op != "Softmax" {
			continue
		}
		a, err := analyzeAttention(g, v, len(st.Attention))
		if err != nil {
			return nil, fmt.Errorf("attention block %d (%s): %w", len(st.Attention), v, err)
		}
		if a == nil {
			continue // a Softmax that is not attention (class probabilities)
		}
		st.Attention = append(st.Attention, a)
		for _, w := range a.QKV {
			projs[w] = true
		}
		projs[a.Proj] = true
	}
	st.Embed, st.EmbedErr = analyzeEmbed(g, order)
	// MLP blocks: a weight MatMul whose hidden channels flow, through
	// activations only, into exactly one other weight MatMul. Candidates are
	// the weights of every MatMul not already claimed by attention; a
	// classifier fails the test by reaching a graph output.
	for _, v := range order {
		w, ok := weightOf(v)
		if !ok || projs[w] || v.Op != "MatMul" {
			continue
		}
		m, ok := tryMLP(g, v, w, len(st.MLPs))
		if !ok {
			continue
		}
		st.MLPs = append(st.MLPs, m)
		projs[w], projs[m.FC2] = true, true
	}
	return st, nil
}

// weightOf returns the constant weight of a MatMul or Gemm.
func weightOf(v *ir.Value) (*ir.Value, bool) {
	if (v.Op == "MatMul" || v.Op == "Gemm") && v.Arg(1) != nil && v.Arg(1).IsConst() && v.Arg(1).Type.Rank() == 2 {
		return v.Arg(1), true
	}
	return nil, false
}

// layoutOps move data without mixing channels; attention's q, k and v
// reach the score MatMul through them.
var layoutOps = map[string]bool{
	"Transpose": true, "Reshape": true, "Gather": true, "Slice": true, "Squeeze": true, "Unsqueeze": true,
	"Mul": true, "Div": true, "Add": true, "Identity": true, "Flatten": true,
}

// backToProj walks from x back to the weight MatMul/Gemm producing it.
func backToProj(x *ir.Value) (*ir.Value, error) {
	start := x
	for range 32 {
		if _, ok := weightOf(x); ok {
			return x, nil
		}
		if !layoutOps[x.Op] {
			return nil, fmt.Errorf("%s does not come from a projection (stopped at %s)", start, x)
		}
		next := x.Arg(0)
		if x.Op == "Add" || x.Op == "Mul" || x.Op == "Div" {
			// The activation is the non-constant operand.
			if next.IsConst() {
				next = x.Arg(1)
			}
		}
		if next == nil || next.IsConst() || next.Op == ir.OpInput {
			return nil, fmt.Errorf("%s does not come from a projection (stopped at %s)", start, x)
		}
		x = next
	}
	return nil, fmt.Errorf("%s: no projection within 32 ops", start)
}

// forwardToProj walks from x forward, through single users, to the weight
// MatMul/Gemm consuming it.
func forwardToProj(x *ir.Value) (*ir.Value, error) {
	start := x
	for range 32 {
		us := x.Uses()
		if len(us) != 1 {
			return nil, fmt.Errorf("%s: attention output %s has %d users, want one chain to a projection", start, x, len(us))
		}
		u := us[0]
		if _, ok := weightOf(u); ok && u.Arg(0) == x {
			return u, nil
		}
		if !layoutOps[u.Op] {
			return nil, fmt.Errorf("attention output %s reaches %s before any projection", start, u)
		}
		x = u
	}
	return nil, fmt.Errorf("%s: no output projection within 32 ops", start)
}

func analyzeAttention(g *ir.Graph, sm *ir.Value, idx int) (*Attention, error) {
	score := sm.Arg(0)
	for score.Op == "Mul" || score.Op == "Div" || score.Op == "Add" {
		if score.Arg(0).IsConst() {
			score = score.Arg(1)
		} else {
			score = score.Arg(0)
		}
	}
	if score.Op != "MatMul" || score.Arg(0).IsConst() || score.Arg(1).IsConst() {
		// Attention's scores are a product of two activations; anything
		// else (a softmax over logits) is not an attention block.
		return nil, nil
	}
	var av *ir.Value
	for _, u := range sm.Uses() {
		if u.Op == "MatMul" && u.Arg(0) == sm {
			av = u
		}
	}
	if av == nil {
		return nil, fmt.Errorf("no MatMul of the attention weights with v")
	}
	q := score.Arg(0)
	d := q.Type.Shape[q.Type.Rank()-1]
	if !d.IsStatic() {
		return nil, fmt.Errorf("head dim of %s is not static", q)
	}
	out, err := forwardToProj(av)
	if err != nil {
		return nil, err
	}
	pw, _ := weightOf(out)
	k := pw.Type.Shape[0]
	if out.Op == "Gemm" && out.Int("transB") != 0 {
		k = pw.Type.Shape[1]
	}
	if !k.IsStatic() || k.C%d.C != 0 {
		return nil, fmt.Errorf("output projection %s has %v inputs, not a multiple of head dim %v", pw, k, d)
	}
	a := &Attention{Index: idx, Name: sm.Name, HeadDim: int(d.C), Width: int(k.C), Heads: int(k.C / d.C), Proj: pw, ProjOp: out,
		HRole: fmt.Sprintf("b%d.H", idx), DRole: fmt.Sprintf("b%d.D", idx)}
	if out.Op == "Gemm" {
		a.ProjBias = out.Arg(2)
	} else if b := biasOf(out); b != nil {
		a.ProjBias = b
	}
	lab := newLabeling(g)
	var seen []*ir.Value
	for _, x := range []*ir.Value{score.Arg(0), score.Arg(1), av.Arg(1)} {
		p, err := backToProj(x)
		if err != nil {
			return nil, err
		}
		if slices.Contains(seen, p) {
			continue
		}
		seen = append(seen, p)
		w, _ := weightOf(p)
		c := p.Type.Shape[p.Type.Rank()-1]
		hd := label{{a.HRole, ir.Static(int64(a.Heads))}, {a.DRole, d}}
		switch {
		case c == ir.Static(int64(a.Width)):
		case c == ir.Static(int64(3*a.Width)):
			hd = append(label{{size: ir.Static(3)}}, hd...)
		case c == ir.Static(int64(2*a.Width)):
			hd = append(label{{size: ir.Static(2)}}, hd...)
		default:
			return nil, fmt.Errorf("projection %s has %v outputs; want %d or 3×%d (heads×head dim)", w, c, a.Width, a.Width)
		}
		a.QKV = append(a.QKV, w)
		if b := biasOf(p); b != nil {
			a.Biases = append(a.Biases, b)
		} else if p.Op == "Gemm" && p.Arg(2) != nil {
			a.Biases = append(a.Biases, p.Arg(2))
		}
		if err := lab.set(p, p.Type.Rank()-1, hd); err != nil {
			return nil, err
		}
	}
	if err := lab.propagate(); err != nil {
		return nil, err
	}
	if lab.get(pw, 0) == nil && lab.get(pw, 1) == nil {
		return nil, fmt.Errorf("head channels never reach the output projection %s", pw)
	}
	a.labels = lab
	a.Shapes = shapeOps(lab)
	return a, nil
}

// biasOf returns the constant added to a projection's output, if any.
func biasOf(p *ir.Value) *ir.Value {
	for _, u := range p.Uses() {
		if u.Op == "Add" {
			for _, a := range u.Args() {
				if a != p && a.IsConst() {
					return a
				}
			}
		}
	}
	return nil
}

// shapeOps lists the ops whose constant arguments name labelled sizes.
func shapeOps(lab *labeling) []*ir.Value {
	var out []*ir.Value
	for _, v := range lab.order {
		switch v.Op {
		case "Reshape", "Expand":
			out = append(out, v)
		case "Slice":
			if lab.labelled(v.Arg(0)) {
				out = append(out, v)
			}
		}
	}
	return out
}

func analyzeEmbed(g *ir.Graph, order []*ir.Value) (*Embed, error) {
	var conv *ir.Value
	for _, v := range order {
		if v.Op == "Conv" && v.Arg(0).Op == ir.OpInput && v.Arg(1).IsConst() {
			conv = v
			break
		}
	}
	if conv == nil {
		return nil, fmt.Errorf("no patch-embedding Conv on a graph input")
	}
	e := conv.Type.Shape[1]
	if !e.IsStatic() {
		return nil, fmt.Errorf("%s: channel count %v is not static", conv, e)
	}
	em := &Embed{Width: int(e.C), Role: "E"}
	lab := newLabeling(g)
	if err := lab.set(conv, 1, label{{em.Role, e}}); err != nil {
		return nil, err
	}
	if err := lab.propagate(); err != nil {
		return nil, fmt.Errorf("residual stream from %s: %w", conv, err)
	}
	em.labels = lab
	em.Shapes = shapeOps(lab)
	for _, v := range lab.order {
		if v.IsConst() {
			em.Consts = append(em.Consts, v)
		}
	}
	return em, nil
}

// tryMLP seeds the output channels of mm (weight w) and accepts the flood
// if it stays inside activations and ends at exactly one other weight.
func tryMLP(g *ir.Graph, mm, w *ir.Value, idx int) (*MLP, bool) {
	c := mm.Type.Shape[mm.Type.Rank()-1]
	if !c.IsStatic() {
		return nil, false
	}
	m := &MLP{Index: idx, Name: mm.Name, FC1: w, Hidden: int(c.C), Role: fmt.Sprintf("m%d.M", idx)}
	lab := newLabeling(g)
	if lab.set(mm, mm.Type.Rank()-1, label{{m.Role, c}}) != nil || lab.propagate() != nil {
		return nil, false
	}
	for _, v := range lab.order {
		if !v.IsConst() || v == w || v.Type.Rank() != 2 {
			continue
		}
		if lab.get(v, 0) == nil || m.FC2 != nil {
			return nil, false
		}
		m.FC2 = v
		for _, u := range v.Uses() {
			if u.Op == "MatMul" && u.Arg(1) == v {
				m.FC2Op = u
			}
		}
	}
	if m.FC2 == nil || m.FC2Op == nil {
		return nil, false
	}
	m.labels = lab
	return m, true
}
