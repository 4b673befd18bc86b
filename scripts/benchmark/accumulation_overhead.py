#!/usr/bin/env python
"""Per-sample cost of gradient accumulation: one step over a batch of B against N micro-batches of B/N.

Both do one optimizer step over the same B samples (SwinIR-light x2, 64² GT crops, fp32, the trainer's own step:
`Trainer.micro_batch` + `SRModel.optimize_parameters`), interleaved round after round in one process, beside a
third: N plain steps of B/N samples each, what the micro-batches cost without accumulating (the difference between
the second and the third is the accumulation's own cost; between the first and the third, the smaller batch's).
The medians and the per-round ratios are printed. Run it on an otherwise idle machine::

    OMP_NUM_THREADS=2 python scripts/benchmark/accumulation_overhead.py --batch 16 --accum 4 --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from restoration.models.sr_model import SRModel  # noqa: E402

NETWORK = {"type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 32, "window_size": 8, "img_range": 1.0,
           "depths": [6, 6, 6, 6], "embed_dim": 60, "num_heads": [6, 6, 6, 6], "mlp_ratio": 2,
           "upsampler": "pixelshuffledirect", "resi_connection": "1conv"}


def trainer(accum: int) -> SRModel:
    opt = {"name": "bench", "scale": 2, "network_g": NETWORK,
           "train": {"optim_g": {"type": "Adam", "lr": 2e-4}, "total_iter": 1000, "accum_iter": accum,
                     "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}}}
    torch.manual_seed(0)
    return SRModel(opt, torch.device("cpu"))


def step(model: SRModel, lq: torch.Tensor, gt: torch.Tensor, it: int, n: int | None = None) -> float:
    """One optimizer step over ``lq``/``gt`` in ``model.accum_iter`` micro-batches (``n``: that many plain steps)."""
    if n is not None:
        start = time.perf_counter()
        for lq_part, gt_part in zip(lq.chunk(n), gt.chunk(n)):
            model.optimize_parameters({"lq": lq_part, "gt": gt_part}, it)
        return time.perf_counter() - start
    n = model.accum_iter
    start = time.perf_counter()
    for micro, (lq_part, gt_part) in enumerate(zip(lq.chunk(n), gt.chunk(n))):
        with model.micro_batch(micro):
            model.optimize_parameters({"lq": lq_part, "gt": gt_part}, it)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--accum", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(1)
    lq, gt = torch.rand(args.batch, 3, 32, 32), torch.rand(args.batch, 3, 64, 64)
    models = {"one batch": trainer(1), f"{args.accum} micro-batches": trainer(args.accum),
              f"{args.accum} plain steps of {args.batch // args.accum}": trainer(1)}
    times: dict[str, list[float]] = {k: [] for k in models}
    for r in range(args.warmup + args.rounds):
        for i, (name, model) in enumerate(models.items()):
            t = step(model, lq, gt, r + 1, args.accum if i == 2 else None)
            if r >= args.warmup:
                times[name].append(t)
    big, acc, plain = times.values()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.rounds} rounds")
    for name, values in times.items():
        print(f"{name}: {statistics.median(values) * 1e3:,.0f} ms per step, "
              f"{statistics.median(values) / args.batch * 1e3:.1f} ms per sample")
    print(f"accumulated / one batch: {statistics.median(a / b for a, b in zip(acc, big)):.3f}; "
          f"accumulated / plain small steps: {statistics.median(a / p for a, p in zip(acc, plain)):.3f}")


if __name__ == "__main__":
    main()
