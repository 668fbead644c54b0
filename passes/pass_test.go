package passes

import (
	"errors"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/ir"
)

type testOpts struct {
	Method string   `pqv:"method,positional" enum:"a|b" doc:"method"`
	Ratio  float64  `pqv:"ratio" min:"0" max:"1" doc:"ratio"`
	N      int      `pqv:"n" doc:"count"`
	On     bool     `pqv:"on" doc:"switch"`
	Names  []string `pqv:"names" doc:"patterns"`
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

func TestRegisterPanics(t *testing.T) {
	run := func(*Context, *ir.Graph) (any, error) { return nil, nil }
	Register(&Pass{Name: "test_reg_once", Run: run})
	mustPanic(t, "duplicate", func() { Register(&Pass{Name: "test_reg_once", Run: run}) })
	mustPanic(t, "empty name", func() { Register(&Pass{Run: run}) })
	mustPanic(t, "CamelCase", func() { Register(&Pass{Name: "BadName", Run: run}) })
	mustPanic(t, "no Run", func() { Register(&Pass{Name: "test_norun"}) })
	mustPanic(t, "bad options", func() { Register(&Pass{Name: "test_badopts", Run: run, Options: struct{}{}}) })
	if Lookup("test_reg_once") == nil {
		t.Error("Lookup failed")
	}
}

func TestOptions(t *testing.T) {
	p := &Pass{Name: "test_opts", Options: &testOpts{Method: "a", Ratio: 0.5}, Run: func(*Context, *ir.Graph) (any, error) { return nil, nil }}
	o := NewOptions(p).(*testOpts)
	if o.Ratio != 0.5 || o.Method != "a" {
		t.Fatalf("defaults not copied: %+v", o)
	}
	for _, c := range []struct {
		name string
		lit  Literal
		want string // error substring, "" for success
	}{
		{"ratio", Literal{Kind: LitPercent, Text: "9.375"}, ""},
		{"ratio", Literal{Kind: LitPercent, Text: "150"}, "must be in [0, 1]"},
		{"ratio", Literal{Kind: LitIdent, Text: "half"}, "wants a number"},
		{"n", Literal{Kind: LitFloat, Text: "1.5"}, "wants an integer"},
		{"n", Literal{Kind: LitInt, Text: "8"}, ""},
		{"on", Literal{Kind: LitIdent, Text: "true"}, ""},
		{"on", Literal{Kind: LitInt, Text: "1"}, "true or false"},
		{"method", Literal{Kind: LitIdent, Text: "c"}, "must be one of a, b"},
		{"method", Literal{Kind: LitIdent, Text: "b"}, ""},
		{"names", Literal{Kind: LitList, Items: []Literal{{Kind: LitString, Text: "head"}, {Kind: LitIdent, Text: "x"}}}, ""},
		{"bogus", Literal{Kind: LitInt, Text: "1"}, "no option \"bogus\""},
	} {
		err := SetOption(p, o, c.name, c.lit)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("SetOption(%s=%s) = %v, want %q", c.name, c.lit, err, c.want)
		}
	}
	var ee *EnumError
	if err := SetOption(p, o, "method", Literal{Kind: LitIdent, Text: "z"}); !errors.As(err, &ee) {
		t.Errorf("bad enum should be an *EnumError, got %T", err)
	}
	pos, named := FormatOptions(p, o)
	if pos != "b" || strings.Join(named, " ") != `ratio=0.09375 n=8 on=true names=[head, x]` {
		t.Errorf("FormatOptions = %q %q", pos, named)
	}
	if o2 := NewOptions(p).(*testOpts); o2.Ratio != 0.5 || o2.Names != nil {
		t.Errorf("setting options changed the defaults: %+v", o2)
	}
}

// TestRunnerVerifiesAndReuses checks that the runner names a pass that
// breaks the IR, reuses an analysis result until a transform changes the
// graph, and recovers a pass's panic.
func TestRunnerVerifiesAndReuses(t *testing.T) {
	g := ir.NewGraph("t")
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.StaticShape(2)))
	y, _ := g.Add("Relu", "y", nil, x)
	g.SetOutput("y", y)

	runs := 0
	analysis := &Pass{Name: "test_count", Analysis: true, Run: func(*Context, *ir.Graph) (any, error) { runs++; return runs, nil }}
	user := &Pass{Name: "test_user", Requires: []*Pass{analysis}, Run: func(ctx *Context, g *ir.Graph) (any, error) {
		return ctx.ResultOf[analysis], nil
	}}
	mutate := &Pass{Name: "test_mutate", Run: func(ctx *Context, g *ir.Graph) (any, error) {
		r, err := g.Add("Relu", "", nil, g.Outputs[0].Value)
		g.SetOutput("y", r)
		return nil, err
	}}
	pl := &Pipeline{Steps: []Step{{Pass: analysis}, {Pass: user}, {Pass: user}, {Pass: mutate}, {Pass: user}}}
	rep, err := Run(g, pl, Config{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 2 {
		t.Errorf("analysis ran %d times, want 2 (once, then again after the graph changed)", runs)
	}
	if last := rep.Steps[len(rep.Steps)-1]; last.Result != 2 {
		t.Errorf("last user saw %v, want the fresh result 2", last.Result)
	}

	breaker := &Pass{Name: "test_break", Run: func(ctx *Context, g *ir.Graph) (any, error) {
		g.Outputs[0].Value.Type = ir.TensorType(ir.F32, ir.StaticShape(3))
		return nil, nil
	}}
	_, err = Run(g, &Pipeline{Steps: []Step{{Pass: breaker, Pos: "r.pqv:4:1"}}}, Config{Verify: true})
	if err == nil || !strings.Contains(err.Error(), "r.pqv:4:1: test_break: broke the IR") || !strings.Contains(err.Error(), "stored type f32[3], inferred f32[2]") {
		t.Errorf("broken IR not reported by pass name: %v", err)
	}

	panicky := &Pass{Name: "test_panic", Run: func(*Context, *ir.Graph) (any, error) { panic("oops") }}
	_, err = Run(g, &Pipeline{Steps: []Step{{Pass: panicky}}}, Config{})
	if err == nil || !strings.Contains(err.Error(), "test_panic: panic: oops") {
		t.Errorf("panic not turned into an error: %v", err)
	}
}

func TestOrderingTable(t *testing.T) {
	for _, r := range Ordering { // registration is checked in passes/builtin
		if r.Why == "" {
			t.Errorf("ordering rule %s before %s has no reason", r.First, r.Then)
		}
	}
	a := &Pass{Name: "test_a"}
	b := &Pass{Name: "test_b"}
	rules := []OrderRule{{First: "test_a", Then: "test_b", Why: "b reads what a writes"}}
	if err := checkOrder(&Pipeline{Steps: []Step{{Pass: a}, {Pass: b}}}, rules); err != nil {
		t.Error(err)
	}
	err := checkOrder(&Pipeline{Steps: []Step{{Pass: b, Pos: "r.pqv:2:1"}, {Pass: a}}}, rules)
	if err == nil || err.Error() != "r.pqv:2:1: test_b must come after test_a: b reads what a writes" {
		t.Errorf("got %v", err)
	}
}
