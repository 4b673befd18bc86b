"""What the CUDA paths rely on, proven on the CPU: host synchronisations per training step, per-rank
random streams on resume, the deterministic/TF32 switches and the GPU-count check."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

from restoration.models.sr_model import SRModel
from restoration.utils.rng import get_rng_state, restore_rank_rng, seed_everything, set_rng_state
from restoration.utils.torch_setup import torch_settings
from tests.helpers import make_sr_pairs, train_options, write_options

_READS = ("item", "tolist", "__float__", "__int__", "__bool__")


#: torch.optim reads its own step counters, which are CPU tensors for the non-fused optimizers on GPU
#: runs too (``state['step']``): not device reads.
_CPU_ONLY_READERS = (f"torch{os.sep}optim{os.sep}",)


@contextlib.contextmanager
def count_host_reads() -> Iterator[list[str]]:
    """Count every Tensor -> Python value conversion (each one waits for the GPU when the tensor lives there)."""
    calls: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in _READS}

    def wrap(name: str, fn: Any) -> Any:
        def counted(self, *args, **kwargs):
            caller = sys._getframe(1)
            if not any(part in caller.f_code.co_filename for part in _CPU_ONLY_READERS):
                calls.append(f"{name} at {caller.f_code.co_filename}:{caller.f_lineno}")
            return fn(self, *args, **kwargs)

        return counted

    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield calls
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)


def _opt(**train: Any) -> dict[str, Any]:
    return {
        "name": "t", "scale": 2,
        "network_g": {"type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 8, "window_size": 4,
                      "img_range": 1.0, "depths": [2], "embed_dim": 8, "num_heads": [2], "mlp_ratio": 2,
                      "upsampler": "pixelshuffledirect", "resi_connection": "1conv"},
        "train": {"optim_g": {"type": "Adam", "lr": 1e-3}, "total_iter": 10, "ema_decay": 0.9,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}, **train},
    }


def _batch(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 16, 16, generator=g)}


@pytest.mark.parametrize("train", [{}, {"grad_clip": 0.1}, {"mixed_precision": "bf16"}, {"skip_nonfinite": False}],
                         ids=["default", "grad_clip", "bf16", "no_skip"])
def test_a_training_step_reads_at_most_one_value_from_the_device(train: dict) -> None:
    model = SRModel(_opt(**train), torch.device("cpu"))
    model.optimize_parameters(_batch(0), 1)  # first step: EMA copy, optimizer state
    with count_host_reads() as reads:
        for it in range(2, 5):
            log = model.optimize_parameters(_batch(it), it)
    allowed = 0 if train.get("skip_nonfinite") is False else 1
    assert len(reads) <= 3 * allowed, reads
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in log.values())


def test_non_finite_loss_still_skips_without_the_extra_reads() -> None:
    model = SRModel(_opt(), torch.device("cpu"))
    model.optimize_parameters(_batch(0), 1)
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    bad = _batch(1)
    bad["gt"][0, 0, 0, 0] = float("inf")  # inf loss: the gradients may stay finite, the step must not
    log = model.optimize_parameters(bad, 2)
    assert float(log["skipped"]) == 1.0 and model.skipped_steps == 1
    assert all(torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())
    log = model.optimize_parameters(_batch(3), 3)
    assert "skipped" not in log


def test_fp16_non_finite_gradient_backs_off_the_scale_and_skips() -> None:
    model = SRModel(_opt(mixed_precision="fp16"), torch.device("cpu"))
    if not model.scaler.is_enabled():
        pytest.skip("this torch has no CPU GradScaler")
    scale = model.scaler.get_scale()
    bad = _batch(1)
    bad["lq"][0, 0, 0, 0] = float("nan")
    log = model.optimize_parameters(bad, 1)
    assert float(log["skipped"]) == 1.0 and model.scaler.get_scale() == scale * 0.5
    log = model.optimize_parameters(_batch(2), 2)  # the scaler's bookkeeping is consistent afterwards
    assert "skipped" not in log


def test_train_loop_reads_the_device_only_on_logging_iterations(tmp_path: Path, monkeypatch) -> None:
    from restoration.cli import train
    from restoration.training import run

    data = make_sr_pairs(tmp_path / "data", n=4, size=16, scale=2)
    opt = train_options(data, "sync", **{"logger.print_freq": 3, "logger.save_checkpoint_freq": 100,
                                         "train.total_iter": 6, "val": None})
    reads_per_step: list[int] = []
    original = SRModel.optimize_parameters

    def step(self, batch, it):
        with count_host_reads() as reads:
            out = original(self, batch, it)
        reads_per_step.append(len(reads))
        return out

    monkeypatch.setattr(SRModel, "optimize_parameters", step)
    converted: list[int] = []
    original_read = run.read_scalars
    monkeypatch.setattr(run, "read_scalars", lambda log, device: converted.append(1) or original_read(log, device))
    assert train.main(["-opt", str(write_options(opt, tmp_path / "o.yml")), "--root", str(tmp_path)]) == 0
    assert reads_per_step == [1] * 6  # the finite-gradient check, nothing else
    assert len(converted) == 2  # iterations 3 and 6


def test_resume_gives_new_ranks_their_own_streams() -> None:
    seed_everything(11)
    saved = [get_rng_state()]  # a one-process run
    restore_rank_rng(saved, 0, seed=11, iteration=40)
    rank0 = torch.rand(4)
    restore_rank_rng(saved, 1, seed=11, iteration=40)  # resumed on two processes
    rank1 = torch.rand(4)
    assert not torch.equal(rank0, rank1)  # not a copy of rank 0's stream
    restore_rank_rng(saved, 1, seed=11, iteration=40)
    assert torch.equal(torch.rand(4), rank1)  # derived, so reproducible
    restore_rank_rng(saved, 0, seed=11, iteration=40)
    assert torch.equal(torch.rand(4), rank0)  # the saved rank resumes exactly
    restore_rank_rng(saved, 2, seed=11, iteration=40)
    assert not torch.equal(torch.rand(4), rank1)


def test_rng_state_holds_this_device_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Saved: the current device's CUDA state only. Restored: a tensor on this device; an old checkpoint's
    list (one state per visible GPU) by this device's index, skipped on a GPU the saving run did not see.
    A GPU is simulated: on the CPU the CUDA branch would otherwise never run."""
    if not torch.cuda.is_available():
        assert "cuda" not in get_rng_state()
    mine, other = torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)
    restored: list[torch.Tensor] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": mine)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: pytest.fail("saved every device's state"))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": restored.append(state))
    state = get_rng_state()
    assert state["cuda"] is mine
    set_rng_state(state)
    set_rng_state({**state, "cuda": [other, mine]})  # written by a two-GPU run: device 1 takes its own
    set_rng_state({**state, "cuda": [other]})  # written by a one-GPU run: device 1 had no state
    assert restored == [mine, mine]


