"""Time per training iteration of ``train.py`` against a bare PyTorch loop on the same network and batch.

The framework run includes everything a real run does per iteration (data loading from disk through the
seeded loader, EMA, scheduler, logging); start-up is cancelled by timing two run lengths and taking the
difference. The bare loop feeds pre-made tensors to forward → L1 → backward → Adam.

Usage: ``python scripts/benchmark/framework_overhead.py [--iters 40] [--batch 8] [--patch 64]``
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


def _framework_time(tmp: Path, iters: int, batch: int, patch: int, workers: int) -> float:
    from restoration.train_loop import main

    hr, lr = _make_data(tmp / "data")
    times = []
    for n in (5, 5 + iters):
        opt = {
            "name": f"overhead_{n}", "scale": 2, "num_gpu": "auto", "manual_seed": 0,
            "datasets": {"train": {"type": "PairedImageDataset", "dataroot_gt": hr, "dataroot_lq": lr,
                                   "io_backend": {"type": "disk"}, "gt_size": patch * 2, "use_hflip": True,
                                   "use_rot": True, "num_worker_per_gpu": workers, "batch_size_per_gpu": batch,
                                   "dataset_enlarge_ratio": 100}},
            "network_g": NETWORK,
            "train": {"ema_decay": 0.999, "optim_g": {"type": "Adam", "lr": 2e-4}, "total_iter": n,
                      "scheduler": {"type": "MultiStepLR", "milestones": [10**6]},
                      "pixel_opt": {"type": "L1Loss"}},
            "logger": {"print_freq": 10**6, "save_checkpoint_freq": 10**6, "use_tb_logger": False},
        }
        cfg = tmp / f"o{n}.yml"
        cfg.write_text(yaml.safe_dump(opt))
        t0 = time.perf_counter()
        assert main(["-opt", str(cfg), "--root", str(tmp)]) == 0
        times.append(time.perf_counter() - t0)
    return (times[1] - times[0]) / iters


def _bare_time(iters: int, batch: int, patch: int) -> float:
    from restoration import build_network
    from timm.utils import ModelEmaV3

    torch.manual_seed(0)
    net = build_network(NETWORK)
    ema = ModelEmaV3(net, decay=0.999)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    lq, gt = torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, patch * 2, patch * 2)
    for step in range(5 + iters):
        if step == 5:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(net(lq), gt)
        loss.backward()
        opt.step()
        ema.update(net)
    return (time.perf_counter() - t0) / iters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=32, help="LR patch size")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        framework = _framework_time(Path(tmp), args.iters, args.batch, args.patch, args.workers)
    bare = _bare_time(args.iters, args.batch, args.patch)
    result = {"device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads(),
              "batch": args.batch, "lr_patch": args.patch, "bare_s_per_iter": bare,
              "framework_s_per_iter": framework, "overhead_percent": 100 * (framework / bare - 1)}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
