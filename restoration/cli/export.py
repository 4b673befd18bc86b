"""``restoration-export``: a trained network as an ONNX model that takes any image size, or its weights as
``.safetensors``.

    python -m restoration.export --weights 001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth -o swinir_x2.onnx
    python -m restoration.export --weights net_g_latest.pth \\
        -opt options/train/HAT/train_HAT_SRx4_finetune_from_SRx2.yml -o hat.onnx
    python -m restoration.export --weights HAT_SRx4.pth --format safetensors --param-key params_ema -o hat.safetensors
    python -m restoration.export --weights net_g_latest.pth -opt train.yml --dtype fp16 --opset 20 --slim -o net_fp16.onnx

User guide: ``docs/export.md`` (every flag, which networks export, the measured parity).

The network comes from ``-opt`` (its ``network_g``), ``--arch NAME --arch-opt JSON``, the options saved beside a
training run's weights, or the checkpoint's own keys, exactly as for ``restoration-infer``
(:mod:`restoration.deploy.network`); the weights are loaded strictly. The export itself:
:mod:`restoration.deploy.onnx_export`; the onnxruntime comparison that follows it (``--no-check`` skips it):
:mod:`restoration.deploy.onnx_check`. Exit codes: 0 written (and checked), 1 a one-line error, 2 bad arguments
(argparse).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Sequence

from restoration.archs.spec import arch_spec
from restoration.deploy.network import load_network, parse_arch_opt
from restoration.deploy.onnx_check import check_graph_dtype, check_onnx
from restoration.deploy.onnx_export import (BF16_MIN_OPSET, DTYPES, DYNAMO_OPSET, EXPORTERS, TORCHSCRIPT_OPSET,
                                            export_onnx, min_side, refuse_unexportable, require_dynamo_exporter,
                                            require_onnxslim, resolve_opset, written_opset)
from restoration.deploy.safetensors_export import export_safetensors
from restoration.errors import RestorationError, user_error_message
from restoration.utils.weights import entry_note

__all__ = ["main", "build_arg_parser"]


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="restoration-export",
                                description="Export a network as ONNX (any input size) or its weights as safetensors.")
    p.add_argument("--weights", required=True, help="checkpoint (.pth/.pt/.ckpt/.safetensors)")
    p.add_argument("-o", "--output", required=True, help="output file (.onnx or .safetensors)")
    p.add_argument("--format", choices=("onnx", "safetensors"), default=None,
                   help="default: from the output's extension")
    p.add_argument("--param-key", default=None, help="entry of the checkpoint: params_ema (default if present), params")
    p.add_argument("--arch", default=None, help="architecture name (skips detection of the family)")
    p.add_argument("--arch-opt", default=None, metavar="JSON", help="constructor kwargs overriding the detected ones")
    p.add_argument("-opt", "--opt", default=None, help="option YAML with network_g (or a bare network dict)")
    p.add_argument("--exporter", choices=EXPORTERS, default="dynamo", help="ONNX exporter (default dynamo)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="fp32",
                   help="dtype of the ONNX model's weights, input and output (bf16: dynamo, opset >= 22)")
    p.add_argument("--opset", type=int, default=None,
                   help=f"ONNX opset (default: dynamo {DYNAMO_OPSET}, {BF16_MIN_OPSET} for bf16; torchscript "
                        f"{TORCHSCRIPT_OPSET})")
    p.add_argument("--slim", action="store_true", help="simplify the model with onnxslim (pip install onnxslim)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch comparison")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    try:
        return _run(args)
    except RestorationError as exc:
        print(f"{type(exc).__name__}: {user_error_message(exc)}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    fmt = args.format or ("safetensors" if args.output.endswith(".safetensors") else "onnx")
    arch_opt = parse_arch_opt(args.arch_opt) or None  # the user's arguments first
    if fmt == "onnx":  # every argument problem before the (slow) network build
        resolve_opset(args.exporter, args.dtype, args.opset)
        if args.exporter == "dynamo":
            require_dynamo_exporter()
        if args.slim:
            require_onnxslim()
    # every network takes attn_backend; all backends compute the same function (tests/test_*attention*.py)
    overrides = {"attn_backend": "reference"} if fmt == "onnx" else None
    net, network_g, source = load_network(args.weights, args.arch, arch_opt, args.opt, args.param_key, overrides)
    metadata = {"restoration.network_g": json.dumps(network_g), "restoration.weights": os.path.basename(args.weights),
                "restoration.param_key": str(args.param_key or "auto")}
    print(f"network: {network_g['type']} from {source}; weights: {entry_note(args.weights, args.param_key)}")
    if fmt == "safetensors":
        export_safetensors(net, args.output, metadata)
        print(f"wrote {args.output} ({sum(v.numel() for v in net.state_dict().values()):,} values)")
        return 0
    refuse_unexportable(net)
    start = time.perf_counter()
    export_onnx(net, args.output, args.exporter, metadata, dtype=args.dtype, opset=args.opset, slim=args.slim)
    spec = arch_spec(net)
    print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s (opset {written_opset(args.output)}, "
          f"{args.dtype}{', slimmed' if args.slim else ''}): input (B, {spec.in_channels}, H, W) in [0, 1], "
          f"H, W >= {min_side(net, spec)}; output x{spec.scale} in [0, 1]")
    if args.no_check:
        return 0
    if args.dtype == "bf16":
        count = check_graph_dtype(args.output, "bf16")
        print(f"check: input, output and {count} weight tensors are bfloat16 and onnx.checker accepts the model; "
              "not run: onnxruntime's CPU provider has no bfloat16 kernels")
        return 0
    try:
        __import__("onnxruntime")
    except ImportError:
        print("onnxruntime not installed: the exported model was not checked (pip install onnxruntime)")
        return 0
    for r in check_onnx(args.output, net, dtype=args.dtype):
        if args.dtype == "fp32":
            print(f"check: input {r.shape}: max relative error vs PyTorch {r.rel_error:.1e}")
        else:
            print(f"check: input {r.shape}: max |onnx - torch| {r.abs_error:.1e} in {args.dtype}, "
                  f"{r.abs_error_fp32:.1e} vs float32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
