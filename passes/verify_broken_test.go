package passes

import (
	"errors"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/ir"
)

// A plugin pass that corrupts the IR must be caught by the ir.Verify the
// runner runs after every transform, and the error must name the pass, the
// recipe position and the offending value, so the user knows whose bug it
// is. These passes are registered under test-only names.

func init() {
	// Stores a wrong type on the Relu: i64 where inference says f32.
	Register(&Pass{Name: "test_broken_type", Doc: "sets a wrong stored type",
		Run: func(_ *Context, g *ir.Graph) (any, error) {
			v := g.Find("act")
			v.Type = ir.Type{DType: ir.I64, Shape: v.Type.Shape}
			return nil, nil
		}})
	// Builds a replacement MatMul, removes it from the graph, then points
	// the Relu at it anyway: a dangling argument.
	Register(&Pass{Name: "test_broken_dangling", Doc: "leaves a dangling argument",
		Run: func(_ *Context, g *ir.Graph) (any, error) {
			mm := g.Find("mm")
			orphan := g.AddTyped("MatMul", "mm_orphan", mm.Type, nil, mm.Args()...)
			if err := g.Remove(orphan); err != nil {
				return nil, err
			}
			g.Find("act").SetArg(0, orphan)
			return nil, nil
		}})
	// Panics half way: the runner turns it into an error naming the pass.
	Register(&Pass{Name: "test_broken_panic", Doc: "panics",
		Run: func(_ *Context, g *ir.Graph) (any, error) {
			var m map[string]int
			m["boom"]++
			return nil, nil
		}})
}

// brokenGraph is x[2,4] · w[4,4] → Relu, named so tests can Find values.
func brokenGraph(t *testing.T) *ir.Graph {
	t.Helper()
	g := ir.NewGraph("g")
	x := g.AddInput("x", ir.Type{DType: ir.F32, Shape: ir.Shape{ir.Static(2), ir.Static(4)}})
	w, err := ir.NewTensor(ir.F32, []int64{4, 4})
	if err != nil {
		t.Fatal(err)
	}
	mm, err := g.Add("MatMul", "mm", nil, x, g.AddConst("w", w))
	if err != nil {
		t.Fatal(err)
	}
	act, err := g.Add("Relu", "act", nil, mm)
	if err != nil {
		t.Fatal(err)
	}
	g.SetOutput("y", act)
	if err := ir.Verify(g); err != nil {
		t.Fatalf("the test graph itself is broken: %v", err)
	}
	return g
}

func TestRunnerCatchesBrokenPasses(t *testing.T) {
	for _, tc := range []struct {
		pass  string
		wants []string
	}{
		{"test_broken_type", []string{"broke the IR", `Relu "act"`, "stored type i64[2,4], inferred f32[2,4]"}},
		{"test_broken_dangling", []string{"broke the IR", `Relu "act"`, `refers to a value not in the graph (MatMul "mm_orphan"`}},
		{"test_broken_panic", []string{"panic", "assignment to entry in nil map"}},
	} {
		t.Run(tc.pass, func(t *testing.T) {
			p := Lookup(tc.pass)
			pl := &Pipeline{Steps: []Step{{Pass: p, Options: NewOptions(p), Pos: "r.pqv:7:1"}}}
			_, err := Run(brokenGraph(t), pl, Config{Verify: true})
			if err == nil {
				t.Fatal("the runner accepted a pass that broke the IR")
			}
			var pe *PassError
			if !errors.As(err, &pe) || pe.Pass != tc.pass {
				t.Fatalf("error %v is not a PassError naming %s", err, tc.pass)
			}
			msg := err.Error()
			t.Log(msg)
			want := "r.pqv:7:1: " + tc.pass + ": "
			if !strings.HasPrefix(msg, want) {
				t.Errorf("error %q should start with %q", msg, want)
			}
			for _, w := range tc.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

// With Verify off (pqvc --verify=false) the runner trusts the pass: this
// pins down that the check above comes from Verify and not from elsewhere.
func TestRunnerWithoutVerifyTrustsThePass(t *testing.T) {
	p := Lookup("test_broken_type")
	pl := &Pipeline{Steps: []Step{{Pass: p, Options: NewOptions(p)}}}
	if _, err := Run(brokenGraph(t), pl, Config{Verify: false}); err != nil {
		t.Fatalf("Verify off should not check the pass: %v", err)
	}
}
