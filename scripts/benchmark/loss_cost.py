"""Forward + backward time of each toolbox loss (docs/losses_metrics.md) on one batch.

Each loss gets a prediction that requires a gradient and a target, ``(batch, 3, size, size)`` in [0, 1], and is
timed over ``--iters`` forward + backward passes after ``--warmup`` untimed ones; the median is reported, in
milliseconds, as JSON lines. ``MSSSIMLoss`` runs with the most scales the size allows; ``LDLLoss`` gets an EMA
output (a second noisy copy of the target). On CUDA every interval ends with ``torch.cuda.synchronize()``.

Usage: ``python scripts/benchmark/loss_cost.py [--device cpu|cuda] [--batch 16] [--size 128] [--iters 10]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from restoration.losses import register_losses  # noqa: E402
from restoration.metrics.ms_ssim import ms_ssim_min_size  # noqa: E402
from restoration.registry import LOSS_REGISTRY  # noqa: E402

LOSSES = ("SSIMLoss", "MSSSIMLoss", "FFLoss", "ColorLoss", "LumaLoss", "WeightedTVLoss", "LDLLoss")


def _options(name: str, size: int) -> dict:
    if name == "MSSSIMLoss":
        return {"scales": max(s for s in range(1, 6) if ms_ssim_min_size(s) <= size)}
    return {}


def time_loss(name: str, batch: int, size: int, device: torch.device, warmup: int, iters: int) -> dict:
    """Median forward + backward milliseconds of loss ``name`` on one ``(batch, 3, size, size)`` pair."""
    options = _options(name, size)
    loss = LOSS_REGISTRY.get(name)(**options).to(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    target = torch.rand(batch, 3, size, size, generator=gen).to(device)
    pred = (target + 0.05 * torch.randn(target.shape, generator=gen).to(device)).requires_grad_(True)
    extra = {"ema_output": (target + 0.03 * torch.randn(target.shape, generator=gen).to(device))} \
        if getattr(loss, "needs_ema_output", False) else {}
    times = []
    for i in range(warmup + iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        loss(pred, target, **extra).backward()
        pred.grad = None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return {"loss": name, "options": options, "batch": batch, "size": size, "device": str(device),
            "median_ms": round(statistics.median(times), 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--losses", nargs="*", default=list(LOSSES), choices=LOSSES)
    args = parser.parse_args(argv)
    register_losses()
    device = torch.device(args.device)
    for name in args.losses:
        print(json.dumps(time_loss(name, args.batch, args.size, device, args.warmup, args.iters)), flush=True)


if __name__ == "__main__":
    main()
