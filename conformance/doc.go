// Package conformance holds the tests that hold pqvc to outside truth: ONNX
// Runtime runs the models pqvc reads and the models it writes, and pqvc's
// own runtime must agree with it on every exporter style, opset and batch
// mode, and on the shipped model.
package conformance
