"""Export DeiT/ViT models with seeded (random, timm-like) weights to ONNX in the
graph styles of the common exporters, for pqvc's frontend tests.

Styles (see scripts/deit_models.py for the module code):
  timm         timm VisionTransformer, q,k,v = qkv[0], qkv[1], qkv[2]
  timm_unbind  same, q,k,v = qkv.unbind(0)
  timm_narrow  timm with head_dim 48 != E/H (attention width H*48 != E)
  torchvision  torchvision.models.VisionTransformer (nn.MultiheadAttention)
  hf           Hugging Face DeiTForImageClassificationWithTeacher (cls + distillation token)

Each export PATH.onnx gets
  PATH.json        config + params + op histogram + file size
  PATH.sample.npz  x (seeded N(0,1), 2x3xHxW for dynamic batch, 1x... for static), y_torch

Examples:
  /usr/bin/python3 scripts/export_deit.py --size tiny --style timm --opset 17 --batch dynamic --out /tmp/t.onnx
  /usr/bin/python3 scripts/export_deit.py --all --outdir .cache/models --sizes tiny
"""
import argparse
import collections
import contextlib
import itertools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fastblas  # noqa: E402  (must run before torch is imported)

fastblas.ensure_openblas()

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

from deit_models import SIZES, build_model  # noqa: E402

STYLES = ["timm", "timm_unbind", "torchvision", "hf", "timm_narrow"]
OPSETS = [13, 17]
BATCHES = ["static", "dynamic"]
DEIT_TINY_PARAMS = 5_717_416  # timm deit_tiny_patch16_224


@contextlib.contextmanager
def keep_duplicate_initializers(enabled=True):
    """Stop torch.onnx (1.13) from merging initializers with *equal values*.

    With timm-style init every bias is 0 and every LayerNorm weight 1, so the
    exporter's _jit_pass_onnx_deduplicate_initializers collapses them into a
    handful of shared initializers and emits one Identity node per alias (94
    Identity nodes in DeiT-tiny). Real pretrained weights never look like that,
    and pruning a shared tensor would silently change other layers, so by
    default we skip that pass: one initializer per parameter, as in an export of
    trained weights. --dedup restores torch's behaviour."""
    if not enabled:
        yield
        return
    orig = torch._C._jit_pass_onnx_deduplicate_initializers
    torch._C._jit_pass_onnx_deduplicate_initializers = lambda graph, params, is_train: params
    try:
        yield
    finally:
        torch._C._jit_pass_onnx_deduplicate_initializers = orig


def op_histogram(model):
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items()))


