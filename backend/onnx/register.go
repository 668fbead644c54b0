package onnx

import (
	"fmt"
	"strconv"

	"github.com/pqvc/pqvc/backend"
	"github.com/pqvc/pqvc/ir"
)

func init() {
	backend.Register(&backend.Backend{
		Name: "onnx",
		Doc:  "ONNX model for ONNX Runtime; options opset=N, external_data_threshold=BYTES",
		Emit: func(path string, g *ir.Graph, options map[string]string) error {
			if err := backend.UnknownOption("onnx", options, "opset", "external_data_threshold"); err != nil {
				return err
			}
			var o Options
			for k, v := range options {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return fmt.Errorf("emit onnx: %s wants an integer, got %s", k, v)
				}
				switch k {
				case "opset":
					o.Opset = int(n)
				case "external_data_threshold":
					o.ExternalDataThreshold = n
				}
			}
			return Write(path, g, o)
		},
	})
}
