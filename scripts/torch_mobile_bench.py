#!/usr/bin/env python3
"""PyTorch's own mobile pipeline on a DeiT, as the PQV-Mobile paper ran it:
quantize_dynamic on Linear layers, TorchScript, optimize_for_mobile, the Lite
interpreter. Prints one JSON object with median latencies (ms) and file
sizes, so bench/quant can put them next to ONNX Runtime's in the same run.

  /usr/bin/python3 scripts/torch_mobile_bench.py --size tiny --threads 1 --runs 20
"""
import fastblas  # noqa: F401  (re-execs with OpenBLAS when installed)
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

fastblas.ensure_openblas()

import torch  # noqa: E402
from torch.jit.mobile import _load_for_lite_interpreter  # noqa: E402
from torch.utils.mobile_optimizer import optimize_for_mobile  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deit_models import build_model  # noqa: E402


def lite(model, x, path):
    traced = torch.jit.trace(model, x)
    opt = optimize_for_mobile(traced)
    opt._save_for_lite_interpreter(path)
    return _load_for_lite_interpreter(path)


def bench(m, x, runs):
    with torch.no_grad():
        for _ in range(3):
            m(x)
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            m(x)
            ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="tiny", help="tiny, small or base")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--runs", type=int, default=20, help="timed runs (median reported)")
    ap.add_argument("--engine", default="onednn", help="quantized engine: onednn or qnnpack")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, _ = build_model("timm", size=args.size)
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    out = {"size": args.size, "threads": args.threads, "engine": args.engine}
    with tempfile.TemporaryDirectory() as d:
        with torch.no_grad():
            fp = lite(model, x, os.path.join(d, "fp32.ptl"))
            out["fp32_ms"] = bench(fp, x, args.runs)
            out["fp32_bytes"] = os.path.getsize(os.path.join(d, "fp32.ptl"))
            torch.backends.quantized.engine = args.engine
            q = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            qm = lite(q, x, os.path.join(d, "int8.ptl"))
            out["int8_ms"] = bench(qm, x, args.runs)
            out["int8_bytes"] = os.path.getsize(os.path.join(d, "int8.ptl"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
