"""Two CPU processes (gloo) through torchrun: train, checkpoint, resume — bit-exact, no hang."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import make_sr_pairs, torchrun_train, train_options, write_options

def test_two_process_train_checkpoint_resume(tmp_path: Path) -> None:
    data = make_sr_pairs(tmp_path / "data", n=6, size=32, scale=2)
    # "cuda:gloo" has no CPU backend, like NCCL alone on a GPU machine: before init_dist added one, the
    # trainer's first CPU-tensor collective died with "No backend type associated with device type cpu"
    opt = train_options(data, "ddp", **{"datasets.train.num_worker_per_gpu": 1,
                                        "dist_params": {"backend": "cuda:gloo", "timeout": 120}})
    cfg = write_options(opt, tmp_path / "ddp.yml")
    run = torchrun_train(cfg, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    exp = tmp_path / "experiments" / "ddp"
    log = next(exp.glob("train_ddp_*.log")).read_text()
    assert "world 2" in log and "validation tiny_val @ iter 6: psnr" in log
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["2.state", "4.state", "6.state"]
    state = torch.load(exp / "training_states" / "4.state", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2  # every rank's random streams

    # Resume a copy of the experiment from iteration 4 and finish: identical to the uninterrupted run.
    resumed = tmp_path / "resumed"
    shutil.copytree(exp, resumed)
    (resumed / "training_states" / "6.state").unlink()
    opt2 = {**opt, "name": "ddp_resumed", "path": {"experiments_root": str(resumed)}}
    run = torchrun_train(write_options(opt2, tmp_path / "ddp2.yml"), tmp_path, "--auto_resume")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "resumed from" in run.stderr and "at iteration 4" in run.stderr
    a = torch.load(exp / "models" / "net_g_6.pth", weights_only=True)
    b = torch.load(resumed / "models" / "net_g_6.pth", weights_only=True)
    for group in ("params", "params_ema"):
        for key, value in a[group].items():
            assert torch.equal(value, b[group][key]), f"{group}.{key} differs after a 2-process resume"


def test_resume_on_another_process_count(tmp_path: Path) -> None:
    """1 process -> 2 -> 1 (e.g. a job resumed on a node with more or fewer GPUs): each resume runs to its
    end and says that the data order and random streams change; the new rank gets streams of its own,
    not a copy of rank 0's."""
    data = make_sr_pairs(tmp_path / "data", n=6, size=32, scale=2)
    opt = train_options(data, "regrow", **{"train.total_iter": 4, "datasets.train.num_worker_per_gpu": 1})
    run = torchrun_train(write_options(opt, tmp_path / "a.yml"), tmp_path, nproc=1)
    assert run.returncode == 0, run.stderr[-3000:]
    states = tmp_path / "experiments" / "regrow" / "training_states"

    opt["train"]["total_iter"] = 6
    run = torchrun_train(write_options(opt, tmp_path / "b.yml"), tmp_path, "--auto_resume")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "resuming a 1-process run on 2 processes" in run.stderr and "at iteration 4" in run.stderr
    state = torch.load(states / "6.state", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    # a copy of rank 0's streams would draw the same drop-path masks and end in the same state
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])

    opt["train"]["total_iter"] = 8
    run = torchrun_train(write_options(opt, tmp_path / "c.yml"), tmp_path, "--auto_resume", nproc=1)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "resuming a 2-process run on 1 processes" in run.stderr and "at iteration 6" in run.stderr
    state = torch.load(states / "8.state", weights_only=True)
    assert state["world_size"] == 1 and state["iter"] == 8


@pytest.mark.slow
def test_the_demo_data_is_built_by_rank_0_before_the_ranks_train(tmp_path: Path) -> None:
    """The README quickstart under torchrun, from a folder without datasets/demo: train.py builds it (rank 0,
    the other rank waits at the parsing barrier), then both ranks train on it."""
    cfg = Path(__file__).resolve().parents[1] / "options" / "train" / "demo" / "train_SwinIR_light_SRx2_demo.yml"
    run = torchrun_train(cfg, tmp_path, "--force_yml", "train.total_iter=1", "train.warmup_iter=-1", "val=~",
                         "logger.use_tb_logger=false", "datasets.train.num_worker_per_gpu=0",
                         "datasets.train.batch_size_per_gpu=2")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "datasets" / "demo" / ".complete_x2.json").is_file()
    log = next((tmp_path / "experiments" / "SwinIR_light_SRx2_demo").glob("train_*.log")).read_text()
    assert "world 2" in log and "training finished at iteration 1" in log

