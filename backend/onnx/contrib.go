package onnx

import (
	"github.com/pqvc/pqvc/internal/onnxpb"
	"github.com/pqvc/pqvc/ir"
)

// Contrib (com.microsoft) ops. The IR spells them "com.microsoft.<Op>" (see
// ir.SplitDomain); ONNX wants op type <Op> in domain com.microsoft and an
// opset import for that domain. They exist in every default-domain opset
// the backend writes, hence MinOpset.

// msOpset is the com.microsoft opset version ONNX Runtime's contrib ops
// have been at since they were introduced.
const msOpset = 1

func init() {
	for _, op := range ir.ContribOps {
		opSince[op] = MinOpset
	}
}

// splitDomains moves every node whose op type carries a domain prefix into
// that domain and imports the domains used. It is a no-op on a model of
// default-domain ops only, so calling it from model() changes nothing for
// models without contrib ops.
func splitDomains(m *onnxpb.ModelProto) {
	used := map[string]bool{}
	for _, n := range m.GetGraph().GetNode() {
		if d, op := ir.SplitDomain(n.GetOpType()); d != "" {
			n.Domain, n.OpType = d, op
			used[d] = true
		}
	}
	if used[ir.MSDomain] {
		for _, o := range m.OpsetImport {
			if o.GetDomain() == ir.MSDomain {
				return
			}
		}
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: ir.MSDomain, Version: msOpset})
	}
}
