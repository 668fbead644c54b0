package prune_test

import (
	"encoding/json"
	"github.com/pqvc/pqvc/internal/testmodels"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	backend "github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	onnx "github.com/pqvc/pqvc/frontend/onnx"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
	"github.com/pqvc/pqvc/passes/prune"
	"github.com/pqvc/pqvc/runtime"
)

type sidecar struct {
	Style   string `json:"style"`
	Embed   int    `json:"embed"`
	Heads   int    `json:"heads"`
	HeadDim int    `json:"head_dim"`
	AttnDim int    `json:"attn_dim"`
	MLP     int    `json:"mlp_hidden"`
	Params  int64  `json:"params"`
}

func deitFiles(t *testing.T, pattern string) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("DeiT models: skipped in -short mode")
	}
	return testmodels.RequireGlob(t, pattern) // exported on demand into the cache
}

func stem(path string) string { return strings.TrimSuffix(filepath.Base(path), ".onnx") }

// loadCanonNoSidecar loads a model and canonicalizes it, as prune requires.
func loadCanonNoSidecar(t testing.TB, path string) (*ir.Graph, error) {
	t.Helper()
	g, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := canon.Canonicalize(g, canon.DefaultCanonicalize); err != nil {
		t.Fatal(err)
	}
	return g, nil
}

// loadCanon is loadCanonNoSidecar plus the export's JSON sidecar.
func loadCanon(t testing.TB, path string) (*ir.Graph, sidecar) {
	t.Helper()
	g, _ := loadCanonNoSidecar(t, path)
	var sc sidecar
	b, err := os.ReadFile(strings.TrimSuffix(path, ".onnx") + ".json")
	if err == nil {
		err = json.Unmarshal(b, &sc)
	}
	if err != nil {
		t.Fatal(err)
	}
	return g, sc
}

func sample(t testing.TB, path string) *ir.Tensor {
	t.Helper()
	s, err := data.ReadTensors(strings.TrimSuffix(path, ".onnx") + ".sample.npz")
	if err != nil {
		t.Fatal(err)
	}
	return s["x"]
}

func runGraph(t testing.TB, g *ir.Graph, x *ir.Tensor) *ir.Tensor {
	t.Helper()
	p, err := runtime.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(map[string]*ir.Tensor{g.Inputs[0].Name: x})
	if err != nil {
		t.Fatal(err)
	}
	return out[g.Outputs[0].Name]
}

// TestAnalyzeDeiT checks that every export style yields the sidecar's
// heads, head dim, attention width, MLP width and embedding width.
func TestAnalyzeDeiT(t *testing.T) {
	for _, path := range deitFiles(t, "deit_tiny_*_op17_dynamic.onnx") {
		g, sc := loadCanon(t, path)
		st, err := prune.Analyze(g)
		if err != nil {
			t.Fatalf("%s: %v", stem(path), err)
		}
		if len(st.Attention) != 12 || len(st.MLPs) != 12 || st.Embed == nil {
			t.Fatalf("%s: %d attention, %d MLP blocks, embed %v (%v)", stem(path), len(st.Attention), len(st.MLPs), st.Embed != nil, st.EmbedErr)
		}
		a := st.Attention[0]
		if a.Heads != sc.Heads || a.HeadDim != sc.HeadDim || a.Width != sc.AttnDim {
			t.Errorf("%s: block 0 has %d heads × %d = %d, want %d × %d = %d", stem(path), a.Heads, a.HeadDim, a.Width, sc.Heads, sc.HeadDim, sc.AttnDim)
		}
		if st.MLPs[0].Hidden != sc.MLP || st.Embed.Width != sc.Embed {
			t.Errorf("%s: mlp %d embed %d, want %d %d", stem(path), st.MLPs[0].Hidden, st.Embed.Width, sc.MLP, sc.Embed)
		}
		t.Logf("%s: %d heads × %d, %d qkv weights, %d attention shape ops, embed %d (%d consts, %d shape ops)", stem(path),
			a.Heads, a.HeadDim, len(a.QKV), len(a.Shapes), st.Embed.Width, len(st.Embed.Consts), len(st.Embed.Shapes))
	}
}

// wantChannels are the parameter counts after Torch-Pruning's default
// channel pruning at 9.375% (embed 192→174, head dim 64→58, MLP 768→696).
// Hugging Face's distilled DeiT has its own count with the same widths
// (a second token, a second classifier); timm_narrow's head dim 48 loses
// floor(4.5) = 4.
var wantChannels = map[string][2]int64{
	"timm":        {5717416, 4730494},
	"timm_unbind": {5717416, 4730494},
	"torchvision": {5717416, 4730494},
	"hf":          {5910800, 4905842},
	"timm_narrow": {5273320, 4378198},
}

