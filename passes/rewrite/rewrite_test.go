package rewrite

import (
	"errors"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/ir"
)

func parse(t *testing.T, src string) *ir.Graph {
	t.Helper()
	g, err := ir.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(g); err != nil {
		t.Fatalf("test input does not verify: %v", err)
	}
	return g
}

func apply(t *testing.T, g *ir.Graph, rules []*Rule, maxIters int) *Stats {
	t.Helper()
	st, err := Apply(g, rules, maxIters)
	if err != nil {
		t.Fatalf("Apply: %v\n%v", err, st)
	}
	if err := ir.Verify(g); err != nil {
		t.Fatalf("graph does not verify after Apply: %v\n%v", err, g)
	}
	return st
}

func ops(g *ir.Graph) string {
	order, _ := g.Topo()
	var names []string
	for _, v := range order {
		if v.Op != ir.OpInput && v.Op != ir.OpConst {
			names = append(names, v.Op)
		}
	}
	return strings.Join(names, " ")
}

// Add(MatMul(x, w), b) => Gemm(x, w, b), for rank-2 x and constant w.
var gemmRule = &Rule{
	Name:    "gemm",
	Pattern: Op("Add", Op("MatMul", Var("x", Rank(2)), Var("w", IsConst)).Where(OneUse), Var("b")),
	Check: func(m *Match) string {
		if m.V("b").Type.Rank() != 1 {
			return "bias is not a vector"
		}
		return ""
	},
	Rewrite: func(m *Match, g *ir.Graph) (*ir.Value, error) {
		return g.Add("Gemm", m.Root.Name, nil, m.V("x"), m.V("w"), m.V("b"))
	},
}

const gemmSrc = `graph "g" opset=17
input %0 : f32[4,3] "x"
%1 = Const dense<f32[3,2] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]> : f32[3,2] "w"
%2 = MatMul %0, %1 : f32[4,2]
%3 = Const dense<f32[2] [0.5, -0.5]> : f32[2] "b"
%4 = Add %2, %3 : f32[4,2] "y"
output "y" = %4
`

func TestGemmFusion(t *testing.T) {
	g := parse(t, gemmSrc)
	st := apply(t, g, []*Rule{gemmRule}, 4)
	if got := ops(g); got != "Gemm" {
		t.Errorf("ops after fusion: %q, want Gemm", got)
	}
	rs := st.Rules["gemm"]
	if rs.Matched != 1 || rs.Rewritten != 1 || rs.Rejected != 0 || st.Iterations != 1 {
		t.Errorf("stats: %+v iterations %d", rs, st.Iterations)
	}
	if st.Removed != 2 { // the Add and the MatMul
		t.Errorf("removed %d values, want 2", st.Removed)
	}
	if g.Outputs[0].Value.Name != "y" {
		t.Errorf("output is %v, want the Gemm named y", g.Outputs[0].Value)
	}
}

// A commutative op matches its arguments in either order.
func TestCommutative(t *testing.T) {
	g := parse(t, strings.Replace(gemmSrc, "Add %2, %3", "Add %3, %2", 1))
	apply(t, g, []*Rule{gemmRule}, 4)
	if got := ops(g); got != "Gemm" {
		t.Errorf("ops: %q, want Gemm", got)
	}
	// Sub is not commutative: Sub(MatMul, b) must not match Sub(x, MatMul).
	sub := &Rule{Name: "sub", Pattern: Op("Sub", Op("MatMul", Var("x"), Var("w")), Var("b")),
		Rewrite: func(m *Match, g *ir.Graph) (*ir.Value, error) { return m.V("b"), nil }}
	g = parse(t, strings.Replace(gemmSrc, "Add %2, %3", "Sub %3, %2", 1))
	st := apply(t, g, []*Rule{sub}, 4)
	if st.Rules["sub"].Matched != 0 {
		t.Errorf("Sub matched with its arguments swapped")
	}
}

func TestRejectionReasons(t *testing.T) {
	// w is an input, not a constant: the predicate rejects.
	src := strings.Replace(gemmSrc, `%1 = Const dense<f32[3,2] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]> : f32[3,2] "w"`, `input %1 : f32[3,2] "w"`, 1)
	g := parse(t, src)
	st := apply(t, g, []*Rule{gemmRule}, 4)
	rs := st.Rules["gemm"]
	if rs.Matched != 1 || rs.Rejected != 1 || rs.Reasons["w: not const"] != 1 {
		t.Errorf("stats: %+v", rs)
	}
	// Check rejects a rank-2 bias, and says so.
	g = parse(t, `graph "g" opset=17
input %0 : f32[4,3] "x"
%1 = Const dense<f32[3,2] splat(1.0)> : f32[3,2] "w"
%2 = MatMul %0, %1 : f32[4,2]
%3 = Const dense<f32[1,2] [0.5, -0.5]> : f32[1,2] "b"
%4 = Add %2, %3 : f32[4,2] "y"
output "y" = %4
`)
	st = apply(t, g, []*Rule{gemmRule}, 4)
	if rs := st.Rules["gemm"]; rs.Reasons["bias is not a vector"] != 1 || rs.Rewritten != 0 {
		t.Errorf("stats: %+v", rs)
	}
	if !strings.Contains(st.String(), "1  bias is not a vector") {
		t.Errorf("explanation lacks the reason:\n%s", st)
	}
}

