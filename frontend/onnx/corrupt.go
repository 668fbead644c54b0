package onnx

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// proto.Unmarshal says only that a file is corrupt, not where. A user with
// a 300 MB model that a download or a disk cut short wants to know whether
// the damage is in the weights, in one node, or at the very end, so when
// Unmarshal fails locateCorruption walks the wire format against the schema
// and names the first field it cannot read: its byte offset, its path from
// ModelProto (graph.node[17].attribute[0]) and, where the enclosing message
// has a name field that was readable, that name.

// corruption is where and why a protobuf cannot be read.
type corruption struct {
	off  int    // byte offset in the file
	path string // field path from the root message, "" for the root
	why  string
}

func (c *corruption) String() string {
	if c.path == "" {
		return fmt.Sprintf("at byte %d: %s", c.off, c.why)
	}
	return fmt.Sprintf("at byte %d, in %s: %s", c.off, c.path, c.why)
}

// locateCorruption returns the first unreadable field of b read as a md
// message, or nil when the walk finds nothing wrong.
func locateCorruption(b []byte, md protoreflect.MessageDescriptor) *corruption {
	return walkMessage(b, md, 0, "", 0)
}

// maxWalkDepth bounds recursion; protobuf's own limit is 10000, and ONNX
// nests (graph, node, attribute, subgraph) far less than this.
const maxWalkDepth = 100

func walkMessage(b []byte, md protoreflect.MessageDescriptor, base int, path string, depth int) *corruption {
	if depth > maxWalkDepth {
		return &corruption{base, path, "messages nested too deeply"}
	}
	counts := map[protowire.Number]int{}
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return &corruption{base + off, path, "bad field header: " + describeWireErr(n)}
		}
		if num > protowire.MaxValidNumber {
			// ConsumeTag reads any 32-bit number; the decoder does not.
			return &corruption{base + off, path, fmt.Sprintf("bad field header: field number %d is out of range", num)}
		}
		fd := md.Fields().ByNumber(num)
		fpath := path
		if fd != nil {
			fpath = joinPath(path, string(fd.Name()))
			if fd.IsList() && !(typ == protowire.BytesType && isScalar(fd.Kind())) {
				fpath += fmt.Sprintf("[%d]", counts[num])
				counts[num]++
			}
		}
		m := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if m < 0 {
			why := describeWireErr(m)
			if typ == protowire.BytesType {
				if l, k := protowire.ConsumeVarint(b[off+n:]); k > 0 && l > uint64(len(b)-off-n-k) {
					// A cut file ends inside a message: descend into what
					// is left of it to name the innermost field cut.
					rest := b[off+n+k:]
					if fd != nil && fd.Kind() == protoreflect.MessageKind {
						if c := walkBytesField(rest, fd, base+off+n+k, fpath, depth); c != nil {
							return c
						}
					}
					why = fmt.Sprintf("its length is %d bytes but only %d follow (truncated file or wrong length)", l, len(rest))
				}
			}
			if fd == nil {
				why = fmt.Sprintf("field %d: %s", num, why)
			}
			return &corruption{base + off, fpath, why}
		}
		// A known field read with its own wire type is checked inside;
		// anything else is an unknown field, which the decoder drops.
		if fd != nil && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[off+n:])
			vbase := base + off + n + m - len(v)
			if c := walkBytesField(v, fd, vbase, fpath, depth); c != nil {
				return c
			}
		}
		off += n + m
	}
	return nil
}

// walkBytesField checks a length-delimited value of field fd.
func walkBytesField(v []byte, fd protoreflect.FieldDescriptor, base int, path string, depth int) *corruption {
	switch k := fd.Kind(); {
	case k == protoreflect.MessageKind || k == protoreflect.GroupKind:
		c := walkMessage(v, fd.Message(), base, path, depth+1)
		// Name a damaged list element when it has a readable name, so
		// graph.node[17] reads graph.node[17] "blocks.3/attn/MatMul" (MatMul).
		if c != nil && fd.IsList() && strings.HasPrefix(c.path, path) {
			if name := readableName(v, fd.Message()); name != "" {
				c.path = path + " " + name + c.path[len(path):]
			}
		}
		return c
	case k == protoreflect.StringKind:
		if !utf8.Valid(v) {
			return &corruption{base + firstInvalidUTF8(v), path, "string is not valid UTF-8"}
		}
	case fd.IsList() && isScalar(k):
		return walkPacked(v, k, base, path)
	}
	return nil
}

// walkPacked checks a packed repeated scalar.
func walkPacked(v []byte, k protoreflect.Kind, base int, path string) *corruption {
	for off := 0; off < len(v); {
		var n int
		switch k {
		case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
			_, n = protowire.ConsumeFixed32(v[off:])
		case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
			_, n = protowire.ConsumeFixed64(v[off:])
		default:
			_, n = protowire.ConsumeVarint(v[off:])
		}
		if n < 0 {
			return &corruption{base + off, path, "packed values: " + describeWireErr(n)}
		}
		off += n
	}
	return nil
}

// readableName returns `"name"`, or `"name" (OpType)` for a node, from the
// fields of md's wire bytes v that read cleanly before any damage.
func readableName(v []byte, md protoreflect.MessageDescriptor) string {
	nameFd := md.Fields().ByName("name")
	if nameFd == nil || nameFd.Kind() != protoreflect.StringKind {
		return ""
	}
	opFd := md.Fields().ByName("op_type")
	var name, op string
	for off := 0; off < len(v); {
		num, typ, n := protowire.ConsumeTag(v[off:])
		if n < 0 {
			break
		}
		m := protowire.ConsumeFieldValue(num, typ, v[off+n:])
		if m < 0 {
			break
		}
		if typ == protowire.BytesType {
			s, _ := protowire.ConsumeBytes(v[off+n:])
			if utf8.Valid(s) && len(s) <= 200 {
				switch {
				case num == nameFd.Number():
					name = string(s)
				case opFd != nil && num == opFd.Number():
					op = string(s)
				}
			}
		}
		off += n + m
	}
	switch {
	case name == "" && op == "":
		return ""
	case op == "":
		return fmt.Sprintf("%q", name)
	default:
		return fmt.Sprintf("%q (%s)", name, op)
	}
}

// isScalar reports whether a repeated field of kind k may be packed: then
// one wire field holds many elements, and an index would mislead.
func isScalar(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.MessageKind, protoreflect.GroupKind, protoreflect.StringKind, protoreflect.BytesKind:
		return false
	}
	return true
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// describeWireErr words protowire's parse errors for a user: most of them
// mean the file ends early or a length is wrong, or bytes were damaged.
func describeWireErr(n int) string {
	switch s := shortProtoErr(protowire.ParseError(n)); s {
	case "unexpected EOF":
		return "the data ends inside it (truncated file or wrong length)"
	case "cannot parse reserved wire type":
		return "a field header has an invalid wire type (damaged bytes)"
	case "mismatching end group marker":
		return "an unmatched group marker (damaged bytes)"
	case "invalid field number":
		return "field number 0 is invalid (damaged bytes)"
	default:
		return s
	}
}
