package dsl

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pqvc/pqvc/passes"
)

func TestErrors(t *testing.T) {
	const m = "model \"m.onnx\"\n"
	for _, tc := range []struct{ name, src, want string }{
		{"no newline at end", m + "test_prun", `recipe.pqv:2:1: unknown pass "test_prun"; did you mean "test_prune"?`},
		{"capitalised pass", m + "Test_Fuse", `recipe.pqv:2:1: unknown pass "Test_Fuse"; did you mean "test_fuse"?`},
		{"option typo", m + "test_prune heads rato=0.5", `recipe.pqv:2:18: unknown option "rato" for test_prune; did you mean "ratio"?`},
		{"option far off", m + "test_prune zzzzzzzz=1", `recipe.pqv:2:12: unknown option "zzzzzzzz" for test_prune (one of: target, ratio, scope, ignore, iterative)`},
		{"enum typo", m + "test_prune heads scope=globl", `recipe.pqv:2:24: unknown scope "globl" for test_prune; did you mean "global"?`},
		{"enum as string", m + "test_prune \"hedas\"", `recipe.pqv:2:12: unknown target "hedas" for test_prune; did you mean "heads"?`},
		{"percent out of range", m + "test_prune ratio=150%", `recipe.pqv:2:18: option ratio of test_prune must be in [0%, 100%], got 150%`},
		{"int for bool", m + "test_prune iterative=1", `recipe.pqv:2:22: option iterative of test_prune wants true or false, got 1`},
		{"string for int", m + `test_importance batches="8"`, `recipe.pqv:2:25: option batches of test_importance wants an integer, got "8"`},
		{"int overflow", m + "test_quantize seed=99999999999999999999", `recipe.pqv:2:20: option seed of test_quantize wants an integer, got 99999999999999999999`},
		{"float overflow", m + "test_quantize eps=1e999", `recipe.pqv:2:19: option eps of test_quantize wants a number, got 1e999`},
		{"positional none", m + "test_fuse x", `recipe.pqv:2:11: test_fuse takes no positional value, got x`},
		{"positional twice", m + "test_prune heads neurons", `recipe.pqv:2:18: test_prune takes one positional value (its target); the first is at 2:12`},
		{"positional late", m + "test_prune ratio=0.5 heads", `recipe.pqv:2:22: positional value heads must come before the name=value options`},
		{"duplicate option", m + "test_prune ratio=0.5 ratio=0.5", `recipe.pqv:2:22: duplicate option ratio (first at 2:12)`},
		{"positional and named", m + "test_prune heads target=heads", `recipe.pqv:2:18: duplicate option target (first at 2:12)`},
		{"missing model", "test_fuse\n", `recipe.pqv:1:1: recipe has no model statement (model "file.onnx")`},
		{"empty", "", `recipe.pqv:1:1: recipe has no model statement (model "file.onnx")`},
		{"duplicate model", m + m, `recipe.pqv:2:1: duplicate model statement (first at 1:1)`},
		{"empty model", `model ""`, `recipe.pqv:1:7: model: empty file name`},
		{"unterminated", "model \"m.onnx", `recipe.pqv:1:7: unterminated string: a string must end with " on the line it starts`},
		{"unterminated crlf", "model \"m.onnx\r\n", `recipe.pqv:1:7: unterminated string: a string must end with " on the line it starts`},
		{"bad escape", `model "\z"`, `recipe.pqv:1:7: bad escape in string "\z" (strings use Go's escapes: \n \t \" \\ \u00e9)`},
		{"list missing comma", m + "test_prune ignore=[a b]", `recipe.pqv:2:22: unexpected "b" in list; want , or ]`},
		{"list double comma", m + "test_prune ignore=[a,,b]", `recipe.pqv:2:22: unexpected "," in list; want a value or ]`},
		{"list unclosed", m + "test_prune ignore=[a,", `recipe.pqv:2:19: list is never closed with ]`},
		{"list unclosed before next line", m + "test_prune ignore=[a,\n b\ntest_fuse", `recipe.pqv:4:1: unexpected "test_fuse" in list; want , or ] (list opened at 2:19)`},
		{"list close only", m + "test_prune ignore=]", `recipe.pqv:2:19: unexpected "]" after =; want a value`},
		{"stray bracket", m + "test_prune ]", `recipe.pqv:2:12: unexpected ] without a matching [`},
		{"missing value", m + "test_prune ratio=\ntest_fuse", `recipe.pqv:2:18: unexpected end of line after =; want a value`},
		{"missing value eof", m + "test_prune ratio=", `recipe.pqv:2:18: unexpected end of file after =; want a value`},
		{"stray equals", m + "test_prune =0.5", `recipe.pqv:2:12: unexpected "="; an option is written name=value`},
		{"statement starts badly", m + "8 test_fuse", `recipe.pqv:2:1: unexpected "8"; a statement starts with a pass name or a keyword`},
		{"two statements", m + "test_fuse test_fuse", `recipe.pqv:2:11: test_fuse takes no positional value, got test_fuse`},
		{"glued", m + "test_prune ignore=blocks.0.attn", `recipe.pqv:2:19: "blocks.0.attn" must be in quotes: a bare word holds only letters, digits, _ and -`},
		{"glued number", m + "test_importance batches=8x", `recipe.pqv:2:25: "8x" must be in quotes: a bare word holds only letters, digits, _ and -`},
		{"stray char", m + "test_fuse ;", `recipe.pqv:2:11: unexpected character ";"`},
		{"unknown format", m + `emit onxx "a"`, `recipe.pqv:2:6: unknown output format "onxx"; did you mean "onnx"?`},
		{"emit absolute", m + `emit onnx "/a"`, `recipe.pqv:2:11: output path "/a" is absolute; outputs are written inside the output folder`},
		{"emit backslash absolute", m + `emit onnx "\\a"`, `recipe.pqv:2:11: output path "\\a" is absolute; outputs are written inside the output folder`},
		{"emit dotdot", m + `emit onnx "a/../../b"`, `recipe.pqv:2:11: output path "a/../../b" contains ..; outputs are written inside the output folder`},
		{"emit backslash dotdot", m + `emit onnx "..\\b"`, `recipe.pqv:2:11: output path "..\\b" contains ..; outputs are written inside the output folder`},
		{"emit empty", m + `emit onnx ""`, `recipe.pqv:2:11: empty output path`},
		{"emit duplicate cleaned", m + "emit onnx \"a/b\"\nemit ptl \"a//b/.\"", `recipe.pqv:3:10: output path "a//b/." is already written by the output at 2:11`},
		{"report escapes", m + `report "../r.md"`, `recipe.pqv:2:8: output path "../r.md" contains ..; outputs are written inside the output folder`},
		{"model options", `model "m" fast=true`, `recipe.pqv:1:11: model takes no options`},
		{"order", m + "test_quantize\ntest_calibrate", `recipe.pqv:2:1: test_quantize must come after test_calibrate: static quantization needs the calibration ranges`},
		{"several, sorted", "test_prun\nreport \"r\" x\ntest_fuse 1\n", "recipe.pqv:1:1: unknown pass \"test_prun\"; did you mean \"test_prune\"?\n" +
			"recipe.pqv:1:1: recipe has no model statement (model \"file.onnx\")\n" +
			"recipe.pqv:2:12: unexpected x after report's file name (one statement per line)\n" +
			"recipe.pqv:3:11: test_fuse takes no positional value, got 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("recipe.pqv", []byte(tc.src), formats)
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T is not a non-empty ErrorList", err)
			}
			var e *Error
			if !errors.As(err, &e) || e != list[0] {
				t.Errorf("errors.As(*Error) does not give the first error")
			}
		})
	}
}

