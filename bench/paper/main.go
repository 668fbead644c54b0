// Command paper reproduces the PQV-Mobile study on this machine: DeiT-tiny,
// -small and -base (224×224, timm export, seeded weights) pruned at 0,
// 4.6875, 9.375 and 18.75% of channels, in fp32, fp16 and int8, timed in
// ONNX Runtime next to PyTorch's own mobile pipeline (quantize_dynamic,
// optimize_for_mobile, Lite interpreter) in the same run; and the accuracy
// side on the two trained Fashion-MNIST DeiTs that ship in assets/, for
// magnitude, Taylor and Hessian importance.
//
//	go run ./bench/paper [-part latency|accuracy|all] [-sizes tiny,small,base] [-runs 10]
//
// Structured pruning at a given ratio gives the same shapes whichever
// criterion ranked the channels, so latency is measured once per ratio
// (ranked by magnitude) and the criteria differ only in accuracy.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	onnxout "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/eval"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/testmodels"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/measure"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/builtin"
)

// precisions are the quantization tails appended after pruning. int8 is
// the form that runs fastest in ONNX Runtime (dynamic activations, fused
// into DynamicQuantizeMatMul); int8-static uses calibrated scales.
var precisions = []struct{ name, recipe string }{
	{"fp32", "fuse"},
	{"fp16", "fuse\nquantize fp16"},
	{"int8", "fuse attention=mha\nquantize int8 mode=dynamic\nfuse"},
	{"int8-static", "fuse attention=mha\ncalibrate minmax\nquantize int8 mode=static per_channel=true\nfold_qdq lower=true\nfuse"},
}

func main() {
	part := flag.String("part", "all", "latency, accuracy or all")
	sizes := flag.String("sizes", "tiny,small,base", "DeiT sizes for the latency part")
	ratios := flag.String("ratios", "0,4.6875,9.375,18.75", "pruning ratios in percent")
	runs := flag.Int("runs", 10, "timed runs per figure (median)")
	torch := flag.Bool("torch", true, "also time PyTorch's mobile pipeline")
	units := flag.String("units", "channels,mlp", "prune units for the accuracy part (channels: every coupled group, as Torch-Pruning; mlp: MLP hidden only)")
	flag.Parse()
	var rs []float64
	for _, s := range strings.Split(*ratios, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			fail(fmt.Errorf("-ratios: %w", err))
		}
		rs = append(rs, r)
	}
	if *part == "latency" || *part == "all" {
		if err := latency(strings.Split(*sizes, ","), rs, *runs, *torch); err != nil {
			fail(err)
		}
	}
	if *part == "accuracy" || *part == "all" {
		if err := accuracy(rs, strings.Split(*units, ",")); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/paper:", err)
	os.Exit(1)
}

// compile runs recipe steps on a clone of base.
func compile(base *ir.Graph, steps string, calib *data.Dataset) (*ir.Graph, error) {
	g := base.Clone()
	rec, err := dsl.Parse("bench.pqv", []byte("model \"m\"\n"+steps+"\n"), nil)
	if err != nil {
		return nil, err
	}
	if _, err := passes.Run(g, rec.Pipeline(), passes.Config{Verify: true, Calib: calib}); err != nil {
		return nil, err
	}
	return g, nil
}

func pruneStep(ratio float64, criterion, unit string) string {
	if ratio == 0 {
		return "canonicalize\n"
	}
	imp := ""
	if criterion != "magnitude" {
		imp = "importance " + criterion + " batches=8\n"
	}
	return fmt.Sprintf("canonicalize\n%sprune %s ratio=%g%%\n", imp, unit, ratio)
}

