package search

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pqvc/pqvc/internal/atomicfile"
)

// Files the search writes into its output folder.
const (
	RecipeFile   = "found.pqv"
	MarkdownFile = "search.md"
	JSONFile     = "search.json"
)

// WriteRecipe writes the found recipe to dir/found.pqv and returns its path.
func (r *Result) WriteRecipe(dir string) (string, error) {
	p := filepath.Join(dir, RecipeFile)
	head := fmt.Sprintf("# Found by pqvc search: top-1 accuracy %.2f%% (model %.2f%%, budget %.2f points, objective %s).\n# Re-run with: pqvc %s -o OUT\n\n",
		100*r.After.Accuracy, 100*r.Before.Accuracy, 100*r.MaxDrop, r.Objective, RecipeFile)
	return p, atomicfile.WriteFile(p, []byte(head+r.Recipe))
}

// WriteReports writes dir/search.md and dir/search.json.
func (r *Result) WriteReports(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, JSONFile), append(js, '\n')); err != nil {
		return err
	}
	var b strings.Builder
	r.Markdown(&b)
	return atomicfile.WriteFile(filepath.Join(dir, MarkdownFile), []byte(b.String()))
}

func pct(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }
func pts(x float64) string { return fmt.Sprintf("%+.2f", 100*x) }

// Markdown writes the human report: what was chosen and why.
func (r *Result) Markdown(w io.Writer) {
	fmt.Fprintf(w, "# pqvc search\n\nBudget: top-1 accuracy may drop by at most %.2f points (absolute) from the model's %s on %d images. Objective: %s.\n\n",
		100*r.MaxDrop, pct(r.Before.Accuracy), r.EvalImages, r.Objective)
	fmt.Fprintf(w, "Cost model: %s.\n\n", r.CostModel)
	fmt.Fprintln(w, "## Result\n\n| | model | found | change |\n|---|---:|---:|---:|")
	fmt.Fprintf(w, "| top-1 accuracy (%d images) | %s | %s | %s points |\n", r.EvalImages, pct(r.Before.Accuracy), pct(r.After.Accuracy), pts(r.After.Accuracy-r.Before.Accuracy))
	row := func(name string, a, b int64) {
		fmt.Fprintf(w, "| %s | %d | %d | %+.2f%% |\n", name, a, b, 100*(float64(b)/float64(max(a, 1))-1))
	}
	row("MACs per image", r.Before.MACs, r.After.MACs)
	row("parameters", r.Before.Params, r.After.Params)
	row("weight bytes", r.Before.Bytes, r.After.Bytes)
	if r.Before.LatencyMs > 0 && r.After.LatencyMs > 0 {
		fmt.Fprintf(w, "| latency, pqvc runtime, 1 thread (ms) | %.3f | %.3f | %+.2f%% |\n", r.Before.LatencyMs, r.After.LatencyMs, 100*(r.After.LatencyMs/r.Before.LatencyMs-1))
	}
	if r.ORTBeforeMs > 0 && r.ORTAfterMs > 0 {
		fmt.Fprintf(w, "| latency, ONNX Runtime, 1 thread (ms) | %.3f | %.3f | %+.2f%% |\n", r.ORTBeforeMs, r.ORTAfterMs, 100*(r.ORTAfterMs/r.ORTBeforeMs-1))
	}
	fmt.Fprintf(w, "\nChosen: %s.\n\n", r.Chosen.Describe())
	fmt.Fprintf(w, "Predicted pruning drop (sum of the chosen groups' subset drops): %.2f points; measured (float, full set): %.2f points; pruning's share of the budget: %.2f points.\n",
		100*r.Predicted, 100*(r.Before.Accuracy-r.PrunedFloat), 100*r.PruneBudget)
	if r.QuantAllDrop != nil {
		fmt.Fprintf(w, "Quantizing every layer of the unpruned model costs %.2f points.\n", 100**r.QuantAllDrop)
	}
	if r.Reproduced != nil {
		verdict := "reproduced exactly"
		if *r.Reproduced != r.After.Accuracy {
			verdict = "DID NOT reproduce"
		}
		fmt.Fprintf(w, "\nRe-running %s gave %s: %s.\n", RecipeFile, pct(*r.Reproduced), verdict)
	}
	fmt.Fprint(w, "\n## Decisions\n\n")
	for _, l := range r.Log {
		fmt.Fprintf(w, "- %s\n", l)
	}
	fmt.Fprintf(w, "\n## Pruning sensitivity (%d images, reference %s)\n\nEach group pruned alone; drop in accuracy points; saved = %s.\n\n| group | ratio | removed | drop | saved | chosen |\n|---|---:|---:|---:|---:|---|\n",
		r.SubsetImages, pct(r.SubsetBase), map[string]string{"latency": "MACs per image", "size": "parameters"}[r.Objective])
	for _, s := range r.Prune {
		mark := ""
		if r.Chosen.Ratios[s.Group] == s.Ratio {
			mark = "yes"
		}
		fmt.Fprintf(w, "| %s | %s%% | %d/%d | %s | %d | %s |\n", s.Group, trimFloat(100*s.Ratio), s.Removed, s.Units, pts(s.Drop), s.Saved, mark)
	}
	if len(r.Layers) > 0 {
		fmt.Fprintf(w, "\n## Quantization sensitivity (%d images)\n\nEvery layer quantized but this one. Logit error: mean squared distance of the logits to the float pruned model's (all layers int8: %.4g); recovered: the share of that error the float layer removes; gain: top-1 accuracy recovered, in points. Layers are kept in float in order of recovered per %s.\n\n| layer | MACs | weights | logit error | recovered | gain | kept in float |\n|---|---:|---:|---:|---:|---:|---|\n",
			r.SubsetImages, r.LogitErrorAll, map[string]string{"latency": "MAC", "size": "weight"}[r.Objective])
		ex := map[string]bool{}
		for _, e := range r.Chosen.Exclude {
			ex[e] = true
		}
		ls := append([]LayerSensitivity(nil), r.Layers...)
		sort.SliceStable(ls, func(a, b int) bool { return ls[a].Recovered > ls[b].Recovered })
		for _, l := range ls {
			mark := ""
			if ex[l.Name] {
				mark = "yes"
			}
			fmt.Fprintf(w, "| `%s` | %d | %d | %.4g | %.1f%% | %s | %s |\n", l.Name, l.MACs, l.Weights, l.LogitError, 100*l.Recovered, pts(l.Gain), mark)
		}
	}
	fmt.Fprintf(w, "\n## Found recipe\n\n```\n%s```\n\n%d candidate runs, %.1f s.\n", r.Recipe, r.Runs, r.Seconds)
}
