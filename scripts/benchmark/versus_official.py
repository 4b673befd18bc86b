#!/usr/bin/env python
"""One CPU training step of our network against the official implementation, same weights, one process.

The official code is not part of this repository: clone it yourself and name its folder::

    git clone https://github.com/JingyunLiang/SwinIR /tmp/official/SwinIR
    git clone https://github.com/XPixelGroup/HAT /tmp/official/HAT
    git clone https://github.com/nagejacob/TBSN /tmp/official/TBSN
    OMP_NUM_THREADS=2 python scripts/benchmark/versus_official.py --threads 2 --rounds 7 \\
        --official swinir-light=/tmp/official/SwinIR --official hat-s=/tmp/official/HAT \\
        --official tbsn=/tmp/official/TBSN

For each configuration the official class is imported from its file (HAT's imports three names from
BasicSR, which is not installed: they are provided here), our class is built with the same arguments,
the official weights are loaded into ours strictly, and the outputs are compared. Then, round after round
and in a fixed order, each contender runs one training step (``net(x).abs().mean().backward()``, fp32,
train mode, no drop-path so that both sides compute the same function), timed alone. Reported: the median
time of each contender and the median over rounds of the per-round ratio official / ours (interleaving
makes other load on the machine slow every contender alike). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: name -> (official file inside its repository, official class, our registered type, kwargs, batch, size, scale)
CONFIGS: dict[str, tuple[str, str, str, dict[str, Any], int, int, float]] = {
    "swinir-light": ("models/network_swinir.py", "SwinIR", "SwinIR", dict(
        upscale=2, in_chans=3, img_size=64, window_size=8, img_range=1.0, depths=[6, 6, 6, 6], embed_dim=60,
        num_heads=[6, 6, 6, 6], mlp_ratio=2, upsampler="pixelshuffledirect", resi_connection="1conv",
        drop_path_rate=0.0), 4, 64, 1.0),
    "hat-s": ("hat/archs/hat_arch.py", "HAT", "HAT", dict(
        upscale=2, in_chans=3, img_size=64, window_size=16, compress_ratio=24, squeeze_factor=24, conv_scale=0.01,
        overlap_ratio=0.5, img_range=1.0, depths=[6] * 6, embed_dim=144, num_heads=[6] * 6, mlp_ratio=2,
        upsampler="pixelshuffle", resi_connection="1conv", drop_path_rate=0.0), 2, 48, 1.0),
    "tbsn": ("network/tbsn.py", "TBSN", "TBSN", {}, 2, 64, 255.0),
}


def _provide_basicsr_names() -> None:
    """HAT's file imports ``ARCH_REGISTRY``, ``to_2tuple`` and ``trunc_normal_`` from BasicSR."""
    from timm.layers import to_2tuple

    registry = types.SimpleNamespace(register=lambda *a, **k: (lambda cls: cls))
    modules = {
        "basicsr": types.ModuleType("basicsr"), "basicsr.utils": types.ModuleType("basicsr.utils"),
        "basicsr.utils.registry": types.ModuleType("basicsr.utils.registry"),
        "basicsr.archs": types.ModuleType("basicsr.archs"),
        "basicsr.archs.arch_util": types.ModuleType("basicsr.archs.arch_util"),
    }
    modules["basicsr.utils.registry"].ARCH_REGISTRY = registry
    modules["basicsr.archs.arch_util"].to_2tuple = to_2tuple
    modules["basicsr.archs.arch_util"].trunc_normal_ = nn.init.trunc_normal_
    for name, module in modules.items():
        sys.modules.setdefault(name, module)


def official_class(repo: Path, file: str, cls: str) -> type:
    """Import ``cls`` from ``repo/file`` with the repository on ``sys.path`` (TBSN imports ``network.*``)."""
    _provide_basicsr_names()
    sys.path.insert(0, str(repo))
    spec = importlib.util.spec_from_file_location(f"official_{cls.lower()}", repo / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, cls)


def contenders(name: str, repo: Path) -> dict[str, nn.Module]:
    """The official network and ours (reference and default attention backend) with the same weights."""
    from restoration.archs.build import build_network
    from restoration.utils.weights import load_weights

    file, cls, ours, kwargs, *_ = CONFIGS[name]
    torch.manual_seed(0)
    official = official_class(repo, file, cls)(**kwargs)
    nets = {"official": official}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "official.pth"
        torch.save(official.state_dict(), path)
        for backend in ("reference", None):
            net = build_network({"type": ours, **kwargs, "attn_backend": backend})
            load_weights(net, str(path))
            nets["ours reference" if backend else "ours default"] = net
    return nets


def _step(net: nn.Module, x: torch.Tensor) -> float:
    net.zero_grad(set_to_none=True)
    start = time.perf_counter()
    net(x).abs().mean().backward()
    return time.perf_counter() - start


def compare(name: str, repo: Path, rounds: int, warmup: int) -> dict[str, Any]:
    """Outputs agree, then ``rounds`` interleaved timed steps; returns the row."""
    nets = contenders(name, repo)
    *_, batch, size, value = CONFIGS[name]
    torch.manual_seed(1)
    x = torch.rand(batch, 3, size, size) * value
    for net in nets.values():
        net.train()
    with torch.no_grad():
        ref = nets["official"](x)
        diffs = {k: float((net(x) - ref).abs().max()) for k, net in nets.items() if k != "official"}
    times: dict[str, list[float]] = {k: [] for k in nets}
    for r in range(warmup + rounds):
        for k, net in nets.items():
            t = _step(net, x)
            if r >= warmup:
                times[k].append(t)
    ratios = {k: statistics.median(o / t for o, t in zip(times["official"], times[k])) for k in nets if k != "official"}
    return {"name": name, "shape": f"b{batch} {size}x{size}", "max_abs_diff": diffs,
            "median_s": {k: statistics.median(v) for k, v in times.items()}, "official_over": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", action="append", default=[], metavar="NAME=REPO",
                        help=f"a configuration ({', '.join(CONFIGS)}) and the folder of its official repository")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds after {args.warmup}")
    print("| network | shape | official | ours reference | ours default | official / default | max |diff| |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for item in args.official:
        name, _, repo = item.partition("=")
        if name not in CONFIGS:
            parser.error(f"unknown configuration {name!r}; one of {', '.join(CONFIGS)}")
        row = compare(name, Path(repo), args.rounds, args.warmup)
        t = row["median_s"]
        print(f"| {name} | {row['shape']} | {t['official'] * 1e3:,.0f} ms | {t['ours reference'] * 1e3:,.0f} ms | "
              f"{t['ours default'] * 1e3:,.0f} ms | {row['official_over']['ours default']:.2f}x | "
              f"{max(row['max_abs_diff'].values()):.1e} |", flush=True)


if __name__ == "__main__":
    main()
