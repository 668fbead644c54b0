package dsl

import (
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

// Test-only passes with options of every kind, so the DSL's checks do not
// depend on which real passes exist yet.

type importanceOpts struct {
	Method  string `pqv:"method,positional" enum:"magnitude|taylor|hessian|random" doc:"criterion"`
	Batches int    `pqv:"batches" min:"1" max:"1024" doc:"calibration batches"`
}

type pruneOpts struct {
	Target    string   `pqv:"target,positional" enum:"heads|neurons|channels" doc:"what to remove"`
	Ratio     float64  `pqv:"ratio" min:"0" max:"1" doc:"fraction to remove"`
	Scope     string   `pqv:"scope" enum:"local|global" doc:"rank per layer or across"`
	Ignore    []string `pqv:"ignore" doc:"name patterns to leave alone"`
	Iterative bool     `pqv:"iterative" doc:"prune in steps"`
}

type quantizeOpts struct {
	Bits       string   `pqv:"bits,positional" enum:"int8|fp16" doc:"number format"`
	Mode       string   `pqv:"mode" enum:"static|dynamic" doc:"when scales are fixed"`
	PerChannel bool     `pqv:"per_channel" doc:"a scale per output channel"`
	Target     string   `pqv:"target" doc:"free-form target name"`
	Eps        float64  `pqv:"eps" doc:"unbounded float"`
	Seed       int64    `pqv:"seed" doc:"unbounded int"`
	Keep       []string `pqv:"keep" doc:"a list whose default is not empty"`
}

type tagOpts struct {
	Label string `pqv:"label,positional" doc:"free string, empty by default"`
}

type listOpts struct {
	Names []string `pqv:"names,positional" doc:"positional list"`
}

type calibrateOpts struct {
	Samples int `pqv:"samples" min:"1" doc:"how many"`
}

var formats = []string{"onnx", "ptl", "go"}

func noop(*passes.Context, *ir.Graph) (any, error) { return nil, nil }

func init() {
	passes.Register(&passes.Pass{Name: "test_importance", Doc: "test importance", Analysis: true,
		Options: &importanceOpts{Method: "taylor", Batches: 4}, Run: noop})
	passes.Register(&passes.Pass{Name: "test_prune", Doc: "test prune",
		Options: &pruneOpts{Target: "heads", Ratio: 0.25, Scope: "local"}, Run: noop})
	passes.Register(&passes.Pass{Name: "test_quantize", Doc: "test quantize",
		Options: &quantizeOpts{Bits: "int8", Mode: "static", Keep: []string{"head"}}, Run: noop})
	passes.Register(&passes.Pass{Name: "test_fuse", Doc: "test fuse", Run: noop})
	passes.Register(&passes.Pass{Name: "test_tag", Doc: "test tag", Options: &tagOpts{}, Run: noop})
	passes.Register(&passes.Pass{Name: "test_list", Doc: "test list", Options: &listOpts{Names: []string{"a"}}, Run: noop})
	passes.Register(&passes.Pass{Name: "test_calibrate", Doc: "test calibrate", Analysis: true,
		Options: &calibrateOpts{Samples: 32}, Run: noop})
	passes.Ordering = append(passes.Ordering, passes.OrderRule{First: "test_calibrate", Then: "test_quantize",
		Why: "static quantization needs the calibration ranges"})
}
