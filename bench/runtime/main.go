// Command runtime measures pqvc's Go runtime against ONNX Runtime on the
// same DeiT export in the same run: median latency at 1 and 2 threads and
// the ratio, plus the GEMM kernels' GFLOP/s on DeiT-tiny's shapes.
//
//	go run ./bench/runtime [-size tiny] [-runs 20] [-style timm]
//
// The machine is shared and noisy: every figure is a median of -runs
// repetitions, and peers are measured interleaved, in one process.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"time"

	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/internal/testmodels"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime"
	"github.com/pqvc/pqvc/runtime/kernels"
)

func main() {
	size := flag.String("size", "tiny", "DeiT size: tiny, small, base")
	style := flag.String("style", "timm", "exporter style")
	runs := flag.Int("runs", 20, "timed runs per configuration")
	flag.Parse()
	if err := run(*size, *style, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func run(size, style string, runs int) error {
	path, err := testmodels.Path(testmodels.Spec{Size: size, Style: style, Opset: 17, Batch: "static"})
	if err != nil {
		return err
	}
	g, err := onnx.Load(path)
	if err != nil {
		return err
	}
	p, err := runtime.Compile(g)
	if err != nil {
		return err
	}
	x := make([]float32, 3*224*224)
	rng := rand.New(rand.NewSource(1))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	xt := ir.F32Tensor([]int64{1, 3, 224, 224}, x)
	xa, _ := data.FromTensor(xt)
	r, err := ort.Start()
	if err != nil {
		return err
	}
	defer r.Close()

	fmt.Printf("DeiT-%s (%s style, opset 17, batch 1, 224x224), median of %d runs, kernel path %s\n\n", size, style, runs, kernels.KernelPath())
	fmt.Printf("%-8s %14s %14s %8s\n", "threads", "pqvc ms", "ORT ms", "ratio")
	for _, threads := range []int{1, 2} {
		kernels.SetThreads(threads)
		var ours []time.Duration
		for i := range runs + 2 {
			t0 := time.Now()
			if _, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: xt}); err != nil {
				return err
			}
			if i >= 2 { // the first runs pack weights and warm caches
				ours = append(ours, time.Since(t0))
			}
		}
		b, err := r.Bench(path, map[string]*tensorio.Array{g.Inputs[0].Name: xa}, threads, 3, runs)
		if err != nil {
			return err
		}
		m := median(ours)
		fmt.Printf("%-8d %14.2f %14.2f %8.2fx\n", threads, ms(m), ms(b.Median()), ms(m)/ms(b.Median()))
	}
	kernels.SetThreads(1)
	fmt.Printf("\nSGEMM GFLOP/s (1 thread, median of %d):\n", runs)
	for _, s := range [][3]int{{197, 576, 192}, {197, 768, 192}, {197, 192, 768}, {197, 197, 64}, {197, 64, 197}} {
		m, n, k := s[0], s[1], s[2]
		a := make([]float32, m*k)
		bm := make([]float32, k*n)
		c := make([]float32, m*n)
		var ts []time.Duration
		for range runs {
			t0 := time.Now()
			for range 10 {
				kernels.Sgemm(false, false, m, n, k, 1, a, k, bm, n, 0, c, n)
			}
			ts = append(ts, time.Since(t0)/10)
		}
		gf := 2 * float64(m*n*k) / median(ts).Seconds() / 1e9
		fmt.Printf("  %4dx%4dx%4d  %6.1f\n", m, n, k, gf)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
