"""Tiny numpy interpreter for the ONNX ops our ViT exports use.

onnxruntime is not installable here and onnx 1.12 predates
onnx.reference, so this is how the scripts check that an exported graph
computes the same logits as the torch model. It is a straightforward,
unoptimised reading of the ONNX operator spec for the subset we emit;
unknown ops raise NotImplementedError (so a new op in an export is noticed).

  /usr/bin/python3 scripts/onnx_ref.py model.onnx model.onnx.sample.npz
runs the model on the sample's x and prints max |onnx - y_torch|.
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def _erf(x):
    # numpy has no erf. Numerical Recipes' erfc Chebyshev fit (|rel err| <
    # 1.2e-7), evaluated in float64: well below the float32 noise we compare at.
    x64 = x.astype(np.float64)
    z = np.abs(x64)
    t = 1.0 / (1.0 + 0.5 * z)
    ans = t * np.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    erf = 1.0 - ans
    return np.where(x64 >= 0, erf, -erf).astype(x.dtype)


def _attrs(node):
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        out[a.name] = v
    return out


def _conv(x, w, b, strides, pads, group, dil):
    # Only what patch embeddings need: 2-D, group 1, no dilation.
    assert group == 1 and all(d == 1 for d in dil)
    if any(pads):
        x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    N, C, H, W = x.shape
    M, _, kh, kw = w.shape
    sh, sw = strides
    oh, ow = (H - kh) // sh + 1, (W - kw) // sw + 1
    cols = np.empty((N, C, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
    y = np.einsum("nckluv,mckl->nmuv", cols, w, optimize=True)
    if b is not None:
        y = y + b[None, :, None, None]
    return y.astype(x.dtype)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _layernorm(x, scale, bias, axis, eps):
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps) * scale
    return y + bias if bias is not None else y


def _slice(x, starts, ends, axes, steps):
    sl = [slice(None)] * x.ndim
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for s, e, a, st in zip(starts, ends, axes, steps):
        sl[int(a)] = slice(int(max(min(s, 2**62), -2**62)), int(max(min(e, 2**62), -2**62)), int(st))
    return x[tuple(sl)]


def run_graph(graph, feeds):
    env = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    env.update(feeds)

    for node in graph.node:
        a = _attrs(node)
        ins = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            outs = [a["value"]]
        elif op == "Identity":
            outs = [ins[0]]
        elif op in ("Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
                 "Pow": np.power, "Equal": np.equal, "Less": np.less, "Greater": np.greater}[op]
            r = f(ins[0], ins[1])
            if op == "Div" and np.issubdtype(ins[0].dtype, np.integer):
                r = ins[0] // ins[1]
            outs = [r.astype(ins[0].dtype) if op not in ("Equal", "Less", "Greater") else r]
        elif op == "Sqrt":
            outs = [np.sqrt(ins[0])]
        elif op == "Erf":
            outs = [_erf(ins[0])]
        elif op == "Neg":
            outs = [-ins[0]]
        elif op == "Relu":
            outs = [np.maximum(ins[0], 0)]
        elif op == "Tanh":
            outs = [np.tanh(ins[0])]
        elif op == "MatMul":
            outs = [np.matmul(ins[0], ins[1])]
        elif op == "Gemm":
            A = ins[0].T if a.get("transA", 0) else ins[0]
            B = ins[1].T if a.get("transB", 0) else ins[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
            outs = [y.astype(ins[0].dtype)]
        elif op == "Conv":
            k = ins[1].shape[2:]
            outs = [_conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("strides", [1, 1]),
                          a.get("pads", [0, 0, 0, 0]), a.get("group", 1), a.get("dilations", [1] * len(k)))]
        elif op == "Softmax":
            outs = [_softmax(ins[0], a.get("axis", -1))]
        elif op == "LayerNormalization":
            outs = [_layernorm(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("axis", -1),
                               a.get("epsilon", 1e-5))]
        elif op == "ReduceMean":
            axes = a.get("axes")
            outs = [ins[0].mean(axis=tuple(axes) if axes is not None else None,
                                keepdims=bool(a.get("keepdims", 1)))]
        elif op == "Transpose":
            outs = [np.transpose(ins[0], a.get("perm"))]
        elif op == "Reshape":
            shape = [int(s) for s in ins[1]]
            shape = [ins[0].shape[i] if s == 0 and not a.get("allowzero", 0) else s for i, s in enumerate(shape)]
            outs = [ins[0].reshape(shape)]
        elif op == "Flatten":
            ax = a.get("axis", 1)
            outs = [ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)]
        elif op == "Shape":
            outs = [np.array(ins[0].shape, dtype=np.int64)[a.get("start", 0):a.get("end", None)]]
        elif op == "Gather":
            outs = [np.take(ins[0], ins[1].astype(np.int64), axis=a.get("axis", 0))]
        elif op == "Unsqueeze":
            axes = [int(v) for v in ins[1]] if len(ins) > 1 else a["axes"]
            y = ins[0]
            rank = y.ndim + len(axes)
            for ax in sorted(ax % rank for ax in axes):
                y = np.expand_dims(y, ax)
            outs = [y]
        elif op == "Squeeze":
            axes = [int(v) for v in ins[1]] if len(ins) > 1 and ins[1] is not None else a.get("axes")
            outs = [np.squeeze(ins[0], axis=tuple(axes) if axes is not None else None)]
        elif op == "Concat":
            outs = [np.concatenate(ins, axis=a["axis"])]
        elif op == "Split":
            ax = a.get("axis", 0)
            split = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("split")
            if split is None:
                split = [ins[0].shape[ax] // len(node.output)] * len(node.output)
            idx = np.cumsum(split)[:-1]
            outs = np.split(ins[0], idx, axis=ax)
        elif op == "Slice":
            outs = [_slice(ins[0], ins[1], ins[2], ins[3] if len(ins) > 3 else None,
                           ins[4] if len(ins) > 4 else None)]
        elif op == "Expand":
            shape = tuple(int(s) for s in ins[1])
            outs = [ins[0] * np.ones(shape, dtype=ins[0].dtype)]  # bidirectional broadcast
        elif op == "ConstantOfShape":
            v = a.get("value", np.zeros(1, np.float32))
            outs = [np.full(tuple(int(s) for s in ins[0]), v.reshape(-1)[0], dtype=v.dtype)]
        elif op == "Where":
            outs = [np.where(ins[0], ins[1], ins[2])]
        elif op == "Cast":
            outs = [ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])]
        else:
            raise NotImplementedError(f"onnx_ref: op {op} ({node.name})")
        for name, v in zip(node.output, outs):
            if isinstance(v, np.ndarray) or np.isscalar(v):
                v = np.asarray(v)
            env[name] = v
    return {o.name: env[o.name] for o in graph.output}


def run_onnx(path_or_model, feeds):
    m = onnx.load(path_or_model) if isinstance(path_or_model, str) else path_or_model
    return run_graph(m.graph, feeds)


if __name__ == "__main__":
    model_path, sample_path = sys.argv[1], sys.argv[2]
    s = np.load(sample_path)
    m = onnx.load(model_path)
    out = run_onnx(m, {m.graph.input[0].name: s["x"]})
    y = out[m.graph.output[0].name]
    print(f"max |onnx - y_torch| = {np.abs(y - s['y_torch']).max():.3e}  (|y| max {np.abs(s['y_torch']).max():.3f})")
