package ir

import (
	"strings"
	"testing"
)

// smallGraph builds y = Softmax(Reshape(MatMul(x, w) + b, [0, -1])) with a
// dynamic batch, enough to exercise symbols, constants and attributes.
func smallGraph(t *testing.T) *Graph {
	t.Helper()
	g := NewGraph("small")
	x := g.AddInput("x", Type{F32, Shape{Sym("batch"), Static(4), Static(8)}})
	w := g.AddConst("w", F32Tensor([]int64{8, 2}, make([]float32, 16)))
	big := MustTensor(F32, 64)
	for i := range big.F32() {
		big.F32()[i] = float32(i) * 0.5
	}
	b := g.AddConst("b", F32Tensor([]int64{2}, []float32{0.25, -1e-7}))
	mm, err := g.Add("MatMul", "mm", nil, x, w)
	if err != nil {
		t.Fatal(err)
	}
	add, err := g.Add("Add", "", nil, mm, b)
	if err != nil {
		t.Fatal(err)
	}
	shp, _ := g.Add("Shape", "", nil, x)
	idx := g.AddConst("", ScalarI64(0))
	bdim, err := g.Add("Gather", "", nil, shp, idx)
	if err != nil {
		t.Fatal(err)
	}
	ax := g.AddConst("", I64Tensor([]int64{1}, []int64{0}))
	bdim1, err := g.Add("Unsqueeze", "", nil, bdim, ax)
	if err != nil {
		t.Fatal(err)
	}
	m1 := g.AddConst("", I64Tensor([]int64{1}, []int64{-1}))
	target, err := g.Add("Concat", "", Attrs{"axis": int64(0)}, bdim1, m1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Add("Reshape", "r", nil, add, target)
	if err != nil {
		t.Fatal(err)
	}
	if want := "f32[batch,8]"; r.Type.String() != want {
		t.Fatalf("reshape type %v, want %s", r.Type, want)
	}
	sm, err := g.Add("Softmax", "", Attrs{"axis": int64(-1)}, r)
	if err != nil {
		t.Fatal(err)
	}
	bigv := g.AddConst("big", big)
	_ = bigv
	g.SetOutput("y", sm)
	return g
}

func TestPrintParseRoundTrip(t *testing.T) {
	g := smallGraph(t)
	if err := Verify(g); err != nil {
		t.Fatal(err)
	}
	text := g.String()
	h, err := Parse(text)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	if got := h.String(); got != text {
		t.Fatalf("round trip differs:\n%s\n---\n%s", text, got)
	}
	if err := Verify(h); err != nil {
		t.Fatalf("verify parsed: %v", err)
	}
	for _, want := range []string{"f32[batch,4,2]", "dense<f32[2] [0.25, -1e-07]>", "{axis=-1}", "sha256:", `output "y"`} {
		if !strings.Contains(text, want) {
			t.Errorf("print lacks %q:\n%s", want, text)
		}
	}
}

func TestVerifyCatchesBadType(t *testing.T) {
	g := smallGraph(t)
	for _, v := range g.Values() {
		if v.Op == "MatMul" {
			v.Type = Type{F32, StaticShape(1, 2)}
		}
	}
	err := Verify(g)
	if err == nil || !strings.Contains(err.Error(), `MatMul "mm"`) || !strings.Contains(err.Error(), "inferred f32[batch,4,2]") {
		t.Fatalf("want type mismatch naming the MatMul, got %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`graph "g"` + "\n%1 = Foo : f32[]", "2:6: unknown op \"Foo\""},
		{`graph "g"` + "\n%1 = Relu %0 : f32[]", "2:11: %0 used before it is defined"},
		{`graph "g"` + "\n%1 = Const dense<f32[2] [1]> : f32[2]", "1 elements for f32[2], want 2"},
		{`graph "g"` + "\n%1 = Softmax %1 {bogus=1} : f32[]", "used before"},
		{`graph`, "expected string"},
	} {
		_, err := Parse(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.src, err, tc.want)
		}
	}
}

func TestRemoveDeadAndReplaceUses(t *testing.T) {
	g := smallGraph(t)
	n := g.RemoveDead()
	if n != 1 {
		t.Fatalf("removed %d values, want 1 (the unused constant)", n)
	}
	var sm *Value
	for _, v := range g.Values() {
		if v.Op == "Softmax" {
			sm = v
		}
	}
	r := sm.Arg(0)
	sm.ReplaceUses(r)
	if g.Outputs[0].Value != r {
		t.Fatal("output not redirected")
	}
	if err := g.Remove(sm); err != nil {
		t.Fatal(err)
	}
	if err := Verify(g); err != nil {
		t.Fatal(err)
	}
}

func TestDimArithmetic(t *testing.T) {
	d := Sym("batch").Mul(Static(197))
	if d.String() != "197*batch" {
		t.Fatal(d)
	}
	q, ok := d.Div(Static(197))
	if !ok || q != Sym("batch") {
		t.Fatal(q, ok)
	}
	if _, ok := Static(5).Div(Static(2)); ok {
		t.Fatal("5/2 should not divide")
	}
	if got := SliceLen(0, IntMax, 1, 10); got != 10 {
		t.Fatal(got)
	}
	if got := SliceLen(-1, -11, -1, 10); got != 10 {
		t.Fatal(got)
	}
	for _, f := range []float32{1, 0.1, 65504, 6e-8, -2.5, 1e-5} {
		if back := F16ToF32(F32ToF16(f)); f >= 6e-5 && (back-f)/f > 1e-3 {
			t.Errorf("f16 round trip %g → %g", f, back)
		}
	}
}
