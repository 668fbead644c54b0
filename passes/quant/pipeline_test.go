package quant_test

import (
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/passes"
)

// parsePipeline reads recipe step lines (no model line needed) with the
// real recipe parser.
func parsePipeline(steps string) (*passes.Pipeline, error) {
	rec, err := dsl.Parse("test.pqv", []byte("model \"m.onnx\"\n"+steps+"\n"), nil)
	if err != nil {
		return nil, err
	}
	return rec.Pipeline(), nil
}
