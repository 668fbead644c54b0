#!/usr/bin/python3
"""Generate tiny.onnx, the fixture decoded by onnxpb_test.go.

The fixture is produced by the upstream onnx Python package (not by our Go
code), so decoding it checks our schema against what real ONNX writers emit.
It is committed; rerun this only when the test expectations change:

    /usr/bin/python3 internal/onnxpb/testdata/make_tiny.py

Graph (a ViT-style patch embedding, opset 17):

    X[batch,3,4,4] --Conv(W, B; kernel_shape=[2,2], strides=[2,2])--> P
    P[batch,2,2,2] --Transpose(perm=[0,2,3,1])----------------------> Y

W is stored in raw_data and B in float_data, so both payload encodings are
covered; X has the symbolic dim "batch".
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))


def build() -> onnx.ModelProto:
    # Values are simple and exact in float32 so the Go test can compare ==.
    w = (np.arange(24, dtype=np.float32) * 0.5 - 3.0).reshape(2, 3, 2, 2)
    w_init = helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.tobytes(), raw=True)
    b_init = helper.make_tensor("B", TensorProto.FLOAT, [2], [0.25, -1.5], raw=False)

    conv = helper.make_node(
        "Conv", ["X", "W", "B"], ["P"], name="patch_embed",
        kernel_shape=[2, 2], strides=[2, 2],
    )
    transpose = helper.make_node("Transpose", ["P"], ["Y"], name="to_nhwc", perm=[0, 2, 3, 1])

    graph = helper.make_graph(
        [conv, transpose],
        "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 3, 4, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 2, 2, 2])],
        initializer=[w_init, b_init],
    )
    model = helper.make_model(
        graph,
        producer_name="pqvc-testdata",
        opset_imports=[helper.make_opsetid("", 17)],
    )
    # Pin IR 8 explicitly so the file does not change with the onnx version.
    model.ir_version = 8
    return model


def main() -> None:
    model = build()
    # Fail here rather than in the Go test if the fixture itself is invalid.
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.initializer[0].HasField("raw_data")
    assert len(model.graph.initializer[1].float_data) == 2
    onnx.save(model, os.path.join(HERE, "tiny.onnx"))


if __name__ == "__main__":
    main()
