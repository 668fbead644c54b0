// Package ir is pqvc's typed SSA intermediate representation.
//
// A Graph is a set of Values. Every Value is defined once, by one op, and has
// one Type (element dtype plus shape). Arguments are other Values, so def-use
// chains are explicit and kept exact by SetArg, ReplaceUses and Remove.
// Weights are Values too (op Const) with their data in a Tensor that is shared,
// never copied, between passes. The op table (ops_*.go) gives every op its
// arity, attribute schema and type inference; Verify checks a whole graph
// against it; Print and Parse give a stable textual form for dumps and golden
// tests.
//
// Op semantics follow ONNX at opset 17 (inputs where ONNX 17 has inputs), so
// the frontend and the ONNX backend translate little, and everyone reading a
// dump already knows the ops.
package ir

import "fmt"

// DType is a tensor element type.
type DType uint8

// The element types pqvc understands. The set is deliberately small: it is what
// the frontends produce and the quantizers need.
const (
	Invalid DType = iota
	F32
	F16
	I8
	U8
	I32
	I64
	Bool
	F64
)

var dtypeNames = [...]string{Invalid: "invalid", F32: "f32", F16: "f16", I8: "i8", U8: "u8", I32: "i32", I64: "i64", Bool: "bool", F64: "f64"}

var dtypeSizes = [...]int{Invalid: 0, F32: 4, F16: 2, I8: 1, U8: 1, I32: 4, I64: 8, Bool: 1, F64: 8}

// String returns the short name used in the textual IR ("f32", "i64", ...).
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	if int(d) < len(dtypeSizes) {
		return dtypeSizes[d]
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == F64 }

// IsInt reports whether d is an integer type (not bool).
func (d DType) IsInt() bool { return d == I8 || d == U8 || d == I32 || d == I64 }

// ParseDType is the inverse of DType.String.
func ParseDType(s string) (DType, bool) {
	for i, n := range dtypeNames {
		if n == s && i != int(Invalid) {
			return DType(i), true
		}
	}
	return Invalid, false
}
