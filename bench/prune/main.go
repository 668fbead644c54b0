// Command prune reproduces the pruning figures of the Pruning issue:
//
//		go run ./bench/prune [-part acc|deit|time|all] [-runs 20]
//
//	  - acc: top-1 on the shipped Fashion-MNIST DeiT after pruning at 0,
//	    4.6875, 9.375, 18.75 and 25% for every criterion, with and without
//	    reconstruct (our runtime, 2000 real test images);
//	  - deit: DeiT-tiny in three exporter styles at 9.375% channels and with
//	    1 of 3 heads pruned: params and ONNX Runtime latency against the
//	    unpruned model, measured in the same run (1 thread, median);
//	  - time: wall time of Taylor importance (32 images) plus pruning on
//	    DeiT-tiny and DeiT-base, and peak RSS.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"

	onnxout "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/eval"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/internal/testmodels"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/builtin"
)

func main() {
	part := flag.String("part", "all", "acc, deit, time or all")
	runs := flag.Int("runs", 20, "timed runs per latency figure")
	assets := flag.String("assets", "assets", "folder of the shipped model and data")
	flag.Parse()
	var err error
	for _, p := range strings.Split(*part, ",") {
		switch p {
		case "acc":
			err = accuracy(*assets)
		case "deit":
			err = deit(*runs)
		case "time":
			err = timing(*assets)
		case "all":
			if err = accuracy(*assets); err == nil {
				if err = deit(*runs); err == nil {
					err = timing(*assets)
				}
			}
		default:
			err = fmt.Errorf("unknown part %q", p)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

// step builds a pipeline step from recipe-style words.
func step(name string, positional string, opts map[string]passes.Literal) passes.Step {
	p := passes.Lookup(name)
	o := passes.NewOptions(p)
	if positional != "" {
		if err := passes.SetOption(p, o, passes.Positional(p).Name, passes.Literal{Kind: passes.LitIdent, Text: positional}); err != nil {
			panic(err)
		}
	}
	for k, v := range opts {
		if err := passes.SetOption(p, o, k, v); err != nil {
			panic(err)
		}
	}
	return passes.Step{Pass: p, Options: o}
}

func pct(x float64) passes.Literal {
	return passes.Literal{Kind: passes.LitFloat, Text: fmt.Sprint(x)}
}

func accuracy(assets string) error {
	calib, err := data.Load(filepath.Join(assets, "fmnist_calib.npz"))
	if err != nil {
		return err
	}
	evalSet, err := data.Load(filepath.Join(assets, "fmnist_eval.npz"))
	if err != nil {
		return err
	}
	base, err := onnx.Load(filepath.Join(assets, "deit_fmnist.onnx"))
	if err != nil {
		return err
	}
	ratios := []float64{0, 0.046875, 0.09375, 0.1875, 0.25}
	fmt.Println("## Shipped Fashion-MNIST DeiT: top-1 after pruning (2000 test images, Go runtime)")
	for _, unit := range []string{"channels", "heads", "mlp"} {
		for _, rec := range []bool{false, true} {
			if rec && unit == "channels" {
				continue // reconstruct cannot follow embedding pruning
			}
			fmt.Printf("\nunit %s, scope global, reconstruct %v\n\n| criterion |", unit, rec)
			for _, r := range ratios {
				fmt.Printf(" %.4g%% |", 100*r)
			}
			fmt.Print("\n|---|")
			for range ratios {
				fmt.Print("---:|")
			}
			fmt.Println()
			for _, crit := range []string{"magnitude", "taylor", "hessian", "random"} {
				fmt.Printf("| %s |", crit)
				for _, r := range ratios {
					g := base.Clone()
					opts := map[string]passes.Literal{"ratio": pct(r), "scope": {Kind: passes.LitIdent, Text: "global"}}
					if rec {
						opts["reconstruct"] = passes.Literal{Kind: passes.LitIdent, Text: "true"}
					}
					pl := &passes.Pipeline{Steps: []passes.Step{
						step("canonicalize", "", nil),
						step("importance", crit, map[string]passes.Literal{"batches": {Kind: passes.LitInt, Text: "8"}}),
						step("prune", unit, opts),
					}}
					if _, err := passes.Run(g, pl, passes.Config{Verify: true, Calib: calib}); err != nil {
						fmt.Printf(" error: %v |", err)
						continue
					}
					res, err := eval.Accuracy(g, evalSet, eval.Options{Batch: 64})
					if err != nil {
						return err
					}
					fmt.Printf(" %.2f |", 100*res.Accuracy)
				}
				fmt.Println()
			}
		}
	}
	return nil
}

func deit(runs int) error {
	r, err := ort.Start()
	if err != nil {
		return err
	}
	defer r.Close()
	dir, err := os.MkdirTemp("", "pqvc-bench-prune")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	x := make([]float32, 3*224*224)
	rng := rand.New(rand.NewSource(1))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	xa := &tensorio.Array{DType: "float32", Shape: []int{1, 3, 224, 224}, Data: x}
	fmt.Printf("\n## DeiT-tiny, 9.375%% channels and 1 of 3 heads: params and ONNX Runtime latency (1 thread, median of %d, same run)\n\n", runs)
	fmt.Println("| style | variant | params | ORT ms | ratio |\n|---|---|---:|---:|---:|")
	for _, style := range []string{"timm", "torchvision", "hf"} {
		path, err := testmodels.Path(testmodels.Spec{Size: "tiny", Style: style, Opset: 17, Batch: "static"})
		if err != nil {
			return err
		}
		base, err := onnx.Load(path)
		if err != nil {
			return err
		}
		in := base.Inputs[0].Name
		variants := []struct {
			name  string
			steps []passes.Step
		}{
			{"unpruned", nil},
			{"channels 9.375%", []passes.Step{step("canonicalize", "", nil), step("prune", "channels", map[string]passes.Literal{"ratio": pct(0.09375)})}},
			{"heads 1 of 3", []passes.Step{step("canonicalize", "", nil), step("prune", "heads", map[string]passes.Literal{"ratio": pct(1.0 / 3)})}},
		}
		var baseMs float64
		for _, v := range variants {
			g := base.Clone()
			if _, err := passes.Run(g, &passes.Pipeline{Steps: v.steps}, passes.Config{Verify: true}); err != nil {
				return fmt.Errorf("%s %s: %w", style, v.name, err)
			}
			out := filepath.Join(dir, style+strings.ReplaceAll(v.name, " ", "_")+".onnx")
			if err := onnxout.Write(out, g, onnxout.Options{}); err != nil {
				return err
			}
			b, err := r.Bench(out, map[string]*tensorio.Array{in: xa}, 1, 3, runs)
			if err != nil {
				return err
			}
			ms := float64(b.Median()) / 1e6
			if baseMs == 0 {
				baseMs = ms
			}
			fmt.Printf("| %s | %s | %d | %.2f | %.2fx |\n", style, v.name, ir.ComputeStats(g).Params, ms, baseMs/ms)
		}
	}
	return nil
}

func timing(assets string) error {
	fmt.Println("\n## Time for Taylor importance (32 images) and 9.375% channel pruning")
	fmt.Println("\n| model | load s | importance s | prune s | peak RSS MB | model MB |\n|---|---:|---:|---:|---:|---:|")
	for _, size := range []string{"tiny", "base"} {
		path, err := testmodels.Path(testmodels.Spec{Size: size, Style: "timm", Opset: 17, Batch: "dynamic"})
		if err != nil {
			return err
		}
		st, _ := os.Stat(path)
		t0 := time.Now()
		g, err := onnx.Load(path)
		if err != nil {
			return err
		}
		load := time.Since(t0).Seconds()
		xs := make([]float32, 32*3*224*224)
		rng := rand.New(rand.NewSource(2))
		for i := range xs {
			xs[i] = float32(rng.NormFloat64())
		}
		ys := make([]int64, 32)
		for i := range ys {
			ys[i] = int64(rng.Intn(1000))
		}
		calib := &data.Dataset{X: ir.F32Tensor([]int64{32, 3, 224, 224}, xs), Y: ys}
		canon := &passes.Pipeline{Steps: []passes.Step{step("canonicalize", "", nil)}}
		if _, err := passes.Run(g, canon, passes.Config{}); err != nil {
			return err
		}
		t1 := time.Now()
		imp := &passes.Pipeline{Steps: []passes.Step{step("importance", "taylor", map[string]passes.Literal{"batches": {Kind: passes.LitInt, Text: "8"}, "batch_size": {Kind: passes.LitInt, Text: "4"}})}}
		rep, err := passes.Run(g, imp, passes.Config{Calib: calib})
		if err != nil {
			return err
		}
		impS := time.Since(t1).Seconds()
		t2 := time.Now()
		pr := &passes.Pipeline{Steps: []passes.Step{imp.Steps[0], step("prune", "channels", map[string]passes.Literal{"ratio": pct(0.09375)})}}
		_ = rep
		if _, err := passes.Run(g, pr, passes.Config{Calib: calib, Verify: true}); err != nil {
			return err
		}
		prS := time.Since(t2).Seconds() - impS // the second run recomputes importance: subtract it
		fmt.Printf("| DeiT-%s | %.2f | %.2f | %.2f | %d | %.0f |\n", size, load, impS, max(prS, 0), peakRSS()/(1<<20), float64(st.Size())/(1<<20))
	}
	return nil
}

// peakRSS reads VmHWM from /proc (0 where unavailable).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}