// A MatMul with a second user must not be fused away (OneUse), and the
// MatMul's rejection is counted once although sweeps repeat.
func TestOneUse(t *testing.T) {
	g := parse(t, gemmSrc+`output "z" = %2
`)
	st := apply(t, g, []*Rule{gemmRule}, 4)
	if rs := st.Rules["gemm"]; rs.Rejected != 1 || rs.Reasons["MatMul: not used once"] != 1 {
		t.Errorf("stats: %+v", rs)
	}
}

// Mul(x, x) => Pow(x, 2) binds x once: Mul(x, y) does not match.
func TestRepeatedVariable(t *testing.T) {
	square := &Rule{Name: "square", Pattern: Op("Mul", Var("x"), Var("x")),
		Rewrite: func(m *Match, g *ir.Graph) (*ir.Value, error) {
			two := g.AddConst("", ir.ScalarF32(2))
			return g.Add("Pow", "", nil, m.V("x"), two)
		}}
	g := parse(t, `graph "g" opset=17
input %0 : f32[4] "x"
input %1 : f32[4] "y"
%2 = Mul %0, %0 : f32[4]
%3 = Mul %0, %1 : f32[4]
%4 = Add %2, %3 : f32[4]
output "z" = %4
`)
	st := apply(t, g, []*Rule{square}, 4)
	if got := ops(g); got != "Pow Mul Add" {
		t.Errorf("ops: %q", got)
	}
	if rs := st.Rules["square"]; rs.Matched != 1 || rs.Rewritten != 1 {
		t.Errorf("stats: %+v", rs)
	}
}

// Neg(Neg(x)) => x reaches its fixpoint over sweeps.
var negNeg = &Rule{Name: "neg_neg", Pattern: Op("Neg", Op("Neg", Var("x"))),
	Rewrite: func(m *Match, g *ir.Graph) (*ir.Value, error) { return m.V("x"), nil }}