func latency(sizes []string, ratios []float64, runs int, torch bool) error {
	r, err := ort.Start()
	if err != nil {
		return err
	}
	defer r.Close()
	dir, err := os.MkdirTemp("", "pqvc-paper-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root, err := ort.RepoRoot()
	if err != nil {
		return err
	}
	calib := data.Gaussian(1, 8, 3, 224, 224)
	opts := measure.Options{Threads: 1, Runs: runs, Warmup: 3}
	fmt.Printf("## Latency: ONNX Runtime 1.30, 1 thread, batch 1, median of %d runs\n", runs)
	for _, size := range sizes {
		path, err := testmodels.Path(testmodels.Spec{Size: size, Style: "timm", Opset: 17, Batch: "static"})
		if err != nil {
			return err
		}
		base, err := onnx.Load(path)
		if err != nil {
			return err
		}
		ref, err := measure.ORT(r, base, path, opts)
		if err != nil {
			return err
		}
		st, _ := os.Stat(path)
		fmt.Printf("\n### DeiT-%s\n\n| pruned | precision | params | MACs | file MB | ORT ms | speed-up vs fp32 original |\n|---:|---|---:|---:|---:|---:|---:|\n", size)
		fmt.Printf("| 0%% | fp32 original | %d | %.2fG | %.1f | %.2f | 1.00x |\n", ir.ComputeStats(base).Params, float64(ir.ComputeStats(base).MACs)/1e9, float64(st.Size())/1e6, ref.Ms())
		for _, ratio := range ratios {
			pruned, err := compile(base, pruneStep(ratio, "magnitude", "channels"), nil)
			if err != nil {
				return fmt.Errorf("%s %g%%: %w", size, ratio, err)
			}
			for _, p := range precisions {
				g, err := compile(pruned, p.recipe, calib)
				if err != nil {
					return fmt.Errorf("%s %g%% %s: %w", size, ratio, p.name, err)
				}
				out := filepath.Join(dir, fmt.Sprintf("%s_%g_%s.onnx", size, ratio, p.name))
				if err := onnxout.Write(out, g, onnxout.Options{}); err != nil {
					return err
				}
				l, err := measure.ORT(r, g, out, opts)
				if err != nil {
					return fmt.Errorf("%s %g%% %s: %w", size, ratio, p.name, err)
				}
				fi, _ := os.Stat(out)
				s := ir.ComputeStats(g)
				fmt.Printf("| %g%% | %s | %d | %.2fG | %.1f | %.2f | %.2fx |\n", ratio, p.name, s.Params, float64(s.MACs)/1e9, float64(fi.Size())/1e6, l.Ms(), ref.Ms()/l.Ms())
				os.Remove(out)
			}
		}
		if torch {
			cmd := exec.Command(testmodels.Python, filepath.Join(root, "scripts", "torch_mobile_bench.py"),
				"--size", size, "--threads", "1", "--runs", fmt.Sprint(runs))
			b, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("PyTorch pipeline: %v", err)
			}
			var pt struct {
				FP32Ms    float64 `json:"fp32_ms"`
				Int8Ms    float64 `json:"int8_ms"`
				FP32Bytes float64 `json:"fp32_bytes"`
				Int8Bytes float64 `json:"int8_bytes"`
			}
			if err := json.Unmarshal(b, &pt); err != nil {
				return fmt.Errorf("PyTorch pipeline output: %v", err)
			}
			fmt.Printf("| 0%% | PyTorch Lite fp32 | | | %.1f | %.2f | %.2fx |\n", pt.FP32Bytes/1e6, pt.FP32Ms, ref.Ms()/pt.FP32Ms)
			fmt.Printf("| 0%% | PyTorch Lite int8 (quantize_dynamic, onednn) | | | %.1f | %.2f | %.2fx |\n", pt.Int8Bytes/1e6, pt.Int8Ms, ref.Ms()/pt.Int8Ms)
		}
	}
	return nil
}

// accuracyRow prints one table row: the pruned model's accuracy in each
// precision.
func accuracyRow(base *ir.Graph, calib, ev *data.Dataset, ratio float64, crit, unit string) error {
	pruned, err := compile(base, pruneStep(ratio, crit, unit), calib)
	if err != nil {
		return err
	}
	name := crit
	if ratio == 0 {
		name = "–"
	}
	fmt.Printf("| %g%% | %s |", ratio, name)
	for _, p := range precisions {
		g, err := compile(pruned, p.recipe, calib)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		res, err := eval.Accuracy(g, ev, eval.Options{})
		if err != nil {
			return err
		}
		fmt.Printf(" %.2f |", 100*res.Accuracy)
	}
	fmt.Println()
	return nil
}

// accuracy prunes the shipped Fashion-MNIST DeiTs with each criterion and
// ratio, in each precision, and reports top-1 on the shipped eval set
// (pqvc's runtime; ONNX Runtime agrees on these models, see passes/quant).
func accuracy(ratios []float64, units []string) error {
	calib, err := data.Load("assets/fmnist_calib.npz")
	if err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	ev, err := data.Load("assets/fmnist_eval.npz")
	if err != nil {
		return err
	}
	for _, m := range []struct{ file, what string }{
		{"assets/deit_fmnist.onnx", "patch 4, depth 4"},
		{"assets/deit_fmnist_p7.onnx", "patch 7, depth 6"},
	} {
		base, err := onnx.Load(m.file)
		if err != nil {
			return err
		}
		for _, unit := range units {
			fmt.Printf("\n## Accuracy: %s (%s), prune %s, top-1 %% on %d Fashion-MNIST images\n\n", m.file, m.what, unit, ev.Len())
			fmt.Printf("| pruned | criterion |")
			for _, p := range precisions {
				fmt.Printf(" %s |", p.name)
			}
			fmt.Printf("\n|---:|---|%s\n", strings.Repeat("---:|", len(precisions)))
			for _, ratio := range ratios {
				for _, crit := range []string{"magnitude", "taylor", "hessian"} {
					if ratio == 0 && crit != "magnitude" {
						continue
					}
					if err := accuracyRow(base, calib, ev, ratio, crit, unit); err != nil {
						return fmt.Errorf("%s %g%% %s %s: %w", m.file, ratio, unit, crit, err)
					}
				}
			}
		}
	}
	return nil
}
