"""Test helpers: tiny synthetic SR data and option files written into a temporary folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from restoration.cli.train import main as train_main
from restoration.utils.image_io import imwrite
from restoration.utils.matlab_imresize import imresize


def make_sr_pairs(root: Path, n: int, size: int, scale: int, seed: int = 0) -> tuple[Path, Path]:
    """``n`` smooth random RGB images ``size``² (HR) and their MATLAB-bicubic LR, named ``img{i}.png``."""
    rng = np.random.default_rng(seed)
    hr_dir, lr_dir = root / "HR", root / f"LR_x{scale}"
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        f = rng.uniform(1, 4, size=(3, 2))
        ph = rng.uniform(0, 6.28, size=3)
        hr = np.stack([np.sin(f[c, 0] * 6.28 * yy + ph[c]) * np.cos(f[c, 1] * 6.28 * xx) for c in range(3)], -1)
        hr = np.clip((hr * 0.4 + 0.5) * 255 + rng.normal(0, 6, hr.shape), 0, 255).round().astype(np.uint8)
        lr = np.clip(imresize(hr.astype(np.float64) / 255.0, scale=1 / scale), 0, 1) * 255
        imwrite(hr_dir / f"img{i}.png", hr)
        imwrite(lr_dir / f"img{i}.png", lr.round().astype(np.uint8))
    return hr_dir, lr_dir


def train_options(data: tuple[Path, Path], name: str, **overrides: Any) -> dict[str, Any]:
    """A tiny x2 training config: SwinIR (1 block, drop-path on, so torch RNG matters) + EMA + Adam."""
    hr, lr = data
    opt: dict[str, Any] = {
        "name": name,
        "model_type": "SRModel",
        "scale": 2,
        "num_gpu": 0,
        "manual_seed": 3,
        "datasets": {
            "train": {
                "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                "io_backend": {"type": "disk"}, "gt_size": 16, "use_hflip": True, "use_rot": True,
                "num_worker_per_gpu": 0, "batch_size_per_gpu": 2, "dataset_enlarge_ratio": 1,
            },
            "val_1": {
                "name": "tiny_val", "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                "io_backend": {"type": "disk"},
            },
        },
        "network_g": {
            "type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 8, "window_size": 4, "img_range": 1.0,
            "depths": [2], "embed_dim": 8, "num_heads": [2], "mlp_ratio": 2, "drop_path_rate": 0.2,
            "upsampler": "pixelshuffledirect", "resi_connection": "1conv",
        },
        "train": {
            "ema_decay": 0.9,
            "optim_g": {"type": "Adam", "lr": 2e-3, "betas": [0.9, 0.99]},
            "scheduler": {"type": "MultiStepLR", "milestones": [3, 5], "gamma": 0.5},
            "total_iter": 6,
            "warmup_iter": 2,
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0},
        },
        "val": {"val_freq": 3, "save_img": True, "metrics": {
            "psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": True},
    }
    for key, value in overrides.items():
        node = opt
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return opt


def write_options(opt: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


ROOT = Path(__file__).resolve().parents[1]


def train_and_read_log(cfg: Path, root: Path, experiment: str) -> tuple[str, str]:
    """Train the option file ``cfg`` on the CPU under ``root`` to its ``total_iter`` (2 in the files that use
    this), check that ``net_g_2.pth`` was written, and return the training log and its head (everything before
    the options dump: versions, device, notices)."""
    assert train_main(["-opt", str(cfg), "--root", str(root), "--force_yml", "num_gpu=0"]) == 0
    exp = root / "experiments" / experiment
    assert (exp / "models" / "net_g_2.pth").is_file()
    log = next(exp.glob("train_*.log")).read_text()
    return log, log[:log.index("options:")]


def free_port() -> int:
    """A TCP port that was free a moment ago (for a test's own process group)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_train(cfg: Path, root: Path, *extra: str, cpu: bool = True, timeout: int = 300,
                   env: dict[str, str] | None = None, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=2 train.py -opt cfg --launcher pytorch --root root *extra``, captured;
    ``nproc=1``: plain ``python train.py -opt cfg --root root *extra`` (one process, no launcher).

    The package and ``tests`` are importable in the ranks (``PYTHONPATH``); ``cpu`` hides the GPUs.
    """
    args = [str(ROOT / "train.py"), "-opt", str(cfg), "--root", str(root), *extra]
    if nproc > 1:
        # --standalone: torchrun's own rendezvous binds a free port itself (a port picked here beforehand
        # could be taken by another process before the ranks bind it)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               *args, "--launcher", "pytorch"]
    else:
        cmd = [sys.executable, *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1",
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    if cpu:
        full_env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=root)


def assert_unreleased_detection(sd: dict, where: str = "checkpoint") -> Any:
    """A configuration no release has: detected with a notice naming what was assumed, or refused because the
    closest releases disagree on a setting the weights do not show. Returns the detection (None when refused)."""
    from restoration.archs.detect import detect_architecture
    from restoration.errors import DetectionError

    try:
        detection = detect_architecture(sd, where=where)
    except DetectionError as exc:
        assert "is not a released config; the closest ones disagree on what the weights do not show" in str(exc), exc
        return None
    assert detection.release is None and detection.notice is not None
    assert detection.notice.startswith("not a released ") and "--arch-opt" in detection.notice
    return detection


def assert_gan_resume_is_bit_exact(exp: Path, opt: dict[str, Any], tmp_path: Path, last: int) -> None:
    """A copy of the finished GAN run ``exp`` without its final state ``<last>.state``, resumed with
    ``--auto_resume``, ends with the same generator, discriminator, EMA and both optimizers' states, bit for bit."""
    state = torch.load(exp / "training_states" / f"{last}.state", weights_only=True)
    resumed = tmp_path / "resumed"
    shutil.copytree(exp, resumed)
    (resumed / "training_states" / f"{last}.state").unlink()
    opt2 = {**opt, "name": "resumed", "path": {"experiments_root": str(resumed)}}
    assert train_main(["-opt", str(write_options(opt2, tmp_path / "r.yml")), "--root", str(tmp_path),
                       "--auto_resume"]) == 0
    again = torch.load(resumed / "training_states" / f"{last}.state", weights_only=True)
    for key in ("net_g", "net_d", "ema"):
        for name, value in state[key].items():
            assert torch.equal(value, again[key][name]), f"{key}.{name}"
    for key in ("optimizer", "optimizer_d"):
        for index, slot in state[key]["state"].items():
            for name, value in slot.items():
                assert torch.equal(value, again[key]["state"][index][name]), f"{key}.{index}.{name}"
