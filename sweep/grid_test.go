package sweep

import (
	"slices"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/dsl"
	_ "github.com/pqvc/pqvc/passes/builtin" // the passes a recipe names
)

func TestPointsDedupRatioZero(t *testing.T) {
	g := Grid{Ratios: []float64{0, 0.5}, Criteria: []string{"magnitude", "taylor"}, Quants: []string{"none", "int8-dynamic"}}
	var ids []string
	for _, p := range g.Points() {
		ids = append(ids, p.ID())
	}
	want := []string{"r0_none_none", "r0_none_int8-dynamic", "r50_magnitude_none", "r50_magnitude_int8-dynamic",
		"r50_taylor_none", "r50_taylor_int8-dynamic"}
	if !slices.Equal(ids, want) {
		t.Errorf("points %v, want %v", ids, want)
	}
}

func TestParseLists(t *testing.T) {
	r, err := ParseRatios("0, 9.375%,0.25")
	if err != nil || !slices.Equal(r, []float64{0, 0.09375, 0.25}) {
		t.Errorf("ParseRatios = %v, %v", r, err)
	}
	for _, bad := range []string{"", "1", "100%", "-1%", "x"} {
		if _, err := ParseRatios(bad); err == nil {
			t.Errorf("ParseRatios(%q) succeeded", bad)
		}
	}
	if _, err := ParseCriteria("magnitude,taylr"); err == nil || !strings.Contains(err.Error(), "taylr") {
		t.Errorf("ParseCriteria with a typo: %v", err)
	}
	if _, err := ParseQuants("none,int4"); err == nil || !strings.Contains(err.Error(), "int4") {
		t.Errorf("ParseQuants with an unknown mode: %v", err)
	}
}

func parseRecipe(t *testing.T, src string) *dsl.Recipe {
	t.Helper()
	rec, err := dsl.Parse("base.pqv", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// steps formats a recipe's steps one per line, as dsl.Format prints them.
func steps(t *testing.T, rec *dsl.Recipe) string {
	t.Helper()
	text := dsl.Format(rec)
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l != "" && !strings.HasPrefix(l, "model ") && !strings.HasPrefix(l, "calibrate_with ") && !strings.HasPrefix(l, "evaluate_with ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestRecipeRewrites(t *testing.T) {
	base := parseRecipe(t, `model "m.onnx"
calibrate_with "c.npz"
canonicalize
importance taylor batches=4
prune mlp ratio=9.375%
fuse attention=mha
quantize int8 mode=dynamic per_channel=true
emit onnx "out.onnx"
`)
	before := dsl.Format(base)
	for _, tc := range []struct {
		p    Point
		unit string
		want string
	}{
		{Point{0, NoCriterion, QuantNone}, "", "canonicalize\nfuse attention=mha"},
		{Point{0.25, "magnitude", QuantInt8Dynamic}, "", "canonicalize\nimportance magnitude batches=4\nprune mlp ratio=0.25\nfuse attention=mha\nquantize int8 per_channel=true"},
		{Point{0.5, "hessian", QuantInt8Static}, "heads", "canonicalize\nimportance hessian batches=4\nprune heads ratio=0.5\nfuse attention=mha\ncalibrate minmax\nquantize int8 mode=static per_channel=true\nfold_qdq lower=true"},
		{Point{0, NoCriterion, QuantFP16}, "", "canonicalize\nfuse attention=mha\nquantize fp16 per_channel=true"},
	} {
		rec, err := Recipe(base, tc.p, tc.unit)
		if err != nil {
			t.Fatalf("%s: %v", tc.p.ID(), err)
		}
		if got := steps(t, rec); got != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.p.ID(), got, tc.want)
		}
		if len(rec.Emits) != 0 {
			t.Errorf("%s: the sweep's recipe keeps the base's emits", tc.p.ID())
		}
	}
	if after := dsl.Format(base); after != before {
		t.Errorf("Recipe changed the base recipe:\n%s\nwas\n%s", after, before)
	}
}

func TestRecipeAddsMissingSteps(t *testing.T) {
	base := parseRecipe(t, "model \"m.onnx\"\nfold_qdq\n")
	rec, err := Recipe(base, Point{0.125, "taylor", QuantInt8Static}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := "canonicalize\nimportance taylor\nprune channels ratio=0.125\ncalibrate minmax\nquantize int8 mode=static\nfold_qdq"
	if got := steps(t, rec); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	rec, err = Recipe(base, Point{0, NoCriterion, QuantNone}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := steps(t, rec); got != "" {
		t.Errorf("ratio 0, no quantization: steps %q, want none (fold_qdq has nothing to fold)", got)
	}
}