func TestParse(t *testing.T) {
	src := "# phones\r\n" +
		"model \"deit.onnx\"\n" +
		"calibrate_with \"calib.npz\"\n" +
		"evaluate_with \"eval.npz\"\n" +
		"test_importance magnitude batches=8\n" +
		"  test_prune heads ratio=9.375% scope=global ignore=[\"head\", \"blocks.0.*\"] # tail\n" +
		"emit onnx \"out/deit.onnx\" opset=17 tags=[a, 2]\n" +
		"report \"report.md\"\n"
	r, err := Parse("recipe.pqv", []byte(src), formats)
	if err != nil {
		t.Fatal(err)
	}
	if r.File != "recipe.pqv" || r.Model != "deit.onnx" || r.Calib != "calib.npz" || r.Eval != "eval.npz" || r.Report != "report.md" {
		t.Errorf("files: %+v", r)
	}
	if got := r.ModelPos.String() + " " + r.CalibPos.String() + " " + r.EvalPos.String() + " " + r.ReportPos.String(); got != "recipe.pqv:2:1 recipe.pqv:3:1 recipe.pqv:4:1 recipe.pqv:8:1" {
		t.Errorf("positions %s", got)
	}
	pl := r.Pipeline()
	if len(pl.Steps) != 2 || pl.Steps[0].Pos != "recipe.pqv:5:1" || pl.Steps[1].Pos != "recipe.pqv:6:3" {
		t.Fatalf("pipeline %+v", pl.Steps)
	}
	if got := *pl.Steps[0].Options.(*importanceOpts); got != (importanceOpts{Method: "magnitude", Batches: 8}) {
		t.Errorf("importance options %+v", got)
	}
	want := pruneOpts{Target: "heads", Ratio: 0.09375, Scope: "global", Ignore: []string{"head", "blocks.0.*"}}
	if got := *pl.Steps[1].Options.(*pruneOpts); !reflect.DeepEqual(got, want) {
		t.Errorf("prune options %+v, want %+v", got, want)
	}
	wantEmit := Emit{Format: "onnx", Path: "out/deit.onnx", Pos: Position{"recipe.pqv", 7, 1}, Options: []Option{
		{Name: "opset", Value: passes.Literal{Kind: passes.LitInt, Text: "17"}, Pos: Position{"recipe.pqv", 7, 27}},
		{Name: "tags", Value: passes.Literal{Kind: passes.LitList, Items: []passes.Literal{{Kind: passes.LitIdent, Text: "a"}, {Kind: passes.LitInt, Text: "2"}}}, Pos: Position{"recipe.pqv", 7, 36}},
	}}
	if len(r.Emits) != 1 || !reflect.DeepEqual(r.Emits[0], wantEmit) {
		t.Errorf("emits %+v", r.Emits)
	}
	// Defaults must not be shared between steps or with the registry.
	if p := passes.Lookup("test_prune"); p.Options.(*pruneOpts).Ratio != 0.25 {
		t.Errorf("registered defaults changed")
	}
}

