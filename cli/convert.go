package cli

import (
	"flag"
	"fmt"

	onnxout "github.com/pqvc/pqvc/backend/onnx"
)

func init() {
	addCommand(&command{name: "convert", summary: "read a model into the IR and write it back as ONNX", run: runConvert})
}

func runConvert(env *Env, args []string) error {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	refuse := refuseNonfiniteFlag(fs)
	opset := fs.Int("opset", 0, "ONNX opset to write (0: the model's own, at least 13)")
	pos, err := parse(env, fs, args, "convert IN.onnx OUT.onnx [--opset N]")
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("want IN and OUT, have %d arguments", len(pos))
	}
	if err := checkOutputFile(pos[1]); err != nil {
		return err
	}
	g, err := loadModelChecked(env, pos[0], *refuse)
	if err != nil {
		return err
	}
	if err := onnxout.Write(pos[1], g, onnxout.Options{Opset: *opset}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s\n", pos[1])
	return nil
}
