package canon_test

import (
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
)

func cse(params bool) func(*ir.Graph) (map[string]int, error) {
	return func(g *ir.Graph) (map[string]int, error) { return canon.CSE(g, canon.CSEOptions{Params: params}) }
}

// Duplicated shape reads, equal constants under different names, swapped
// arguments of a commutative op, and attributes spelled with and without
// their default all merge; users then merge in the same run.
func TestCSE(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2,3] "x"
%1 = Shape %0 : i64[2]
%2 = Const dense<i64[] [1]> : i64[] "one"
%3 = Gather %1, %2 : i64[]
%4 = Shape %0 : i64[2]
%5 = Const dense<i64[] [1]> : i64[] "uno"
%6 = Gather %4, %5 {axis=0} : i64[]
%7 = Add %3, %6 : i64[]
%8 = Add %6, %3 : i64[]
%9 = Mul %7, %8 : i64[]
%10 = Sub %3, %6 : i64[]
%11 = Sub %6, %3 : i64[]
%12 = Sub %10, %11 : i64[]
output "a" = %9
output "b" = %12
`)
	h, st := transform(t, g, cse(false))
	if st["merged"] != 5 || ops(h) != "Shape Gather Add Mul Sub Sub" {
		t.Errorf("stats %v, ops %q\n%v", st, ops(h), h)
	}
}

// Equal weight tensors stay separate unless params=true; two graph outputs
// stay two values.
func TestCSEParams(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2] "x"
%1 = Const dense<f32[2] splat(0.0)> : f32[2] "b1"
%2 = Add %0, %1 : f32[2]
%3 = Const dense<f32[2] splat(0.0)> : f32[2] "b2"
%4 = Add %2, %3 : f32[2] "y"
%5 = Neg %0 : f32[2] "n1"
%6 = Neg %0 : f32[2] "n2"
output "y" = %4
output "n1" = %5
output "n2" = %6
`)
	if _, st := transform(t, g, cse(false)); st["merged"] != 0 {
		t.Errorf("params=false merged: %v", st)
	}
	if _, st := transform(t, g, cse(true)); st["merged"] != 1 {
		t.Errorf("params=true: %v, want the two biases merged", st)
	}
}

// Shape's end attribute means "to the last dim" when absent, not its
// table default 0: Shape and Shape{end=0} differ.
func TestCSEShapeEnd(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2,3] "x"
%1 = Shape %0 : i64[2] "all"
%2 = Shape %0 {end=0} : i64[0] "none"
%3 = Shape %0 {start=0} : i64[2] "all2"
output "a" = %1
output "b" = %2
output "c" = %3
`)
	if _, st := transform(t, g, cse(false)); st["merged"] != 0 {
		t.Errorf("merged %v (all three are outputs, and none equals end=0)", st)
	}
}
