// Package onnxpb holds pqvc's protobuf schema of the ONNX model format
// (onnx.proto) and the Go code generated from it (onnx.pb.go).
//
// The generated code is committed so that building pqvc needs neither protoc
// nor protoc-gen-go. Only regenerating does, and then both must match what
// produced the committed file, so diffs stay limited to real schema changes:
//
//	protoc        3.21.x (Debian package protobuf-compiler)
//	protoc-gen-go v1.36.12, the same version as google.golang.org/protobuf
//	              in go.mod:
//	              go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//
// then run `go generate ./internal/onnxpb/`. protoc is invoked from the module
// root so the descriptor is registered as "internal/onnxpb/onnx.proto" rather
// than a bare "onnx.proto", which other ONNX packages might also register.
package onnxpb

//go:generate protoc -I=../.. --go_out=../.. --go_opt=paths=source_relative ../../internal/onnxpb/onnx.proto
