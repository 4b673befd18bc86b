#!/usr/bin/env python
"""One CPU training step of our network against the official implementation, same weights, one process.

The official code is not part of this repository: clone it yourself and name its folder::

    git clone https://github.com/JingyunLiang/SwinIR /tmp/official/SwinIR
    git clone https://github.com/XPixelGroup/HAT /tmp/official/HAT
    git clone https://github.com/nagejacob/TBSN /tmp/official/TBSN
    git clone https://github.com/XPixelGroup/BasicSR /tmp/official/BasicSR        # RRDBNet, Compact, EDSR, RCAN
    git clone https://github.com/zhengchen1999/DAT /tmp/official/DAT
    git clone https://github.com/hongyuanyu/SPAN /tmp/official/SPAN
    git clone https://github.com/megvii-research/NAFNet /tmp/official/NAFNet
    git clone https://github.com/swz30/Restormer /tmp/official/Restormer
    OMP_NUM_THREADS=2 python scripts/benchmark/versus_official.py --clones /tmp/official --threads 2 --rounds 7 \\
        swinir-light hat-s tbsn rrdbnet-x4 compact-x4v3 edsr-m-x2 rcan-x2 span-x4 nafnet-sidd-w32 ...

(no names: every configuration). ``--clones`` is the folder holding the clones under these names.

For each configuration the official class is imported from its file, with the loader that made the family's
parity fixture (``tests/data/*_make_fixtures.py``: only the package imports the file does not use are stubbed),
our class is built with the same arguments (the community families' released configurations are read from their
descriptors, ``restoration/archs/<family>/__init__.py``), the official weights are loaded into ours strictly, and
the outputs are compared. Then, round after round, each contender runs one training step
(``net(x).abs().mean().backward()``, fp32, train mode, no drop-path so that both sides compute the same
function), timed alone. Reported: the median time of each contender, and the medians over rounds of the
per-round ratios official / ours (default and reference) and reference / default, what our fast paths give
(interleaving makes other load on the machine slow every contender alike; the contender that starts a round
rotates, since the place in a round alone moved the ratio by up to 7% in an A/A check).

"ours reference" is our class with every fast path off, the official arithmetic (``attn_backend='reference'``,
SPAN's ``train_form='branch'``, the channel norms differentiated by autograd, ``F.conv2d``'s depthwise backward):
where our network has no fast path it is a second copy of the default, and its ratio to the default is this
machine's noise. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from restoration.archs import register_archs
from restoration.archs.build import build_network
from restoration.archs.detect import published_configs
from restoration.layers.channel_norm_functions import CHANNEL_NORM_SWITCH
from restoration.layers.depthwise_conv import DEPTHWISE_SWITCH
from restoration.registry import ARCH_REGISTRY
from restoration.schema import keyword_parameters
from restoration.utils.weights import load_weights

_FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data"


@dataclasses.dataclass(frozen=True)
class Contest:
    """One row: how to get the official class from its repository, our type and the shared constructor kwargs."""

    load: Callable[[Path], type]  # repository folder -> the official class
    ours: str                     # our registered type
    kwargs: dict[str, Any] | str  # the constructor kwargs, or the name of a released configuration of ours
    batch: int
    size: int
    value: float = 1.0            # input range: [0, value]


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


def _forget_basicsr() -> None:
    """Each official repository has its own ``basicsr`` package: forget the previous one's modules."""
    for name in [n for n in sys.modules if n == "basicsr" or n.startswith("basicsr.")]:
        del sys.modules[name]


def from_file(repo: str, file: str, cls: str) -> Callable[[Path], type]:
    """Import ``cls`` from ``<clones>/repo/file`` with the repository on ``sys.path`` (TBSN imports ``network.*``)."""
    def load(clones: Path) -> type:
        _forget_basicsr()
        _provide_basicsr_names()
        sys.path.insert(0, str(clones / repo))
        spec = importlib.util.spec_from_file_location(f"official_{cls.lower()}", clones / repo / file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, cls)
    return load


