package canon_test

import (
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
)

func dce(g *ir.Graph) (map[string]int, error) { return canon.DCE(g), nil }

func TestDCE(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2] "x"
input %1 : f32[2] "unused"
%2 = Const dense<f32[2] [1.0, 2.0]> : f32[2] "w"
%3 = Mul %0, %2 : f32[2] "dead"
%4 = Exp %3 : f32[2] "dead2"
%5 = Neg %0 : f32[2] "y"
output "y" = %5
`)
	h, st := transform(t, g, dce)
	if st["removed"] != 3 || ops(h) != "Neg" || len(h.Inputs) != 2 {
		t.Errorf("stats %v\n%v", st, h)
	}
}
