"""Two ranks through torchrun: training, checkpoint and resume on the GPU (part of ``pytest -m cuda``).

On a one-GPU machine both ranks use ``cuda:0`` (the trainer puts rank ``LOCAL_RANK % device_count`` on
its GPU). NCCL refuses two ranks on one device ("Duplicate GPU detected"; ``NCCL_MULTI_RANK_GPU_ENABLE``
does not change that in the NCCL 2.28 that torch bundles), so there the test runs with
``dist_params.backend: gloo`` (gloo takes CUDA tensors) from the start: one launch per run, no NCCL
attempt to fail first, and a warning says NCCL was not exercised. With two GPUs or more it runs the
trainer's default on GPUs, ``cpu:gloo,cuda:nccl``, one rank per GPU.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch

from tests.helpers import make_sr_pairs, torchrun_train, train_options, write_options

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (GPU proof: pytest -m cuda, docs/gpu.md)"),
]

ROOT = Path(__file__).resolve().parents[1]


def _backend() -> str:
    """The process-group backend of the 2-rank run on this machine (see the module docstring)."""
    if torch.cuda.device_count() >= 2:
        return "cpu:gloo,cuda:nccl"  # the trainer's choice on GPUs (dist_params.backend: auto)
    warnings.warn("one GPU: the 2-rank run uses gloo (NCCL refuses two ranks on one GPU); NCCL is not exercised")
    return "gloo"


def test_two_ranks_train_checkpoint_and_resume_on_the_gpu(tmp_path: Path) -> None:
    data = make_sr_pairs(tmp_path / "data", n=6, size=32, scale=2)
    opt = train_options(data, "ddp_gpu", **{"num_gpu": "auto", "datasets.train.num_worker_per_gpu": 1,
                                            "logger.use_tb_logger": False})
    backend = _backend()
    if backend == "gloo":
        opt["dist_params"] = {"backend": "gloo"}
    cfg = write_options(opt, tmp_path / "ddp_gpu.yml")
    run = torchrun_train(cfg, tmp_path, cpu=False, timeout=180)
    assert run.returncode == 0, run.stderr[-4000:]
    exp = tmp_path / "experiments" / "ddp_gpu"
    log = next(exp.glob("train_ddp_gpu_*.log")).read_text()
    assert "world 2" in log and "device cuda:0" in log
    assert "validation tiny_val @ iter 6: psnr" in log
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["2.state", "4.state", "6.state"]
    state = torch.load(exp / "training_states" / "4.state", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2

    # Resume a copy from iteration 4: the same weights as the uninterrupted run at 6 (bit-exact is
    # expected, as on the CPU; cuDNN autotuning may pick other kernels in a new process, hence 1e-5).
    resumed = tmp_path / "resumed"
    shutil.copytree(exp, resumed)
    (resumed / "training_states" / "6.state").unlink()
    opt2 = {**opt, "name": "ddp_gpu_resumed", "path": {"experiments_root": str(resumed)}}
    run = torchrun_train(write_options(opt2, tmp_path / "ddp_gpu2.yml"), tmp_path, "--auto_resume", cpu=False,
                         timeout=180)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "at iteration 4" in run.stderr
    a = torch.load(exp / "models" / "net_g_6.pth", weights_only=True)
    b = torch.load(resumed / "models" / "net_g_6.pth", weights_only=True)
    diff = max(float((a[g][k] - b[g][k]).abs().max()) for g in a for k in a[g])
    assert diff <= 1e-5, f"2-rank resume differs from the uninterrupted run by {diff:.2e}"
    if diff > 0:
        warnings.warn(f"2-rank resume on {backend} is not bit-exact: max |dW| {diff:.2e}")
