#!/usr/bin/python3
"""Writes add.onnx, the tiny model internal/ort's tests run through ONNX Runtime.

    /usr/bin/python3 internal/ort/testdata/gen_add.py

Inputs:  a, b: float32[N,3]   q: int8[3]
Outputs: sum    = a + b                 float32[N,3]
         half   = Cast(sum, float16)    float16[N,3]
         argmax = ArgMax(sum, axis=1)   int64[N]
         pos    = sum > 0               bool[N,3]
         q32    = Cast(q, int32)        int32[3]
"""
import os
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))

nodes = [
    helper.make_node("Add", ["a", "b"], ["sum"]),
    helper.make_node("Cast", ["sum"], ["half"], to=TensorProto.FLOAT16),
    helper.make_node("ArgMax", ["sum"], ["argmax"], axis=1, keepdims=0),
    helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])),
    helper.make_node("Greater", ["sum", "zero"], ["pos"]),
    helper.make_node("Cast", ["q"], ["q32"], to=TensorProto.INT32),
]
graph = helper.make_graph(
    nodes,
    "pqvc_ort_add",
    inputs=[
        helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3]),
        helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 3]),
        helper.make_tensor_value_info("q", TensorProto.INT8, [3]),
    ],
    outputs=[
        helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 3]),
        helper.make_tensor_value_info("half", TensorProto.FLOAT16, ["N", 3]),
        helper.make_tensor_value_info("argmax", TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info("pos", TensorProto.BOOL, ["N", 3]),
        helper.make_tensor_value_info("q32", TensorProto.INT32, [3]),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pqvc-gen_add")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(HERE, "add.onnx"))