def test_deterministic_and_tf32_settings_apply_and_are_restored() -> None:
    before = (torch.are_deterministic_algorithms_enabled(), torch.get_float32_matmul_precision(),
              torch.backends.cudnn.benchmark, torch.backends.cuda.mem_efficient_sdp_enabled())
    with torch_settings(deterministic=True, tf32=True):
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark and not torch.backends.cuda.flash_sdp_enabled()
        assert not torch.backends.cuda.mem_efficient_sdp_enabled()
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    with torch_settings(deterministic=False, tf32=False):
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "highest"
    assert (torch.are_deterministic_algorithms_enabled(), torch.get_float32_matmul_precision(),
            torch.backends.cudnn.benchmark, torch.backends.cuda.mem_efficient_sdp_enabled()) == before


def test_deterministic_training_runs_are_identical(tmp_path: Path) -> None:
    from restoration.cli.train import main

    data = make_sr_pairs(tmp_path / "data", n=4, size=16, scale=2)
    weights = []
    for name in ("a", "b"):
        opt = train_options(data, name, **{"train.deterministic": True, "train.tf32": False, "val": None,
                                           "train.total_iter": 3, "logger.save_checkpoint_freq": 3})
        assert main(["-opt", str(write_options(opt, tmp_path / f"{name}.yml")), "--root", str(tmp_path)]) == 0
        weights.append(torch.load(tmp_path / "experiments" / name / "models" / "net_g_3.pth", weights_only=True))
    assert not torch.are_deterministic_algorithms_enabled()  # the run put the process back as it was
    for key, value in weights[0]["params"].items():
        assert torch.equal(value, weights[1]["params"][key]), key
