package ptl

import (
	"fmt"
	"strconv"

	"github.com/pqvc/pqvc/backend"
	"github.com/pqvc/pqvc/ir"
)

func init() {
	backend.Register(&backend.Backend{
		Name: "ptl",
		Doc:  "PyTorch Lite model (.ptl) for the Lite interpreter and torch.jit.load; options batch=N (default 1), format=ptl|torchscript, int8_linear=packed|dequant, xnnpack=true|false",
		Emit: func(path string, g *ir.Graph, options map[string]string) error {
			if err := backend.UnknownOption("ptl", options, "batch", "format", "int8_linear", "xnnpack"); err != nil {
				return err
			}
			var o Options
			if s, ok := options["batch"]; ok {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil || n <= 0 {
					return fmt.Errorf("emit ptl: batch wants a positive integer, got %s", s)
				}
				o.Batch = n
			}
			if s, ok := options["format"]; ok {
				o.Format = Format(s)
			}
			if s, ok := options["xnnpack"]; ok {
				b, err := strconv.ParseBool(s)
				if err != nil {
					return fmt.Errorf("emit ptl: xnnpack wants true or false, got %s", s)
				}
				o.NoXNNPACK = !b
			}
			if s, ok := options["int8_linear"]; ok {
				o.Int8Linear = Int8Linear(s)
			}
			return Write(path, g, o)
		},
	})
}