def from_fixture_loader(script: str, cls: str) -> Callable[[Path], type]:
    """The official class as ``tests/data/<script>_make_fixtures.py`` loads it for the family's parity fixtures."""
    def load(clones: Path) -> type:
        _forget_basicsr()
        spec = importlib.util.spec_from_file_location(f"fixture_{script}", _FIXTURES / f"{script}_make_fixtures.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if script == "realesrgan":
            classes = dict(zip(("RRDBNet", "SRVGGNetCompact"), module._load_official(str(clones / "BasicSR"))))
        elif script == "edsr_rcan":
            classes = module._official_classes(str(clones / "BasicSR"))
        elif script == "span_nafnet":
            classes = module._load_official(str(clones / "SPAN"), str(clones / "NAFNet"))
        else:
            classes = module._load_official(str(clones / "Restormer"), str(clones / "DAT"))
        return classes[cls]
    return load


CONFIGS: dict[str, Contest] = {
    "swinir-light": Contest(from_file("SwinIR", "models/network_swinir.py", "SwinIR"), "SwinIR", dict(
        upscale=2, in_chans=3, img_size=64, window_size=8, img_range=1.0, depths=[6, 6, 6, 6], embed_dim=60,
        num_heads=[6, 6, 6, 6], mlp_ratio=2, upsampler="pixelshuffledirect", resi_connection="1conv",
        drop_path_rate=0.0), 4, 64),
    "hat-s": Contest(from_file("HAT", "hat/archs/hat_arch.py", "HAT"), "HAT", dict(
        upscale=2, in_chans=3, img_size=64, window_size=16, compress_ratio=24, squeeze_factor=24, conv_scale=0.01,
        overlap_ratio=0.5, img_range=1.0, depths=[6] * 6, embed_dim=144, num_heads=[6] * 6, mlp_ratio=2,
        upsampler="pixelshuffle", resi_connection="1conv", drop_path_rate=0.0), 2, 48),
    "tbsn": Contest(from_file("TBSN", "network/tbsn.py", "TBSN"), "TBSN", {}, 2, 64, 255.0),
    # the community's families: released configurations, sizes chosen for about 0.5-3 s per step on 2 cores
    "rrdbnet-x4": Contest(from_fixture_loader("realesrgan", "RRDBNet"), "RRDBNet",
                          "RealESRGAN_x4plus / RealESRNet_x4plus / ESRGAN_SRx4_DF2KOST_official", 1, 32),
    "rrdbnet-x2plus": Contest(from_fixture_loader("realesrgan", "RRDBNet"), "RRDBNet", "RealESRGAN_x2plus", 1, 48),
    "compact-x4v3": Contest(from_fixture_loader("realesrgan", "SRVGGNetCompact"), "SRVGGNetCompact",
                            "realesr-general-x4v3 / realesr-general-wdn-x4v3", 2, 48),
    "edsr-m-x2": Contest(from_fixture_loader("edsr_rcan", "EDSR"), "EDSR",
                         "EDSR_Mx2_f64b16_DIV2K_official (EDSR-M x2)", 2, 48),
    "rcan-x2": Contest(from_fixture_loader("edsr_rcan", "RCAN"), "RCAN", "RCAN x2", 1, 32),
    "dat-light-x2": Contest(from_fixture_loader("restormer_dat", "DAT"), "DAT", "DAT_light_x2", 2, 32),
    "dat-s-x2": Contest(from_fixture_loader("restormer_dat", "DAT"), "DAT", "DAT_S_x2", 2, 24),  # batch norm: 2+
    "span-x4": Contest(from_fixture_loader("span_nafnet", "SPAN"), "SPAN", "SPAN x4 ch48 (spanx4_ch48.pth)", 4, 48),
    "nafnet-sidd-w32": Contest(from_fixture_loader("span_nafnet", "NAFNet"), "NAFNet", "NAFNet-SIDD-width32", 2, 64),
    "restormer": Contest(from_fixture_loader("restormer_dat", "Restormer"), "Restormer",
                         "Restormer deraining / motion_deblurring / single_image_defocus_deblurring", 1, 64),
}


def released_kwargs(name: str, arch: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(arch, kwargs)`` of the released configuration ``name`` (of ``arch`` when given), with drop-path off where
    the constructor has it: the official default is not 0 (DAT: 0.1) and each code draws its own masks."""
    register_archs()
    matches = [c for c in published_configs() if c.name == name and arch in (None, c.arch)]
    if not matches:
        raise SystemExit(f"no released configuration {name!r}" + (f" of {arch}" if arch else ""))
    kwargs = dict(matches[0].kwargs)
    if "drop_path_rate" in keyword_parameters(ARCH_REGISTRY.get(matches[0].arch)):
        kwargs["drop_path_rate"] = 0.0
    return matches[0].arch, kwargs


def contest_kwargs(contest: Contest) -> dict[str, Any]:
    """The constructor kwargs of a row: its own, or those of the released configuration it names (no drop-path)."""
    if isinstance(contest.kwargs, dict):
        return dict(contest.kwargs)
    return released_kwargs(contest.kwargs, contest.ours)[1]


def contenders(name: str, clones: Path) -> dict[str, nn.Module]:
    """The official network and ours, with every fast path off ("ours reference") and as it runs by default."""
    contest = CONFIGS[name]
    kwargs = contest_kwargs(contest)
    torch.manual_seed(0)
    official = contest.load(clones)(**kwargs)
    nets: dict[str, nn.Module] = {"official": official}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "official.pth"
        torch.save(official.state_dict(), path)
        for label, extra in (("ours reference", reference_kwargs(contest.ours)), ("ours default", {})):
            net = build_network({"type": contest.ours, **kwargs, **extra})
            load_weights(net, str(path))
            nets[label] = ReferenceOps(net) if label == "ours reference" else net
    return nets


def reference_kwargs(arch: str) -> dict[str, str]:
    """The constructor kwargs that select the official arithmetic of ``arch``: ``attn_backend='reference'`` for
    the attention networks, ``train_form='branch'`` for SPAN's Conv3XC, none for the others."""
    params = keyword_parameters(ARCH_REGISTRY.get(arch))
    if "attn_backend" in params:
        return {"attn_backend": "reference"}
    if "train_form" in params:
        return {"train_form": "branch"}
    return {}


class ReferenceOps(nn.Module):
    """``net`` whose forward runs with the process-wide op switches at their reference: the channel norms
    differentiated by autograd (``set_channel_norm_backend``) and ``F.conv2d``'s own depthwise backward
    (``set_depthwise_backend``); each op picks its path in the forward, so the backward follows."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with CHANNEL_NORM_SWITCH.using("reference"), DEPTHWISE_SWITCH.using("reference"):
            return self.net(x)


def _step(net: nn.Module, x: torch.Tensor) -> float:
    net.zero_grad(set_to_none=True)
    start = time.perf_counter()
    net(x).abs().mean().backward()
    return time.perf_counter() - start


def compare(name: str, clones: Path, rounds: int, warmup: int) -> dict[str, Any]:
    """Outputs agree, then ``rounds`` interleaved timed steps; returns the row."""
    nets = contenders(name, clones)
    contest = CONFIGS[name]
    torch.manual_seed(1)
    x = torch.rand(contest.batch, 3, contest.size, contest.size) * contest.value
    for net in nets.values():
        net.train()
    with torch.no_grad():
        ref = nets["official"](x)
        diffs = {k: float((net(x) - ref).abs().max()) for k, net in nets.items() if k != "official"}
    times: dict[str, list[float]] = {k: [] for k in nets}
    names = list(nets)
    for r in range(warmup + rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:  # each contender first in turn: no place bias
            t = _step(nets[k], x)
            if r >= warmup:
                times[k].append(t)
    ratios = {k: statistics.median(o / t for o, t in zip(times["official"], times[k])) for k in nets if k != "official"}
    fast_path = statistics.median(r / d for r, d in zip(times["ours reference"], times["ours default"]))
    return {"name": name, "shape": f"{contest.batch} x {contest.size}²", "max_abs_diff": diffs,
            "median_s": {k: statistics.median(v) for k, v in times.items()}, "official_over": ratios,
            "reference_over_default": fast_path}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"configurations (default: all): {', '.join(CONFIGS)}")
    parser.add_argument("--clones", type=Path, required=True,
                        help="the folder holding the official clones (SwinIR, HAT, TBSN, BasicSR, DAT, SPAN, NAFNet, "
                             "Restormer)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; one of {', '.join(CONFIGS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds after {args.warmup}")
    print("| network | input | official | ours reference | ours default | official / default | "
          "official / reference | reference / default | max abs diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.names or list(CONFIGS):
        row = compare(name, args.clones, args.rounds, args.warmup)
        t, over = row["median_s"], row["official_over"]
        print(f"| {name} | {row['shape']} | {t['official'] * 1e3:,.0f} ms | {t['ours reference'] * 1e3:,.0f} ms | "
              f"{t['ours default'] * 1e3:,.0f} ms | **{over['ours default']:.2f}x** | {over['ours reference']:.2f}x | "
              f"{row['reference_over_default']:.2f}x | {max(row['max_abs_diff'].values()):.1e} |", flush=True)


if __name__ == "__main__":
    main()
