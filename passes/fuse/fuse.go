// Package fuse holds the fuse pass: it replaces the multi-op spellings that
// exporters give vision-transformer building blocks with single fused ops
// that ONNX Runtime (or any ONNX runtime) executes in one kernel.
//
// Each pattern lives in its own file as rewrite-engine rules (rules as Go
// data with an s-expression comment; Check says why a match is rejected):
//
//	layernorm  ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add → LayerNormalization (opset 17)
//	gelu       x·0.5·(1+erf(x/√2)) in its exporter variants → Gelu (opset 20) or com.microsoft.Gelu
//	gemm       MatMul + Add(bias) on 2-D operands → Gemm (gemm=all: N-D ones too, through Reshapes)
//	qkv        sibling q/k/v MatMul+Add on one input → one MatMul+Add and Slices
//	attention  the scaled-dot-product attention subgraph (timm, HF, torchvision) →
//	           com.microsoft.Attention (projection included) or MultiHeadAttention (target=ort only)
//	transpose  Transpose∘Transpose → one Transpose; a Transpose feeding Gemm → transA/transB
//	qmatmul    int8 MatMulInteger → Cast → Mul (+ bias) after quantize → com.microsoft.DynamicQuantizeMatMul
//	           or MatMulIntegerToFloat (target=ort only)
//
// Requires: a canonicalized graph (canonicalize first): the rules read
// shapes, scales and epsilons as constants and expect one spelling of each
// no-op. Establishes: the fused ops compute what the subgraphs they replace
// computed (up to float rounding); for target=onnx the graph stays in the
// default ONNX domain.
package fuse

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/passes/rewrite"
)

const fuseDoc = `fuse: replace exporter subgraphs with fused ops (LayerNorm, GELU, Gemm, QKV, attention)
Patterns: layernorm, gelu, gemm, qkv, attention, transpose, qmatmul (all by
default). qmatmul fuses quantize's int8 MatMuls into ONNX Runtime's
DynamicQuantizeMatMul / MatMulIntegerToFloat: run fuse again after quantize.
target=ort (the default) may emit ONNX Runtime's com.microsoft ops (Gelu,
Attention, MultiHeadAttention); target=onnx keeps to default-domain ONNX
(Gelu then needs opset 20) and skips attention. attention=mha keeps the QKV
projection out of the attention op, for passes (quantization) that follow.

Requires: canonicalize before it. Establishes: every fused op computes what
it replaced; stats count rewrites per rule and rejections by reason.`

// Targets.
const (
	TargetORT  = "ort"
	TargetONNX = "onnx"
)

// Options configure fuse.
type Options struct {
	Target   string   `pqv:"target" enum:"ort|onnx" doc:"runtime the fused ops are for: ort may use com.microsoft ops"`
	Patterns []string `pqv:"patterns" doc:"patterns to apply (layernorm, gelu, gemm, qkv, attention, transpose, qmatmul); empty: all"`
	// Attention picks the attention op for target=ort: packed lets
	// com.microsoft.Attention absorb a constant QKV projection; mha always
	// emits MultiHeadAttention, keeping the projection a MatMul that later
	// passes (quantization) can reach.
	Attention string `pqv:"attention" enum:"packed|mha" doc:"attention op for target=ort: packed (Attention with the QKV projection) or mha"`
	// Gemm picks which MatMul+Add pairs become Gemm: matrix only those on
	// matrices, all also N-D ones through Reshapes (static shapes).
	Gemm     string `pqv:"gemm" enum:"matrix|all" doc:"MatMul+Add to Gemm: matrix (2-D operands only) or all (N-D through Reshape)"`
	MaxIters int    `pqv:"max_iters" doc:"most rewrite sweeps before giving up" min:"1"`
}

// Gemm forms.
const (
	GemmMatrix = "matrix"
	GemmAll    = "all"
)

// Attention forms.
const (
	AttentionPacked = "packed"
	AttentionMHA    = "mha"
)

// Default are fuse's defaults, chosen by measuring DeiT-tiny in ONNX Runtime
// (1 thread, batch 1; TestBenchORT): target=ort with packed Attention was
// the fastest form, about 3% faster than the export at ORT's default
// optimisation level (which fuses LayerNorm and GELU itself) and 7-10% with
// ORT's optimiser off; attention=mha, target=onnx and gemm=all gained at
// most 1%.
var Default = Options{Target: TargetORT, Attention: AttentionPacked, Gemm: GemmMatrix, MaxIters: 8}

func init() {
	opts := Default
	passes.Register(&passes.Pass{
		Name:    "fuse",
		Doc:     fuseDoc,
		Options: &opts,
		Run: func(ctx *passes.Context, g *ir.Graph) (any, error) {
			st, err := Fuse(g, *ctx.Options.(*Options))
			if err != nil {
				return nil, err
			}
			if ctx.Logf != nil {
				ctx.Logf("%s", st)
			}
			return st.Counts(), nil
		},
	})
}

// pattern is one selectable fusion: its rules, given the target.
type pattern struct {
	name  string
	rules func(o Options) []*rewrite.Rule
}

