package cli

import (
	"encoding/json"
	"flag"
	"fmt"

	"github.com/pqvc/pqvc/eval"
)

func init() {
	addCommand(&command{name: "eval", summary: "measure top-1 accuracy and throughput on a labelled .npz", run: runEval})
}

func runEval(env *Env, args []string) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	dataPath := fs.String("data", "", "labelled data: .npz with x (float32 N×…) and y (int64 N)")
	batch := fs.Int("batch", 0, "images per run (0: 32, or 1 for a model whose images share dynamic-quantization scales in a batch)")
	limit := fs.Int("n", 0, "evaluate only the first n images (0: all)")
	refuse := refuseNonfiniteFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parse(env, fs, args, "eval MODEL.onnx --data D.npz [--batch N] [--json]")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one model file, have %d arguments", len(pos))
	}
	if *dataPath == "" {
		return usagef("--data is required")
	}
	if *batch < 0 {
		return usagef("--batch must be at least 1 (or 0 for the default)")
	}
	g, err := loadModelChecked(env, pos[0], *refuse)
	if err != nil {
		return err
	}
	ds, err := loadData(*dataPath, g)
	if err != nil {
		return err
	}
	if ds.Y == nil {
		return fmt.Errorf("%s: no labels (member y); eval needs labelled data", *dataPath)
	}
	r, err := eval.Accuracy(g, ds, eval.Options{Batch: *batch, Limit: *limit})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(map[string]any{
			"model": pos[0], "data": *dataPath, "accuracy": r.Accuracy, "n": r.N, "correct": r.Correct,
			"images_per_second": r.ImagesPerSecond, "seconds": r.Seconds, "batch": *batch,
		})
	}
	fmt.Fprintf(env.Stdout, "accuracy  %.2f%% (%d/%d)\nthroughput %.1f images/s (batch %d)\n",
		100*r.Accuracy, r.Correct, r.N, r.ImagesPerSecond, *batch)
	return nil
}
