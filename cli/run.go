package cli

import (
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
)

func init() {
	addCommand(&command{name: "run", summary: "run a model on inputs from .npy/.npz with the Go runtime", run: runRun})
}

func runRun(env *Env, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	input := fs.String("input", "", "inputs: .npy (the model's single input) or .npz (members named like the inputs, or x)")
	refuse := refuseNonfiniteFlag(fs)
	output := fs.String("output", "", "where to write outputs: .npy (first output) or .npz (all)")
	pos, err := parse(env, fs, args, "run MODEL.onnx --input X.npy|X.npz --output Y.npy|Y.npz")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one model file, have %d arguments", len(pos))
	}
	if *input == "" || *output == "" {
		return usagef("--input and --output are required")
	}
	if ext := filepath.Ext(*output); ext != ".npy" && ext != ".npz" {
		return usagef("--output must end in .npy or .npz, not %q", ext)
	}
	if err := checkOutputFile(*output); err != nil {
		return err
	}
	g, err := loadModelChecked(env, pos[0], *refuse)
	if err != nil {
		return err
	}
	ins, err := data.ReadTensors(*input)
	if err != nil {
		return err
	}
	feed, err := bindInputs(g, ins, *input)
	if err != nil {
		return err
	}
	p, err := runtime.Compile(g)
	if err != nil {
		return err
	}
	outs, err := p.Run(feed)
	if err != nil {
		return fmt.Errorf("running %s on %s: %w", pos[0], *input, err)
	}
	if strings.HasSuffix(*output, ".npy") {
		outs = map[string]*ir.Tensor{g.Outputs[0].Name: outs[g.Outputs[0].Name]}
	}
	// tensorio writes through a synced temporary file and a rename.
	if err := data.WriteTensors(*output, outs); err != nil {
		return err
	}
	names := make([]string, 0, len(outs))
	for n := range outs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(env.Stdout, "%s: %v%v\n", n, outs[n].DType, outs[n].Shape)
	}
	return nil
}

// bindInputs maps the arrays of an input file to the model's inputs: by
// name, or a lone array (or one called x) to a single-input model.
func bindInputs(g *ir.Graph, arrays map[string]*ir.Tensor, file string) (map[string]*ir.Tensor, error) {
	feed := map[string]*ir.Tensor{}
	for _, in := range g.Inputs {
		if t, ok := arrays[in.Name]; ok {
			feed[in.Name] = t
		}
	}
	if len(feed) == len(g.Inputs) {
		return feed, nil
	}
	if len(g.Inputs) == 1 {
		if t, ok := arrays["x"]; ok {
			return map[string]*ir.Tensor{g.Inputs[0].Name: t}, nil
		}
		if len(arrays) == 1 {
			for _, t := range arrays {
				return map[string]*ir.Tensor{g.Inputs[0].Name: t}, nil
			}
		}
	}
	var missing []string
	for _, in := range g.Inputs {
		if _, ok := feed[in.Name]; !ok {
			missing = append(missing, in.Name)
		}
	}
	return nil, fmt.Errorf("%s: no array for model input(s) %s", file, strings.Join(missing, ", "))
}
