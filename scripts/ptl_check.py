#!/usr/bin/env python3
"""Load a .ptl written by `pqvc ... emit ptl` in PyTorch and run, inspect,
evaluate or time it. The Go tests in backend/ptl drive this script; it is
also handy by hand. Needs torch (Debian's 1.13: /usr/bin/python3).

  ptl_check.py run   MODEL.ptl --input in.npz --output out.npz [--loader lite,jit]
  ptl_check.py info  MODEL.ptl              # JSON: bytecode version, stored tensor dtypes and bytes
  ptl_check.py eval  MODEL.ptl --data eval.npz [--batch N]   # JSON: top-1 accuracy
  ptl_check.py bench MODEL.ptl [--runs 50] [--threads 1]     # JSON: median Lite latency (ms)

run feeds the input npz's arrays, in their stored order, as the model's
positional inputs and writes each loader's outputs as LOADER_out0, ... .
"""
import fastblas  # noqa: F401  (re-execs with OpenBLAS when installed)
import argparse
import io
import json
import pickle
import statistics
import sys
import time
import zipfile

fastblas.ensure_openblas()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.jit.mobile import _load_for_lite_interpreter  # noqa: E402


def load(path, loader):
    if loader == "lite":
        return _load_for_lite_interpreter(path)
    if loader == "jit":
        return torch.jit.load(path)
    raise SystemExit(f"unknown loader {loader!r} (want lite or jit)")


def as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def cmd_run(a):
    with np.load(a.input) as d:
        xs = [torch.from_numpy(np.ascontiguousarray(d[k])) for k in d.files]
    res = {}
    for loader in a.loader.split(","):
        m = load(a.model, loader)
        with torch.no_grad():
            outs = as_list(m(*xs))
        res.update({f"{loader}_out{i}": o.numpy() for i, o in enumerate(outs)})
    np.savez(a.output, **res)


class _Packed:
    """A TorchBind object (packed weights); BUILD hands it its state."""

    def __setstate__(self, state):
        self.state = state


class _ConstantsReader(pickle.Unpickler):
    """Reads constants.pkl without torch: tensors become dicts."""

    def persistent_load(self, pid):
        return pid  # ('storage', storage class name, key, device, numel)

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_qtensor"):
            return lambda storage, offset, shape, *rest: {"storage": storage[1], "shape": list(shape), "numel": storage[4]}
        if module == "torch" and (name.endswith("Storage") or name.endswith("_affine")):
            return name
        if module == "collections" and name == "OrderedDict":
            return dict
        if module.startswith("__torch__.torch.classes."):
            return _Packed
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")


def _tensors(consts):
    for c in consts:
        if isinstance(c, dict):
            yield c
        elif isinstance(c, _Packed):
            yield from _tensors(c.state)


_ELEM = {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "CharStorage": 1, "ByteStorage": 1,
         "IntStorage": 4, "LongStorage": 8, "BoolStorage": 1, "QInt8Storage": 1, "QUInt8Storage": 1}


def cmd_info(a):
    z = zipfile.ZipFile(a.model)
    names = z.namelist()
    const = [n for n in names if n.endswith("/constants.pkl")]
    tensors = list(_tensors(_ConstantsReader(io.BytesIO(z.read(const[0]))).load())) if const else []
    by = {}
    for t in tensors:
        e = by.setdefault(t["storage"], {"count": 0, "bytes": 0})
        e["count"] += 1
        e["bytes"] += t["numel"] * _ELEM.get(t["storage"], 0)
    info = {
        "has_bytecode": any(n.endswith("/bytecode.pkl") for n in names),
        "bytecode_version": torch._C._get_model_bytecode_version(a.model) if any(n.endswith("/bytecode.pkl") for n in names) else None,
        "storages": by,
        "largest": max(tensors, key=lambda t: t["numel"] * _ELEM.get(t["storage"], 0), default=None),
    }
    print(json.dumps(info))


def cmd_eval(a):
    m = load(a.model, a.loader)
    with np.load(a.data) as d:
        x, y = d["x"], d["y"]
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), a.batch):
            xb = x[i:i + a.batch]
            n = len(xb)
            if n < a.batch:  # the model's batch is static: pad the last one
                xb = np.concatenate([xb, np.zeros((a.batch - n,) + xb.shape[1:], xb.dtype)])
            logits = as_list(m(torch.from_numpy(np.ascontiguousarray(xb))))[0]
            correct += int((logits[:n].argmax(-1).numpy() == y[i:i + n]).sum())
    print(json.dumps({"accuracy": correct / len(x), "n": len(x)}))


def cmd_bench(a):
    torch.set_num_threads(a.threads)
    m = load(a.model, a.loader)
    shape = [int(s) for s in a.shape.split(",")]
    x = torch.randn(*shape)
    with torch.no_grad():
        for _ in range(3):
            m(x)
        ts = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            m(x)
            ts.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"median_ms": statistics.median(ts), "runs": a.runs, "threads": a.threads}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("model")
    r.add_argument("--input", required=True)
    r.add_argument("--output", required=True)
    r.add_argument("--loader", default="lite", help="lite, jit or both comma-separated")
    i = sub.add_parser("info")
    i.add_argument("model")
    e = sub.add_parser("eval")
    e.add_argument("model")
    e.add_argument("--data", required=True)
    e.add_argument("--batch", type=int, default=1, help="the batch the model was emitted with")
    e.add_argument("--loader", default="lite")
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("--runs", type=int, default=50)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--shape", default="1,1,28,28", help="input shape, comma-separated")
    b.add_argument("--loader", default="lite")
    for p in (r, e, b):
        p.add_argument("--engine", default="qnnpack", help="quantized engine active when the model loads (qnnpack or onednn)")
    a = ap.parse_args()
    torch.set_num_threads(getattr(a, "threads", 1))
    if getattr(a, "engine", None):
        torch.backends.quantized.engine = a.engine
    {"run": cmd_run, "info": cmd_info, "eval": cmd_eval, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