func TestTooManyErrors(t *testing.T) {
	_, err := Parse("r", []byte("model \"m\"\ntest_fuse"+strings.Repeat(" x", 30)), formats)
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || lines[maxErrors] != "r:2:51: too many errors" {
		t.Errorf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestNilFormatsAcceptsAny(t *testing.T) {
	r, err := Parse("", []byte("model \"m\"\nemit tflite \"m.tflite\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Emits[0].Format != "tflite" || r.ModelPos.String() != "<recipe>:1:1" {
		t.Errorf("%+v", r)
	}
}

// roundTrips are recipes beyond the golden ones whose canonical form must
// re-parse to the same canonical form.
var roundTrips = []string{
	"model \"m\"",
	"model \"a b\\n\\t\\\"q\\\" \\u00e9 \\x01\"\nreport \"r\\\\x.md\"",
	"model \"m\"\ntest_tag \"\"\ntest_tag x\ntest_tag \"true\"\ntest_tag false\ntest_tag \"8bit\"",
	"model \"m\"\ntest_list\ntest_list []\ntest_list x\ntest_list [\"\"]\ntest_list [1, 2.5, 3%]",
	"model \"m\"\ntest_quantize keep=[] eps=0 seed=0\ntest_quantize fp16 keep=head eps=-0.0 seed=-0",
	"model \"m\"\ntest_quantize eps=1e21 target=\"\" keep=[head, \"x y\", \"\"]",
	"model \"m\"\ntest_quantize eps=.5 seed=+3 target=a-b_c",
	"model \"m\"\ntest_prune ratio=0 iterative=true ignore=[]\ntest_prune ratio=1 ignore=[\n]\n",
	"model \"m\"\nemit go \"pkg\" package=deitgo list=[[a], []] pct=1e2% f=1. i=007 s=\"\"",
	"report \"r\"\nevaluate_with \"e\"\ncalibrate_with \"c\"\nmodel \"m\"\n\n\n",
}

// generated returns one recipe per test pass, option and sample value of
// the option's kind (some of which are rejected, and skipped).
func generated() []string {
	samples := map[string][]string{
		"bool":   {"true", "false"},
		"int":    {"1", "8", "-3", "+2", "1024", "0"},
		"float":  {"0", "0.5", "9.375%", "1e-3", "1", "-0.0", "100%", "2.50"},
		"string": {"w", `"two words"`, `""`, `"true"`, `"\u00e9\t"`, "x86-64"},
		"list":   {"[]", "[a]", "a", `["x y", b]`, "[1, 2%]", `[""]`},
	}
	var out []string
	for _, name := range passes.Names() {
		if !strings.HasPrefix(name, "test_") {
			continue
		}
		p := passes.Lookup(name)
		for _, s := range passes.Specs(p) {
			vals := samples[s.Kind]
			if s.Kind == "enum" {
				for _, w := range s.Enum {
					vals = append(vals, w, `"`+w+`"`)
				}
			}
			for _, v := range vals {
				out = append(out, "model \"m\"\n"+name+" "+s.Name+"="+v+"\n")
				if s.Positional {
					out = append(out, "model \"m\"\n"+name+" "+v+"\n")
				}
			}
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	srcs := append([]string(nil), roundTrips...)
	srcs = append(srcs, generated()...)
	for _, c := range loadGolden(t) {
		srcs = append(srcs, string(c.recipe))
	}
	n := 0
	for i, src := range srcs {
		r, err := Parse("recipe.pqv", []byte(src), formats)
		if err != nil {
			if i < len(roundTrips) {
				t.Errorf("%q: %v", src, err)
			}
			continue
		}
		n++
		f1 := Format(r)
		r2, err := Parse("canonical.pqv", []byte(f1), formats)
		if err != nil {
			t.Errorf("canonical form of %q does not parse: %v\n%s", src, err, f1)
			continue
		}
		if f2 := Format(r2); f2 != f1 {
			t.Errorf("not a fixpoint:\n%s\nthen\n%s", f1, f2)
		}
		if !reflect.DeepEqual(optionsOf(r), optionsOf(r2)) {
			t.Errorf("options differ after round trip of %q", src)
		}
	}
	if n < 100 {
		t.Errorf("only %d recipes round-tripped", n)
	}
}

func optionsOf(r *Recipe) []any {
	var out []any
	for _, s := range r.Steps {
		out = append(out, s.Pass.Name, s.Options)
	}
	return out
}

func TestSuggest(t *testing.T) {
	cands := []string{"prune", "quantize", "fuse", "importance"}
	for word, want := range map[string]string{
		"prun": "prune", "quantise": "quantize", "fues": "fuse", "imprtance": "importance",
		"xyzzy": "", "q": "", "PRUNE": "prune",
	} {
		got := suggest(word, cands)
		if want == "" && got != "" || want != "" && got != `; did you mean "`+want+`"?` {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
	if d := levenshtein("kitten", "sitting"); d != 3 {
		t.Errorf("levenshtein = %d", d)
	}
}