// wantHeads are the counts after removing one head of three per block.
var wantHeads = map[string]int64{
	"timm": 5125288, "timm_unbind": 5125288, "torchvision": 5125288, "hf": 5318672, "timm_narrow": 4829224,
}

// TestPruneDeiT prunes every export style, opset and batch kind, by
// channels at 9.375% and by one head in three; the result must verify,
// keep its output shape and run in the runtime.
func TestPruneDeiT(t *testing.T) {
	// Every style × opset × batch kind: about half a minute, mostly ONNX
	// Runtime loading 40 models; our runtime (slower on DeiT) checks two.
	files := deitFiles(t, "deit_tiny_*.onnx")
	r := ort.NewTestRunner(t)
	dir := t.TempDir()
	for _, path := range files {
		g0, sc := loadCanon(t, path)
		x := sample(t, path)
		for _, c := range []struct {
			name string
			opts prune.Options
		}{
			{"channels", prune.Options{Unit: "channels", Ratio: 0.09375, Scope: "local", RoundTo: 1, Criterion: "magnitude"}},
			{"heads", prune.Options{Unit: "heads", Ratio: 1.0 / 3, Scope: "local", RoundTo: 1, Criterion: "magnitude"}},
		} {
			g := g0.Clone()
			st, err := prune.Prune(g, c.opts, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", stem(path), c.name, err)
			}
			if err := ir.Verify(g); err != nil {
				t.Fatalf("%s %s: %v", stem(path), c.name, err)
			}
			if !g.Outputs[0].Value.Type.Equal(g0.Outputs[0].Value.Type) {
				t.Errorf("%s %s: output %v, was %v", stem(path), c.name, g.Outputs[0].Value.Type, g0.Outputs[0].Value.Type)
			}
			if st.ParamsBefore != sc.Params {
				t.Errorf("%s: %d params before, sidecar says %d", stem(path), st.ParamsBefore, sc.Params)
			}
			if want, ok := wantChannels[sc.Style]; ok && c.name == "channels" && (st.ParamsBefore != want[0] || st.ParamsAfter != want[1]) {
				t.Errorf("%s channels: %d → %d params, want %d → %d", stem(path), st.ParamsBefore, st.ParamsAfter, want[0], want[1])
			}
			if want, ok := wantHeads[sc.Style]; ok && c.name == "heads" && st.ParamsAfter != want {
				t.Errorf("%s heads: %d → %d params, want %d", stem(path), st.ParamsBefore, st.ParamsAfter, want)
			}
			if c.name == "channels" {
				w := st.Widths
				if w["embed"][1] != sc.Embed*29/32 || w["mlp"][1] != sc.MLP*29/32 || w["head_dim"][1] != sc.HeadDim-sc.HeadDim*3/32 {
					t.Errorf("%s channels: widths %v", stem(path), w)
				}
			}
			// ONNX Runtime runs every pruned export; our runtime (slow on
			// DeiT-tiny) checks one case per style against it.
			file := filepath.Join(dir, stem(path)+"_"+c.name+".onnx")
			if err := backend.Write(file, g, backend.Options{}); err != nil {
				t.Fatal(err)
			}
			in, _ := data.FromTensor(x)
			res, err := r.Run(file, map[string]*tensorio.Array{g.Inputs[0].Name: in}, 1)
			if err != nil {
				t.Fatalf("%s %s: ONNX Runtime: %v", stem(path), c.name, err)
			}
			want, err := data.ToTensor(res[g.Outputs[0].Name])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(want.Shape, []int64{x.Shape[0], 1000}) {
				t.Errorf("%s %s: ORT output shape %v", stem(path), c.name, want.Shape)
			}
			if (strings.HasSuffix(stem(path), "op17_static") || strings.Contains(stem(path), "torchvision_op13_dynamic")) && c.name == "channels" {
				got := runGraph(t, g, x)
				if d := maxDiff(got, want); d > 1e-3 {
					t.Errorf("%s %s: runtime and ORT differ by %g", stem(path), c.name, d)
				}
			}
			os.Remove(file)
			t.Logf("%-36s %-8s %d → %d params  widths %v", stem(path), c.name, st.ParamsBefore, st.ParamsAfter, st.Widths)
		}
	}
}

func maxDiff(a, b *ir.Tensor) float64 {
	x, y := a.F32(), b.F32()
	if len(x) != len(y) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range x {
		d = max(d, math.Abs(float64(x[i]-y[i])))
	}
	return d
}