func TestFixpoint(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[4] "x"
%1 = Neg %0 : f32[4]
%2 = Neg %1 : f32[4]
%3 = Neg %2 : f32[4]
%4 = Neg %3 : f32[4]
%5 = Neg %4 : f32[4]
output "y" = %5
`)
	st := apply(t, g, []*Rule{negNeg}, 4)
	if got := ops(g); got != "Neg" {
		t.Errorf("ops: %q, want one Neg", got)
	}
	if st.Rules["neg_neg"].Rewritten != 2 || st.Removed != 4 {
		t.Errorf("stats: %+v removed %d", st.Rules["neg_neg"], st.Removed)
	}
	// A graph output that folds to an input: the output follows.
	g = parse(t, `graph "g" opset=17
input %0 : f32[4] "x"
%1 = Neg %0 : f32[4]
%2 = Neg %1 : f32[4]
output "y" = %2
`)
	apply(t, g, []*Rule{negNeg}, 4)
	if g.Outputs[0].Value != g.Inputs[0] || g.Len() != 1 {
		t.Errorf("output not redirected to the input:\n%v", g)
	}
}

func TestFirstRuleWins(t *testing.T) {
	var order []string
	mk := func(name string) *Rule {
		return &Rule{Name: name, Pattern: Op("Neg", Var("x")), Rewrite: func(m *Match, g *ir.Graph) (*ir.Value, error) {
			order = append(order, name)
			return g.Add("Abs", "", nil, m.V("x"))
		}}
	}
	g := parse(t, `graph "g" opset=17
input %0 : f32[4] "x"
%1 = Neg %0 : f32[4]
output "y" = %1
`)
	st := apply(t, g, []*Rule{mk("first"), mk("second")}, 4)
	if strings.Join(order, ",") != "first" || st.Rules["second"].Matched != 0 {
		t.Errorf("rules ran: %v; stats %+v", order, st.Rules["second"])
	}
}

func TestErrors(t *testing.T) {
	src := `graph "g" opset=17
input %0 : f32[4] "x"
%1 = Neg %0 : f32[4]
output "y" = %1
`
	// A rule that always produces a fresh Neg never converges.
	loop := &Rule{Name: "loop", Pattern: Op("Neg", Var("x")),
		Rewrite: func(m *Match, g *ir.Graph) (*ir.Value, error) { return g.Add("Neg", "", nil, m.V("x")) }}
	if _, err := Apply(parse(t, src), []*Rule{loop}, 3); err == nil || !strings.Contains(err.Error(), "no fixpoint after 3 iterations") {
		t.Errorf("non-converging rule: err = %v", err)
	}
	// A replacement of another type is a rule bug.
	cast := &Rule{Name: "cast", Pattern: Op("Neg", Var("x")),
		Rewrite: func(m *Match, g *ir.Graph) (*ir.Value, error) {
			return g.Add("Cast", "", ir.Attrs{"to": "i64"}, m.V("x"))
		}}
	if _, err := Apply(parse(t, src), []*Rule{cast}, 3); err == nil || !strings.Contains(err.Error(), "has type i64[4], want f32[4]") {
		t.Errorf("type-changing rule: err = %v", err)
	}
	boom := errors.New("boom")
	fail := &Rule{Name: "fail", Pattern: Op("Neg", Var("x")),
		Rewrite: func(m *Match, g *ir.Graph) (*ir.Value, error) { return nil, boom }}
	if _, err := Apply(parse(t, src), []*Rule{fail}, 3); !errors.Is(err, boom) || !strings.Contains(err.Error(), "rule fail at Neg") {
		t.Errorf("failing rule: err = %v", err)
	}
	bad := &Rule{Name: "bad", Pattern: Op("Nope"), Rewrite: fail.Rewrite}
	if _, err := Apply(parse(t, src), []*Rule{bad}, 3); err == nil || !strings.Contains(err.Error(), `unknown op "Nope"`) {
		t.Errorf("unknown op in pattern: err = %v", err)
	}
	if _, err := Apply(parse(t, src), []*Rule{loop, loop}, 3); err == nil {
		t.Errorf("duplicate rule names accepted")
	}
}

// Trailing optional arguments: Slice(x, s, e) matches a 3-argument Slice
// only; AnyRest and Absent say otherwise explicitly.
func TestOptionalArgs(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[4,6] "x"
%1 = Const dense<i64[1] [0]> : i64[1]
%2 = Const dense<i64[1] [2]> : i64[1]
%3 = Slice %0, %1, %2 : f32[2,6]
%4 = Const dense<i64[1] [1]> : i64[1]
%5 = Slice %0, %1, %2, %4 : f32[4,2]
%6 = Add %3, %3 : f32[2,6]
output "a" = %6
output "b" = %5
`)
	count := func(p *Pattern) int {
		n := 0
		r := &Rule{Name: "r", Pattern: p, Check: func(*Match) string { n++; return "no" },
			Rewrite: func(m *Match, g *ir.Graph) (*ir.Value, error) { return m.Root, nil }}
		apply(t, g, []*Rule{r}, 1)
		return n
	}
	if n := count(Op("Slice", Var("x"), Any(), Any())); n != 1 {
		t.Errorf("3-arg pattern matched %d slices, want 1", n)
	}
	if n := count(Op("Slice", Var("x"), Any(), Any()).AnyRest()); n != 2 {
		t.Errorf("AnyRest pattern matched %d slices, want 2", n)
	}
	if n := count(Op("Slice", Var("x"), Any(), Any(), Any())); n != 1 {
		t.Errorf("4-arg pattern matched %d slices, want 1", n)
	}
	if n := count(Op("Slice", Var("x"), Any(), Any(), Absent())); n != 1 {
		t.Errorf("pattern with Absent matched %d slices, want 1", n)
	}
}

func TestPatternString(t *testing.T) {
	for _, c := range []struct {
		p    *Pattern
		want string
	}{
		{gemmRule.Pattern, "Add(MatMul(x, w), b)"},
		{negNeg.Pattern, "Neg(Neg(x))"},
		{Op("Slice", Var("x"), Any()).AnyRest(), "Slice(x, _, ...)"},
		{Op("Transpose", Op("Transpose", Var("x")).Bind("inner")), "Transpose(Transpose(x)@inner)"},
		{Op("Slice", Var("x"), Any(), Any(), Absent()), "Slice(x, _, _, ∅)"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

func TestRemoveDeadFrom(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[4] "x"
%1 = Neg %0 : f32[4]
%2 = Abs %1 : f32[4]
%3 = Exp %1 : f32[4]
output "y" = %3
output "z" = %0
`)
	abs := g.Find("")
	for _, v := range g.Values() {
		if v.Op == "Abs" {
			abs = v
		}
	}
	if n := RemoveDeadFrom(g, abs); n != 1 { // Neg is still used by Exp
		t.Errorf("removed %d, want 1", n)
	}
	if n := RemoveDeadFrom(g, g.Outputs[0].Value); n != 0 {
		t.Errorf("removed a graph output")
	}
	if err := ir.Verify(g); err != nil {
		t.Error(err)
	}
}
