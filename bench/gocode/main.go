// Command gocode measures the Go package that `emit go` generates against
// ONNX Runtime on the same DeiT, in the same run: fp32 (ORT on the export
// itself) and int8 dynamic (canonicalize, fuse attention=mha, quantize int8
// mode=dynamic, fuse; ORT on that graph written as ONNX, with its int8 MatMuls
// fused into DynamicQuantizeMatMul, the form ORT runs fastest). Each generated package
// is built, with a small timing harness, in a temporary module and run as
// its own process.
//
//	go run ./bench/gocode [-size tiny] [-runs 20] [-rounds 3] [-threads 1]
//
// Rounds alternate between the generated code and ORT, and every figure
// is the median of the per-round medians: the machine is shared and noisy.
// GFLOP/s is 2·MACs (ir.ComputeStats) over the median latency.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"time"

	"github.com/pqvc/pqvc/backend/gocode"
	bonnx "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/dsl"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/internal/testmodels"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	_ "github.com/pqvc/pqvc/passes/builtin"
)

func main() {
	size := flag.String("size", "tiny", "DeiT size: tiny, small, base")
	style := flag.String("style", "timm", "exporter style")
	runs := flag.Int("runs", 20, "timed runs per round")
	rounds := flag.Int("rounds", 3, "alternating rounds (generated code, then ORT)")
	threads := flag.Int("threads", 1, "threads for both (GOMAXPROCS and kernels for Go, intra-op for ORT)")
	keep := flag.String("keep", "", "emit the packages into this folder and keep them (default: a temporary folder)")
	flag.Parse()
	if err := run(*size, *style, *runs, *rounds, *threads, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// harness is the timing program built next to each generated package.
const harness = `package main

import (
	"encoding/json"
	"os"
	"strconv"
	"time"

	model "example.com/bench"
	"example.com/bench/internal/kernels"
)

func main() {
	runs, _ := strconv.Atoi(os.Args[1])
	threads, _ := strconv.Atoi(os.Args[2])
	kernels.SetThreads(threads)
	m, err := model.New()
	if err != nil {
		panic(err)
	}
	in := make([]float32, model.InputSize0)
	for i := range in {
		in[i] = float32(i%255)/127 - 1
	}
	var ns []int64
	for i := 0; i < runs+3; i++ {
		t0 := time.Now()
		if _, err := m.Predict(in); err != nil {
			panic(err)
		}
		if i >= 3 { // warm-up: first touches of buffers and caches
			ns = append(ns, time.Since(t0).Nanoseconds())
		}
	}
	json.NewEncoder(os.Stdout).Encode(ns)
}
`

type variant struct {
	name   string
	graph  *ir.Graph
	onnx   string // what ORT runs
	binary string
}

func run(size, style string, runs, rounds, threads int, keep string) error {
	path, err := testmodels.Path(testmodels.Spec{Size: size, Style: style, Opset: 17, Batch: "static"})
	if err != nil {
		return err
	}
	work := keep
	if work == "" {
		if work, err = os.MkdirTemp("", "pqvc-bench-gocode-*"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	fp32, err := onnx.Load(path)
	if err != nil {
		return err
	}
	int8g, err := onnx.Load(path)
	if err != nil {
		return err
	}
	rec, err := dsl.Parse("bench.pqv", []byte("model \"x.onnx\"\ncanonicalize\nfuse attention=mha\nquantize int8 mode=dynamic\nfuse\n"), nil)
	if err != nil {
		return err
	}
	if _, err := passes.Run(int8g, rec.Pipeline(), passes.Config{Verify: true}); err != nil {
		return err
	}
	int8Path := filepath.Join(work, "int8.onnx")
	if err := bonnx.Write(int8Path, int8g, bonnx.Options{}); err != nil {
		return err
	}
	vs := []*variant{{name: "fp32", graph: fp32, onnx: path}, {name: "int8 dynamic", graph: int8g, onnx: int8Path}}
	gobin := filepath.Join(goruntime.GOROOT(), "bin", "go")
	for i, v := range vs {
		dir := filepath.Join(work, fmt.Sprintf("pkg%d", i))
		t0 := time.Now()
		if err := gocode.Emit(dir, v.graph, gocode.Options{Module: "example.com/bench", Package: "model", Batch: 1}); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		emitT := time.Since(t0)
		if err := os.MkdirAll(filepath.Join(dir, "cmd", "harness"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "cmd", "harness", "main.go"), []byte(harness), 0o644); err != nil {
			return err
		}
		v.binary = filepath.Join(work, fmt.Sprintf("harness%d", i))
		cmd := exec.Command(gobin, "build", "-o", v.binary, "./cmd/harness")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off")
		t0 = time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: go build: %v\n%s", v.name, err, out)
		}
		fmt.Fprintf(os.Stderr, "%s: emitted in %v, built in %v\n", v.name, emitT.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	}

	x := make([]float32, 3*224*224)
	rng := rand.New(rand.NewSource(1))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	xa, err := data.FromTensor(ir.F32Tensor([]int64{1, 3, 224, 224}, x))
	if err != nil {
		return err
	}
	r, err := ort.Start()
	if err != nil {
		return err
	}
	defer r.Close()

	macs := ir.ComputeStats(fp32).MACs
	fmt.Printf("DeiT-%s (%s, opset 17, batch 1, 224x224), %d thread(s), median of %d rounds × %d runs\n\n", size, style, threads, rounds, runs)
	fmt.Printf("%-14s %10s %10s %8s %12s %12s\n", "variant", "Go ms", "ORT ms", "ratio", "Go GFLOP/s", "ORT GFLOP/s")
	for _, v := range vs {
		var ours, theirs []float64
		for range rounds {
			cmd := exec.Command(v.binary, strconv.Itoa(runs), strconv.Itoa(threads))
			cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(threads))
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("%s: harness: %w", v.name, err)
			}
			var ns []int64
			if err := json.Unmarshal(out, &ns); err != nil || len(ns) == 0 {
				return fmt.Errorf("%s: harness output %q: %v", v.name, out, err)
			}
			slices.Sort(ns)
			ours = append(ours, float64(ns[len(ns)/2])/1e6)
			b, err := r.Bench(v.onnx, map[string]*tensorio.Array{v.graph.Inputs[0].Name: xa}, threads, 3, runs)
			if err != nil {
				return fmt.Errorf("%s: ORT: %w", v.name, err)
			}
			theirs = append(theirs, b.MedianMs)
		}
		g, o := median(ours), median(theirs)
		fl := 2 * float64(macs) / 1e9
		fmt.Printf("%-14s %10.2f %10.2f %7.2fx %12.1f %12.1f\n", v.name, g, o, g/o, fl/(g/1e3), fl/(o/1e3))
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
