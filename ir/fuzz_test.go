package ir

import (
	"testing"
)

// FuzzParse checks that the textual IR parser never panics and that
// whatever it accepts prints back to text that parses to the same print.
func FuzzParse(f *testing.F) {
	f.Add(`graph "g" opset=17
input %0 : f32[batch,4] "x"
%1 = Const dense<f32[4] [1.0, 2.5, -3.0, 1e-07]> : f32[4] "w"
%2 = Add %0, %1 : f32[batch,4]
%3 = Softmax %2 {axis=-1} : f32[batch,4]
%4 = Const dense<i64[2] [0, -1]> : i64[2]
%5 = Reshape %3, %4 : f32[batch,4]
output "y" = %5
`)
	f.Add(`graph "g"
%0 = Const dense<f32[64] splat(0.5)> : f32[64]
%1 = Const dense<f32[2,2] sha256:0123456789abcdef> : f32[2,2]
output "a" = %0
output "b" = %1
`)
	f.Fuzz(func(t *testing.T, src string) {
		g, err := Parse(src)
		if err != nil {
			return
		}
		_ = Verify(g)
		text := g.String()
		if len(text) > 6 && text[:6] == "error:" {
			return // e.g. a cycle: printing refuses, which is fine
		}
		h, err := Parse(text)
		if err != nil {
			t.Fatalf("printed form does not parse: %v\n%s", err, text)
		}
		if h.String() != text {
			t.Fatalf("print is not a fixpoint:\n%s\n---\n%s", text, h.String())
		}
	})
}
