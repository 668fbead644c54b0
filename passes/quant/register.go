package quant

import "github.com/pqvc/pqvc/passes"

func init() {
	passes.Register(Calibrate)
	passes.Register(Quantize)
	passes.Register(FoldQDQ)
}
