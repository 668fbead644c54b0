package canon_test

import (
	"strings"
	"testing"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
	"github.com/pqvc/pqvc/passes/canon"
)

func canonicalize(g *ir.Graph) (map[string]int, error) {
	return canon.Canonicalize(g, canon.DefaultCanonicalize)
}

// Passes feed each other: a folded shape makes a Reshape a no-op, which
// makes two Exps identical; cse merges them and dce sweeps the rest.
func TestCanonicalize(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2,3] "x"
%1 = Shape %0 : i64[2]
%2 = Reshape %0, %1 : f32[2,3]
%3 = Exp %2 : f32[2,3]
%4 = Exp %0 : f32[2,3]
%5 = Add %3, %4 : f32[2,3] "y"
%6 = Const dense<f32[] [2.0]> : f32[] "dead"
%7 = Sqrt %6 : f32[]
output "y" = %5
`)
	h, st := transform(t, g, canonicalize)
	if ops(h) != "Exp Add" || st["values_before"] != 8 || st["values_after"] != 3 || st["rounds"] != 2 {
		t.Errorf("stats %v\n%v", st, h)
	}
	for _, k := range []string{"shape_fold.folded", "identity_elim.reshape_noop", "const_fold.folded", "cse.merged", "dce.removed"} {
		if st[k] == 0 {
			t.Errorf("stats lack %s: %v", k, st)
		}
	}
}

// Every pass here is registered with a titled doc and valid options, and
// the recipe's option words reach the struct.
func TestRegistered(t *testing.T) {
	for _, name := range []string{"shape_fold", "const_fold", "dce", "cse", "identity_elim", "canonicalize"} {
		p := passes.Lookup(name)
		if p == nil {
			t.Errorf("%s is not registered", name)
			continue
		}
		if !strings.HasPrefix(p.Title(), name+": ") || !strings.Contains(p.Doc, "Requires:") || !strings.Contains(p.Doc, "Establishes:") {
			t.Errorf("%s: doc does not open with a title or lacks Requires/Establishes:\n%s", name, p.Doc)
		}
	}
	p := passes.Lookup("const_fold")
	opts := passes.NewOptions(p)
	if err := passes.SetOption(p, opts, "max_bytes", passes.Literal{Kind: passes.LitInt, Text: "1024"}); err != nil {
		t.Fatal(err)
	}
	if opts.(*canon.ConstFoldOptions).MaxBytes != 1024 || p.Options.(*canon.ConstFoldOptions).MaxBytes != 64<<20 {
		t.Errorf("max_bytes: %+v (defaults %+v)", opts, p.Options)
	}
}

func TestCanonicalizeNoFixpoint(t *testing.T) {
	g := parse(t, `graph "g" opset=17
input %0 : f32[2,3] "x"
%1 = Shape %0 : i64[2]
%2 = Reshape %0, %1 : f32[2,3] "y"
output "y" = %2
`)
	opts := canon.DefaultCanonicalize
	opts.MaxIters = 1
	if _, err := canon.Canonicalize(g, opts); err == nil || !strings.Contains(err.Error(), "no fixpoint after 1 rounds") {
		t.Errorf("err = %v", err)
	}
}
