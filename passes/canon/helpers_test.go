package canon_test

import (
	"math"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

// parse reads a test graph and insists it verifies.
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

// transform runs f on a clone of g, checks that the result verifies, that
// a second run changes nothing, and that the runtime computes the same
// outputs before and after (every symbolic dim bound to 2). It returns the
// transformed graph and the first run's stats.
func transform(t *testing.T, g *ir.Graph, f func(*ir.Graph) (map[string]int, error)) (*ir.Graph, map[string]int) {
	t.Helper()
	h := g.Clone()
	st, err := f(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(h); err != nil {
		t.Fatalf("broke the IR: %v\n%v", err, h)
	}
	once := h.String()
	if _, err := f(h); err != nil {
		t.Fatal(err)
	}
	if twice := h.String(); twice != once {
		t.Errorf("not idempotent: first run gave\n%s\nsecond\n%s", once, twice)
	}
	in := inputs(t, g)
	want, got := runGraph(t, g, in), runGraph(t, h, in)
	for k, w := range want {
		if d := diff(w, got[k]); !(d <= 1e-6) {
			t.Errorf("output %s changed by %g", k, d)
		}
	}
	return h, st
}

// inputs makes deterministic data for every graph input.
func inputs(t *testing.T, g *ir.Graph) map[string]*ir.Tensor {
	t.Helper()
	m := map[string]*ir.Tensor{}
	for _, in := range g.Inputs {
		dims := make([]int64, in.Type.Rank())
		for i, d := range in.Type.Shape {
			dims[i] = 2
			if d.IsStatic() {
				dims[i] = d.C
			}
		}
		x, err := ir.NewTensor(in.Type.DType, dims)
		if err != nil {
			t.Fatal(err)
		}
		switch d := x.Data.(type) {
		case []float32:
			for i := range d {
				d[i] = float32(math.Sin(float64(i) + 1))
			}
		case []int64:
			for i := range d {
				d[i] = int64(i % 3)
			}
		}
		m[in.Name] = x
	}
	return m
}

func runGraph(t *testing.T, g *ir.Graph, in map[string]*ir.Tensor) map[string]*ir.Tensor {
	t.Helper()
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diff(a, b *ir.Tensor) float64 {
	if b == nil || !a.Type().Equal(b.Type()) {
		return math.Inf(1)
	}
	x, err1 := a.AsFloat64s()
	y, err2 := b.AsFloat64s()
	if err1 != nil || err2 != nil {
		xs, _ := a.AsInt64s()
		ys, _ := b.AsInt64s()
		for i := range xs {
			if xs[i] != ys[i] {
				return math.Inf(1)
			}
		}
		return 0
	}
	m := 0.0
	for i := range x {
		m = max(m, math.Abs(x[i]-y[i]))
	}
	return m
}

// ops lists the non-constant ops of g in print order.
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

func countOp(g *ir.Graph, op string) int {
	n := 0
	for _, v := range g.Values() {
		if v.Op == op {
			n++
		}
	}
	return n
}
