// Command quant measures the quantization figures of the Quantization
// issue: DeiT latency in ONNX Runtime for the fp32 original, fused fp32, int8
// dynamic, int8 static and 9.375%-pruned + int8 + fused, at 1 and 2 threads,
// next to PyTorch's own mobile pipeline (quantize_dynamic on Linear,
// optimize_for_mobile, Lite interpreter, onednn), all in the same run, with
// file sizes.
//
//	go run ./bench/quant [-sizes tiny,small] [-runs 20]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	onnxout "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/internal/testmodels"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/builtin"
)

var variants = []struct{ name, recipe string }{
	{"fp32 original", ""},
	{"fp32 fused", "canonicalize\nfuse"},
	{"int8 dynamic", "canonicalize\nquantize int8 mode=dynamic"},
	{"int8 dynamic + fused", "canonicalize\nfuse attention=mha\nquantize int8 mode=dynamic\nfuse"},
	{"int8 static (QDQ)", "canonicalize\ncalibrate minmax\nquantize int8 mode=static\nfold_qdq"},
	{"int8 static + fused", "canonicalize\nfuse attention=mha\ncalibrate minmax\nquantize int8 mode=static per_channel=true\nfold_qdq lower=true\nfuse"},
	{"pruned 9.375% + int8 dynamic + fused", "canonicalize\nprune channels ratio=9.375%\nfuse attention=mha\nquantize int8 mode=dynamic\nfuse"},
	{"pruned 9.375% + int8 static + fused", "canonicalize\nprune channels ratio=9.375%\nfuse attention=mha\ncalibrate minmax\nquantize int8 mode=static per_channel=true\nfold_qdq lower=true\nfuse"},
}

func main() {
	sizes := flag.String("sizes", "tiny,small", "DeiT sizes")
	runs := flag.Int("runs", 20, "timed runs per figure (median)")
	flag.Parse()
	if err := run(strings.Split(*sizes, ","), *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(sizes []string, runs int) error {
	r, err := ort.Start()
	if err != nil {
		return err
	}
	defer r.Close()
	dir, err := os.MkdirTemp("", "pqvc-bench-quant")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root, err := ort.RepoRoot()
	if err != nil {
		return err
	}
	calib := data.Gaussian(1, 8, 3, 224, 224)
	x := &tensorio.Array{DType: "float32", Shape: []int{1, 3, 224, 224}, Data: calib.X.F32()[:3*224*224]}
	for _, size := range sizes {
		path, err := testmodels.Path(testmodels.Spec{Size: size, Style: "timm", Opset: 17, Batch: "static"})
		if err != nil {
			return err
		}
		base, err := onnx.Load(path)
		if err != nil {
			return err
		}
		fmt.Printf("\n## DeiT-%s (timm, 224x224, batch 1): ONNX Runtime, median of %d\n\n", size, runs)
		fmt.Println("| variant | bytes | 1 thread ms | vs fp32 | 2 threads ms | vs fp32 |\n|---|---:|---:|---:|---:|---:|")
		var ref [2]float64
		for _, v := range variants {
			g := base.Clone()
			if v.recipe != "" {
				rec, err := dsl.Parse(v.name, []byte("model \"m\"\n"+v.recipe+"\n"), nil)
				if err != nil {
					return err
				}
				if _, err := passes.Run(g, rec.Pipeline(), passes.Config{Verify: true, Calib: calib}); err != nil {
					return fmt.Errorf("%s: %w", v.name, err)
				}
			}
			out := filepath.Join(dir, size+"_"+strings.NewReplacer(" ", "_", "%", "", "+", "").Replace(v.name)+".onnx")
			if err := onnxout.Write(out, g, onnxout.Options{}); err != nil {
				return err
			}
			st, _ := os.Stat(out)
			var ms [2]float64
			for i, th := range []int{1, 2} {
				b, err := r.Bench(out, map[string]*tensorio.Array{g.Inputs[0].Name: x}, th, 3, runs)
				if err != nil {
					return fmt.Errorf("%s: %w", v.name, err)
				}
				ms[i] = float64(b.Median()) / 1e6
				if ref[i] == 0 {
					ref[i] = ms[i]
				}
			}
			fmt.Printf("| %s | %d | %.2f | %.2fx | %.2f | %.2fx |\n", v.name, st.Size(), ms[0], ref[0]/ms[0], ms[1], ref[1]/ms[1])
		}
		for _, th := range []int{1, 2} {
			cmd := exec.Command(testmodels.Python, filepath.Join(root, "scripts", "torch_mobile_bench.py"),
				"--size", size, "--threads", fmt.Sprint(th), "--runs", fmt.Sprint(runs))
			b, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("PyTorch pipeline: %v", err)
			}
			var pt map[string]any
			if err := json.Unmarshal(b, &pt); err != nil {
				return fmt.Errorf("PyTorch pipeline output: %v", err)
			}
			fmt.Printf("| PyTorch Lite fp32 (%d thread) | %.0f | %.2f ms | %.2fx of ORT fp32 | | |\n", th, pt["fp32_bytes"], pt["fp32_ms"], ref[th-1]/pt["fp32_ms"].(float64))
			fmt.Printf("| PyTorch Lite int8 dynamic, onednn (%d thread) | %.0f | %.2f ms | %.2fx of ORT fp32 | | |\n", th, pt["int8_bytes"], pt["int8_ms"], ref[th-1]/pt["int8_ms"].(float64))
		}
	}
	return nil
}
