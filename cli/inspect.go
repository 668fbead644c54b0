package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"sort"

	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/ir"
)

func init() {
	addCommand(&command{name: "inspect", summary: "show a model's inputs, outputs, ops, params, MACs and bytes", run: runInspect})
}

func runInspect(env *Env, args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	printIR := fs.Bool("ir", false, "print the textual IR")
	asJSON := fs.Bool("json", false, "print one JSON object")
	refuse := refuseNonfiniteFlag(fs)
	pos, err := parse(env, fs, args, "inspect [--ir] [--json] [--refuse-nonfinite] MODEL.onnx")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one model file, have %d arguments", len(pos))
	}
	g, err := loadModelChecked(env, pos[0], *refuse)
	if err != nil {
		return err
	}
	if *printIR {
		return ir.Print(env.Stdout, g)
	}
	st := ir.ComputeStats(g)
	type port struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	var ins, outs []port
	for _, in := range g.Inputs {
		ins = append(ins, port{in.Name, in.Type.String()})
	}
	for _, o := range g.Outputs {
		outs = append(outs, port{o.Name, o.Value.Type.String()})
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"model": pos[0], "opset": g.Opset, "inputs": ins, "outputs": outs,
			"params": st.Params, "macs": st.MACs, "bytes": st.Bytes, "ops": st.Ops,
		})
	}
	w := env.Stdout
	fmt.Fprintf(w, "model   %s (opset %d)\n", pos[0], g.Opset)
	for _, p := range ins {
		fmt.Fprintf(w, "input   %s: %s\n", p.Name, p.Type)
	}
	for _, p := range outs {
		fmt.Fprintf(w, "output  %s: %s\n", p.Name, p.Type)
	}
	fmt.Fprintf(w, "params  %s\n", humanCount(st.Params))
	fmt.Fprintf(w, "MACs    %s per sample\n", humanCount(st.MACs))
	fmt.Fprintf(w, "weights %s\n", humanBytes(st.Bytes))
	fmt.Fprintln(w, "ops:")
	names := make([]string, 0, len(st.Ops))
	for n := range st.Ops {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if st.Ops[names[i]] != st.Ops[names[j]] {
			return st.Ops[names[i]] > st.Ops[names[j]]
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		fmt.Fprintf(w, "  %-20s %d\n", n, st.Ops[n])
	}
	return nil
}

// loadModel reads an ONNX model and verifies the IR it produced.
func loadModel(path string) (*ir.Graph, error) {
	g, err := onnx.Load(path)
	if err != nil {
		return nil, err
	}
	if err := ir.Verify(g); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%d (%.2f G)", n, float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%d (%.2f M)", n, float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%d (%.1f k)", n, float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%d bytes (%.2f GiB)", n, float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d bytes (%.2f MiB)", n, float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d bytes (%.1f KiB)", n, float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
