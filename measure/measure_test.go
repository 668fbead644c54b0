package measure

import (
	"testing"

	"github.com/pqvc/pqvc/ir"
)

// TestPeakActivationBytes checks liveness on a chain and a diamond: in
// x→a→b the peak is two live tensors; when x is used again at the end it
// stays live throughout.
func TestPeakActivationBytes(t *testing.T) {
	build := func(reuse bool) *ir.Graph {
		g := ir.NewGraph("t")
		x := g.AddInput("x", ir.TensorType(ir.F32, ir.Shape{ir.Sym("batch"), ir.Static(100)}))
		a, err := g.Add("Relu", "a", nil, x)
		if err != nil {
			t.Fatal(err)
		}
		b, err := g.Add("Relu", "b", nil, a)
		if err != nil {
			t.Fatal(err)
		}
		out := b
		if reuse {
			if out, err = g.Add("Add", "c", nil, b, x); err != nil {
				t.Fatal(err)
			}
		}
		g.SetOutput("y", out)
		return g
	}
	for _, c := range []struct {
		reuse bool
		batch int
		want  int64
	}{
		{false, 1, 2 * 400}, {false, 3, 2 * 1200}, {true, 1, 3 * 400},
	} {
		got, err := PeakActivationBytes(build(c.reuse), c.batch)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("reuse=%v batch=%d: peak %d bytes, want %d", c.reuse, c.batch, got, c.want)
		}
	}
}

// TestRuntimeTimes runs a tiny graph and checks the summary is sane.
func TestRuntimeTimes(t *testing.T) {
	g := ir.NewGraph("t")
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.Shape{ir.Sym("batch"), ir.Static(8)}))
	y, err := g.Add("Relu", "y", nil, x)
	if err != nil {
		t.Fatal(err)
	}
	g.SetOutput("y", y)
	l, err := Runtime(g, Options{Runs: 5})
	if err != nil {
		t.Fatal(err)
	}
	if l.Runs != 5 || l.Median <= 0 || l.Min > l.Median {
		t.Errorf("bad summary %+v", l)
	}
	if got := BindShape(x.Type.Shape, 4); got[0] != 4 || got[1] != 8 {
		t.Errorf("BindShape = %v", got)
	}
}
