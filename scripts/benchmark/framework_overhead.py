"""Time per training iteration of ``train.py`` against a bare PyTorch loop on the same network and batch.

The framework time is the median interval between consecutive training steps of a real ``train.py`` run,
so it includes everything the loop does per iteration (data loading through the seeded loader, EMA,
scheduler, logging, tensorboard). The bare loop feeds pre-made tensors to forward → L1 → backward → Adam →
EMA. Medians and alternating repeats keep a shared machine's load bursts out of the comparison. Both run on
the same device (``--device``); on a GPU every timestamp is taken after ``torch.cuda.synchronize()``, so an
interval is a whole step on the GPU, not the time to queue it.

Usage: ``python scripts/benchmark/framework_overhead.py [--device auto|cpu|cuda] [--iters 40] [--batch 8] [--patch 64]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

NETWORK = {
    "type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 32, "window_size": 8, "img_range": 1.0,
    "depths": [2, 2], "embed_dim": 24, "num_heads": [3, 3], "mlp_ratio": 2,
    "upsampler": "pixelshuffledirect", "resi_connection": "1conv",
}


def _make_data(root: Path, n: int = 8, size: int = 128) -> tuple[str, str]:
    from restoration.utils.image_io import imwrite
    from restoration.utils.matlab_imresize import imresize

    rng = np.random.default_rng(0)
    for i in range(n):
        hr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        imwrite(root / "HR" / f"{i}.png", hr)
        imwrite(root / "LR" / f"{i}.png", np.clip(imresize(hr, scale=0.5), 0, 255).astype(np.uint8))
    return str(root / "HR"), str(root / "LR")


def _stamp(device: torch.device) -> float:
    """A timestamp after the device has finished the work queued so far."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _framework_time(tmp: Path, iters: int, batch: int, patch: int, workers: int, device: torch.device) -> float:
    """Median time between consecutive training steps of ``train.py`` (everything the loop does per iteration)."""
    from restoration.models.sr_model import SRModel
    from restoration.cli.train import main

    hr, lr = (str(tmp / "data" / "HR"), str(tmp / "data" / "LR"))
    if not (tmp / "data").is_dir():
        _make_data(tmp / "data")
    n = 5 + iters
    opt = {
        "name": "overhead", "scale": 2, "num_gpu": 1 if device.type == "cuda" else 0, "manual_seed": 0,
        "datasets": {"train": {"type": "PairedImageDataset", "dataroot_gt": hr, "dataroot_lq": lr,
                               "io_backend": {"type": "disk"}, "gt_size": patch * 2, "use_hflip": True,
                               "use_rot": True, "num_worker_per_gpu": workers, "batch_size_per_gpu": batch,
                               "dataset_enlarge_ratio": 100}},
        "network_g": NETWORK,
        "train": {"ema_decay": 0.999, "optim_g": {"type": "Adam", "lr": 2e-4}, "total_iter": n,
                  "scheduler": {"type": "MultiStepLR", "milestones": [10**6]},
                  "pixel_opt": {"type": "L1Loss"}},
        "logger": {"print_freq": 10, "save_checkpoint_freq": 10**6, "use_tb_logger": True},
        "path": {"experiments_root": str(tmp / "experiments" / f"run{time.time_ns()}")},
    }
    cfg = tmp / "overhead.yml"
    cfg.write_text(yaml.safe_dump(opt))
    stamps: list[float] = []
    original = SRModel.optimize_parameters

    def timed(self, batch, current_iter):  # one timestamp per loop iteration
        stamps.append(_stamp(device))
        return original(self, batch, current_iter)

    SRModel.optimize_parameters = timed
    try:
        assert main(["-opt", str(cfg), "--root", str(tmp)]) == 0
    finally:
        SRModel.optimize_parameters = original
    steps = np.diff(stamps[5:])
    return float(np.median(steps))


def _bare_time(iters: int, batch: int, patch: int, device: torch.device) -> float:
    """Median time of forward → L1 → backward → Adam → EMA on pre-made tensors on ``device``."""
    from restoration import build_network
    from timm.utils import ModelEmaV3

    torch.manual_seed(0)
    net = build_network(NETWORK).to(device)
    ema = ModelEmaV3(net, decay=0.999)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    lq = torch.rand(batch, 3, patch, patch, device=device)
    gt = torch.rand(batch, 3, patch * 2, patch * 2, device=device)
    stamps = []
    for _ in range(5 + iters):
        stamps.append(_stamp(device))
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(net(lq), gt)
        loss.backward()
        opt.step()
        ema.update(net)
    stamps.append(_stamp(device))
    return float(np.median(np.diff(stamps[5:])))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda: both loops run there")
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=32, help="LR patch size")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="alternate the two measurements; keep the fastest")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    frameworks, bares = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # alternating makes both see the same machine load
            frameworks.append(_framework_time(Path(tmp), args.iters, args.batch, args.patch, args.workers, device))
            bares.append(_bare_time(args.iters, args.batch, args.patch, device))
    framework, bare = min(frameworks), min(bares)
    result = {"device": str(device), "threads": torch.get_num_threads(),
              "batch": args.batch, "lr_patch": args.patch, "bare_s_per_iter": bare,
              "framework_s_per_iter": framework, "overhead_percent": 100 * (framework / bare - 1),
              "all_bare": bares, "all_framework": frameworks}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
