package softmaxout

import (
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

func TestAddSoftmaxIsRegisteredAndIdempotent(t *testing.T) {
	if passes.Lookup("add_softmax") != Pass {
		t.Fatal("add_softmax is not registered")
	}
	g := ir.NewGraph("clf")
	x := g.AddInput("x", ir.TensorType(ir.F32, ir.Shape{ir.Sym("batch"), ir.Static(10)}))
	y, _ := g.Add("Relu", "logits", nil, x)
	g.SetOutput("logits", y)
	pl := &passes.Pipeline{Steps: []passes.Step{{Pass: Pass}, {Pass: Pass}}}
	rep, err := passes.Run(g, pl, passes.Config{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if out := g.Outputs[0]; out.Name != "logits" || out.Value.Op != "Softmax" {
		t.Fatalf("output %q is %s, want a Softmax keeping the name", out.Name, out.Value.Op)
	}
	if !rep.Steps[0].Changed || rep.Steps[1].Changed {
		t.Errorf("changed flags %v, %v: want the second run to change nothing", rep.Steps[0].Changed, rep.Steps[1].Changed)
	}
	o := passes.NewOptions(Pass).(*Options)
	o.Output = "nope"
	if _, err := passes.Run(g, &passes.Pipeline{Steps: []passes.Step{{Pass: Pass, Options: o}}}, passes.Config{}); err == nil {
		t.Error("unknown output accepted")
	}
}
