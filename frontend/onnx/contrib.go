package onnx

import "github.com/pqvc/pqvc/ir"

// contribConverters convert com.microsoft nodes (op type → converter), so
// that a model pqvc fused for ONNX Runtime reads back. They are direct: the
// IR op "com.microsoft.<Op>" has the contrib op's semantics. node() consults
// this map for a node in domain ir.MSDomain (a hook in node.go: today it
// rejects every non-default domain).
var contribConverters = map[string]convertFunc{}

func init() {
	for _, op := range ir.ContribOps {
		_, name := ir.SplitDomain(op)
		contribConverters[name] = direct(op)
	}
}

// contribConverter returns the converter for a node of domain, or nil when
// the domain or op is not one pqvc reads.
func contribConverter(domain, opType string) convertFunc {
	if domain != ir.MSDomain {
		return nil
	}
	return contribConverters[opType]
}
