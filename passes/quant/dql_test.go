package quant_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pqvc/pqvc/backend/onnx"
	"github.com/pqvc/pqvc/data"
	"github.com/pqvc/pqvc/internal/ort"
	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/passes"
)

// fuseDQL rewrites each run-time activation quantization that quantize
// emits (QuantizeLinear whose scale comes from Max and zero point from Cast)
// into one ONNX DynamicQuantizeLinear node, and drops the dead subgraph.
const fuseDQL = `
import sys, onnx
from onnx import helper
m = onnx.load(sys.argv[1]); g = m.graph
prod = {o: n for n in g.node for o in n.output}
new = []
for n in g.node:
    s, z = (prod.get(n.input[1]), prod.get(n.input[2])) if n.op_type == "QuantizeLinear" and len(n.input) == 3 else (None, None)
    if s is not None and z is not None and s.op_type == "Max" and z.op_type == "Cast":
        new.append(helper.make_node("DynamicQuantizeLinear", [n.input[0]], [n.output[0], n.input[1], n.input[2]]))
    else:
        new.append(n)
dql = {o for n in new if n.op_type == "DynamicQuantizeLinear" for o in n.output[1:]}
new = [n for n in new if n.op_type == "DynamicQuantizeLinear" or not set(n.output) & dql]
while True:
    used = {i for n in new for i in n.input} | {o.name for o in g.output}
    keep = [n for n in new if any(o in used for o in n.output)]
    if len(keep) == len(new): break
    new = keep
del g.node[:]; g.node.extend(new)
onnx.checker.check_model(m); onnx.save(m, sys.argv[2])
print(sum(n.op_type == "DynamicQuantizeLinear" for n in new))
`

// TestDynamicMatchesDQL checks that the DynamicQuantizeLinear function body
// quantize emits computes exactly what ONNX Runtime's own
// DynamicQuantizeLinear kernel does: the p7 model quantized dynamically,
// and the same model with each body replaced by the op, give bit-identical
// logits in ORT.
func TestDynamicMatchesDQL(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import onnx").Run(); err != nil {
		t.Skip("needs /usr/bin/python3 with onnx")
	}
	g, _, ev := loadP7(t)
	pl, err := parsePipeline("quantize int8 mode=dynamic")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Run(g, pl, passes.Config{Verify: true}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "ours.onnx"), filepath.Join(dir, "dql.onnx")
	if err := onnx.Write(ours, g, onnx.Options{}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/usr/bin/python3", "-c", fuseDQL, ours, theirs).CombinedOutput()
	if err != nil {
		t.Fatalf("fusing DynamicQuantizeLinear: %v\n%s", err, out)
	}
	t.Logf("%s DynamicQuantizeLinear nodes", out[:len(out)-1])
	r := ort.NewTestRunner(t)
	x, _ := data.FromTensor(ev.Batch(0, 200))
	in := map[string]*tensorio.Array{g.Inputs[0].Name: x}
	a, err := r.Run(ours, in, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Run(theirs, in, 1)
	if err != nil {
		t.Fatal(err)
	}
	name := g.Outputs[0].Name
	for i, v := range a[name].Data.([]float32) {
		if w := b[name].Data.([]float32)[i]; v != w {
			t.Fatalf("logit %d: function body %v, DynamicQuantizeLinear %v", i, v, w)
		}
	}
}
