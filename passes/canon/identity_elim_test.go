package canon_test

import (
	"strings"
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
	"github.com/pqvc/pqvc/passes/rewrite"
)

func identityElim(params bool) func(*ir.Graph) (map[string]int, error) {
	return func(g *ir.Graph) (map[string]int, error) {
		return canon.IdentityElim(g, canon.IdentityElimOptions{Params: params})
	}
}

// Every rule fires on its pattern.
func TestIdentityElimFires(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[batch,2,3] "x"
%1 = Identity %0 : f32[batch,2,3]
%2 = Const dense<i64[3] [0, 2, 3]> : i64[3]
%3 = Reshape %1, %2 : f32[batch,2,3]
%4 = Transpose %3 {perm=[0, 1, 2]} : f32[batch,2,3]
%5 = Transpose %4 {perm=[0, 2, 1]} : f32[batch,3,2]
%6 = Transpose %5 {perm=[0, 2, 1]} : f32[batch,2,3]
%7 = Cast %6 {to="f32"} : f32[batch,2,3]
%8 = Const dense<i64[1] [0]> : i64[1]
%9 = Const dense<i64[1] [9223372036854775807]> : i64[1]
%10 = Slice %7, %8, %9 : f32[batch,2,3]
%11 = Const dense<i64[2] [1, 3]> : i64[2]
%12 = Expand %10, %11 : f32[batch,2,3]
%13 = Concat %12 {axis=1} : f32[batch,2,3]
%14 = Const dense<f32[] [0.0]> : f32[]
%15 = Add %14, %13 : f32[batch,2,3]
%16 = Sub %15, %14 : f32[batch,2,3]
%17 = Const dense<f32[1] [1.0]> : f32[1]
%18 = Mul %16, %17 : f32[batch,2,3]
%19 = Div %18, %17 : f32[batch,2,3]
%20 = Neg %19 : f32[batch,2,3] "y"
output "y" = %20
`)
	h, st := transform(t, g, identityElim(false))
	if ops(h) != "Neg" {
		t.Errorf("ops %q\n%v", ops(h), h)
	}
	for _, r := range []string{"identity", "reshape_noop", "transpose_noop", "transpose_cancel", "cast_noop", "slice_noop",
		"expand_noop", "concat_single", "add_zero", "sub_zero", "mul_one", "div_one"} {
		if st[r] != 1 {
			t.Errorf("rule %s fired %d times, want 1 (stats %v)", r, st[r], st)
		}
	}
}

// Near misses: each looks like an identity but is not.
func TestIdentityElimNearMisses(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[batch,2,3] "x"
input %1 : f32[?,?] "u"
%2 = Const dense<i64[3] [0, 3, 2]> : i64[3]
%3 = Reshape %0, %2 : f32[batch,3,2]
%4 = Transpose %3 {perm=[0, 2, 1]} : f32[batch,2,3]
%5 = Transpose %4 {perm=[1, 0, 2]} : f32[2,batch,3]
%6 = Const dense<i64[1] [1]> : i64[1]
%7 = Const dense<i64[1] [9223372036854775807]> : i64[1]
%8 = Slice %5, %6, %7 : f32[1,batch,3]
%9 = Const dense<i64[3] [2, 1, 3]> : i64[3]
%10 = Expand %8, %9 : f32[2,batch,3]
%11 = Const dense<f32[2,1,3] splat(0.0)> : f32[2,1,3]
%12 = Sub %11, %10 : f32[2,batch,3]
%13 = Const dense<f32[1,2,1,1] splat(1.0)> : f32[1,2,1,1]
%14 = Mul %12, %13 : f32[1,2,batch,3] "y"
%15 = Const dense<i64[2] [-1, 0]> : i64[2]
%16 = Reshape %1, %15 : f32[?,?] "z"
output "y" = %14
output "z" = %16
`)
	if h, st := transform(t, g, identityElim(true)); len(st) != 0 {
		t.Errorf("fired: %v\n%v", st, h)
	}
}

// A zero bias or unit scale that is a weight tensor stays unless params.
func TestIdentityElimParams(t *testing.T) {
	src := `graph "g" opset=17
input %0 : f32[4,3] "x"
%1 = Const dense<f32[3] splat(0.0)> : f32[3] "bias"
%2 = Add %0, %1 : f32[4,3]
%3 = Const dense<f32[3] splat(1.0)> : f32[3] "gamma"
%4 = Mul %2, %3 : f32[4,3] "y"
output "y" = %4
`
	g := parse(t, src)
	if _, st := transform(t, g, identityElim(false)); len(st) != 0 {
		t.Errorf("params=false fired: %v", st)
	}
	if h, st := transform(t, g, identityElim(true)); st["add_zero"] != 1 || st["mul_one"] != 1 || h.Outputs[0].Value != h.Inputs[0] {
		t.Errorf("params=true: %v", st)
	}
	// The engine explains why it left them.
	rs, err := rewrite.Apply(parse(t, src), canon.IdentityRules(canon.IdentityElimOptions{}), 4)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Rules["add_zero"].Reasons["c is a weight (params=false)"] != 1 || !strings.Contains(rs.String(), "mul_one: 1 matched, 0 rewritten, 1 rejected") {
		t.Errorf("explanation:\n%v", rs)
	}
}