def export_one(size, style, opset, batch, out, seed=0, image=224, patch=16, classes=1000,
               verify=True, dedup=False):
    """Build, export, check and describe one model. Returns the sidecar dict."""
    t0 = time.time()
    torch.manual_seed(seed)
    model, cfg = build_model(style, size=size, image=image, patch=patch, classes=classes)
    model.eval()
    if style == "timm" and size == "tiny" and (image, patch, classes) == (224, 16, 1000):
        assert cfg["params"] == DEIT_TINY_PARAMS, cfg["params"]

    n = 2 if batch == "dynamic" else 1
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n, 3, image, image, generator=gen)
    with torch.no_grad():
        y = model(x)

    dynamic_axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if batch == "dynamic" else None
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    # torchvision quirk: under no_grad, nn.MultiheadAttention in eval mode with an
    # even head count takes the fused fast path torch._native_multi_head_attention,
    # which has no ONNX symbolic in torch 1.13 (export fails). Tracing with grad
    # enabled (params require grad) makes MHA take the regular decomposed path;
    # the numbers are identical. Other styles are exported under no_grad.
    grad_ctx = torch.enable_grad() if style == "torchvision" else torch.no_grad()
    with grad_ctx, keep_duplicate_initializers(not dedup):
        torch.onnx.export(model, x, out, opset_version=opset, do_constant_folding=True,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes=dynamic_axes)
    m = onnx.load(out)
    onnx.checker.check_model(m)
    hist = op_histogram(m)

    base = out[:-len(".onnx")] if out.endswith(".onnx") else out
    np.savez(base + ".sample.npz", x=x.numpy(), y_torch=y.numpy())

    max_diff = None
    if verify:
        # Run the exported graph with the numpy reference interpreter.
        from onnx_ref import run_onnx
        got = run_onnx(m, {"input": x.numpy()})["logits"]
        max_diff = float(np.abs(got - y.numpy()).max())
        assert max_diff < 1e-3, f"ONNX vs torch mismatch {max_diff}"

    meta = dict(cfg, opset=opset, batch=batch, seed=seed, input="input", output="logits",
                input_shape=["batch" if batch == "dynamic" else 1, 3, image, image],
                sample_batch=n, onnx_bytes=os.path.getsize(out), op_histogram=hist,
                num_nodes=len(m.graph.node), num_initializers=len(m.graph.initializer),
                dedup_initializers=dedup, onnx_ref_max_abs_diff=max_diff,
                torch=torch.__version__, seconds=round(time.time() - t0, 1))
    # The sidecar is written last: --all treats an export without it as unfinished.
    with open(base + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=list(SIZES), default="tiny", help="tiny 192/3, small 384/6, base 768/12")
    ap.add_argument("--style", choices=STYLES, default="timm", help="exporter style to imitate")
    ap.add_argument("--opset", type=int, choices=OPSETS, default=17, help="ONNX opset")
    ap.add_argument("--batch", choices=BATCHES, default="dynamic",
                    help="static: batch fixed to 1; dynamic: dim 0 of input/logits named 'batch'")
    ap.add_argument("--out", help="output .onnx path (single export)")
    ap.add_argument("--seed", type=int, default=0, help="seed for weights (and seed+1 for the sample x)")
    ap.add_argument("--image", type=int, default=224, help="input resolution")
    ap.add_argument("--patch", type=int, default=16, help="patch size")
    ap.add_argument("--classes", type=int, default=1000, help="number of classes")
    ap.add_argument("--all", action="store_true",
                    help="export every size x style x opset x batch to OUTDIR/deit_{size}_{style}_op{opset}_{batch}.onnx, "
                         "skipping files that exist")
    ap.add_argument("--outdir", help="output directory for --all")
    ap.add_argument("--sizes", default="tiny,small,base", help="with --all: comma-separated subset of sizes")
    ap.add_argument("--styles", default=",".join(STYLES), help="with --all: comma-separated subset of styles")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip the numpy reference run of the ONNX graph (slow for base: ~1 min)")
    ap.add_argument("--dedup", action="store_true",
                    help="let torch merge equal-valued initializers (adds Identity aliases; off by default)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on the shared box)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.all:
        if not args.outdir:
            ap.error("--all needs --outdir")
        for size, style, opset, batch in itertools.product(
                args.sizes.split(","), args.styles.split(","), OPSETS, BATCHES):
            out = os.path.join(args.outdir, f"deit_{size}_{style}_op{opset}_{batch}.onnx")
            if os.path.exists(out) and os.path.exists(out[:-len(".onnx")] + ".json"):
                print(f"skip {out} (exists)")
                continue
            meta = export_one(size, style, opset, batch, out, args.seed, args.image, args.patch,
                              args.classes, verify=not args.no_verify, dedup=args.dedup)
            print(f"{out}: {meta['params']:,} params, {meta['num_nodes']} nodes, "
                  f"{meta['onnx_bytes'] / 1e6:.1f} MB, diff {meta['onnx_ref_max_abs_diff']}, {meta['seconds']}s",
                  flush=True)
        return
    if not args.out:
        ap.error("--out is required (or use --all --outdir DIR)")
    meta = export_one(args.size, args.style, args.opset, args.batch, args.out, args.seed, args.image,
                      args.patch, args.classes, verify=not args.no_verify, dedup=args.dedup)
    print(json.dumps({k: v for k, v in meta.items()}, indent=1))


if __name__ == "__main__":
    main()