// patternList is in application order: the engine tries rules in this
// order at each value, so qkv merges projections before attention looks
// for a shared projection, and layernorm fires before anything that might
// read a normalised value.
var patternList = []pattern{
	{"layernorm", layerNormRules},
	{"gelu", geluRules},
	{"transpose", transposeRules},
	{"qkv", qkvRules},
	{"attention", attentionRules},
	{"gemm", gemmRules},
	{"qmatmul", qmatmulRules},
}

// Patterns lists the pattern names in application order.
func Patterns() []string {
	var ns []string
	for _, p := range patternList {
		ns = append(ns, p.name)
	}
	return ns
}

// Rules returns the rules for the patterns o selects (all when o.Patterns
// is empty) and its target, in application order.
func Rules(o Options) ([]*rewrite.Rule, error) {
	if o.Target != TargetORT && o.Target != TargetONNX {
		return nil, fmt.Errorf("fuse: unknown target %q (want ort or onnx)", o.Target)
	}
	if o.Attention != AttentionPacked && o.Attention != AttentionMHA {
		return nil, fmt.Errorf("fuse: unknown attention form %q (want packed or mha)", o.Attention)
	}
	if o.Gemm != GemmMatrix && o.Gemm != GemmAll {
		return nil, fmt.Errorf("fuse: unknown gemm form %q (want matrix or all)", o.Gemm)
	}
	names := o.Patterns
	for _, n := range names {
		if !slices.Contains(Patterns(), n) {
			return nil, fmt.Errorf("fuse: unknown pattern %q (have %s)", n, strings.Join(Patterns(), ", "))
		}
	}
	var rules []*rewrite.Rule
	for _, p := range patternList {
		if len(names) == 0 || slices.Contains(names, p.name) {
			rules = append(rules, p.rules(o)...)
		}
	}
	return rules, nil
}

// Stats is what Fuse did: the rewrite engine's stats.
type Stats struct{ *rewrite.Stats }

// Counts flattens the stats for the runner: "<rule>.rewritten" and
// "<rule>.rejected" for every rule that matched.
func (s Stats) Counts() map[string]int {
	m := map[string]int{"removed": s.Removed}
	names := make([]string, 0, len(s.Rules))
	for n := range s.Rules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := s.Rules[n]
		if r.Matched > 0 {
			m[n+".rewritten"] = r.Rewritten
			m[n+".rejected"] = r.Rejected
		}
	}
	return m
}

// Fuse applies the selected patterns to g until nothing changes.
func Fuse(g *ir.Graph, opts Options) (Stats, error) {
	if opts.Target == "" {
		opts.Target = Default.Target
	}
	if opts.MaxIters == 0 {
		opts.MaxIters = Default.MaxIters
	}
	if opts.Attention == "" {
		opts.Attention = Default.Attention
	}
	if opts.Gemm == "" {
		opts.Gemm = Default.Gemm
	}
	rules, err := Rules(opts)
	if err != nil {
		return Stats{&rewrite.Stats{}}, err
	}
	st, err := rewrite.Apply(g, rules, opts.MaxIters)
	if err != nil {
		return Stats{st}, fmt.Errorf("fuse: %w", err)
	}
	return Stats{st}, nil
}

// ---- helpers shared by the rule files ----

// scalar returns the single element of a float constant (any shape with
// one element).
func scalar(v *ir.Value) (float64, bool) {
	xs, ok := ir.ConstFloats(v)
	if !ok || len(xs) != 1 {
		return 0, false
	}
	return xs[0], true
}

// near reports whether x is within a relative 1e-4 of want: exporters
// write 0.5, 1 and √2 exactly, but as float32.
func near(x, want float64) bool {
	d := x - want
	return d < 1e-4*max(1, want) && d > -1e-4*max(1, want)
}

// isLastAxis reports whether a reduction reduces only the last axis and
// keeps it.
func isLastAxis(v *ir.Value) bool {
	axes := v.Ints("axes")
	rank := v.Arg(0).Type.Rank()
	return len(axes) == 1 && (axes[0] == -1 || axes[0] == int64(rank-1)) && v.Int("keepdims") == 1
}

// uses reports whether v has exactly n users and is no graph output.
func uses(v *ir.Value, n int) bool {
	if len(v.Uses()) != n {
		return false
	}
	for _, o := range v.Graph().Outputs {
		if o.Value == v {
			return false
		}
	}
	return true
}

// add adds a value, naming it after the value it replaces so that exports
// keep a recognisable tensor name.
func add(g *ir.Graph, op string, like *ir.Value, attrs ir.Attrs, args ...*ir.Value) (*ir.Value, error) {
	return g.Add(op, like.Name, attrs, args...)
}

// i64 adds an int64 vector constant.
func i64(g *ir.Graph, name string, xs ...int64) *ir.Value {
	return g.AddConst(name, ir.I64Tensor([]int64{int64(len(xs))}, xs))
}

// sliceLast adds Slice(x, [lo], [hi], [-1]) called n: columns lo..hi of
// the last axis.
func sliceLast(g *ir.Graph, n string, x *ir.Value, lo, hi int64) (*ir.Value, error) {
	return g.Add("Slice", n, nil, x, i64(g, n+"_start", lo), i64(g, n+"_end", hi), i64(g, n+"_axes", -1))
}
