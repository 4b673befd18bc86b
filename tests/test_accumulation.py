"""Gradient accumulation (``train.accum_iter``): N micro-batches make one optimizer step."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from restoration.models.sr_model import SRModel
from restoration.options.parse import OptionsError, parse_options
from restoration.cli.train import main as train_main
from tests.helpers import make_sr_pairs, train_options, write_options


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=8, size=32, scale=2)


def _options(data, name: str, batch: int, accum: int, **extra) -> dict:  # noqa: ANN001, ANN003
    # no drop-path: its random draws per micro-batch would differ from one big batch's
    return train_options(data, name, **{"datasets.train.batch_size_per_gpu": batch, "train.accum_iter": accum,
                                        "network_g.drop_path_rate": 0.0, "train.ema_decay": 0.9, **extra})


def _weights(root: Path, name: str, it: int) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(root / "experiments" / name / "models" / f"net_g_{it}.pth", weights_only=True)


def test_accumulated_micro_batches_equal_one_big_batch(data, tmp_path: Path) -> None:
    # fp32 on the CPU: 2 x batch 2 accumulated gives the weights of batch 4 up to float rounding (the loss of a
    # batch of 4 is the mean of the two halves' means; only the order of the sums differs). Measured after 6
    # SGD steps: max |difference| 1.5e-8 (weights and EMA, of size ~0.1).
    sgd = {"train.optim_g": {"type": "SGD", "lr": 0.05, "momentum": 0.9}}  # (Adam would hide a wrong 1/N scale)
    for name, batch, accum in (("big", 4, 1), ("accum", 2, 2)):
        cfg = write_options(_options(data, name, batch, accum, **sgd), tmp_path / f"{name}.yml")
        assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    big, acc = _weights(tmp_path, "big", 6), _weights(tmp_path, "accum", 6)
    for group in ("params", "params_ema"):
        for key, value in big[group].items():
            torch.testing.assert_close(acc[group][key], value, rtol=1e-5, atol=1e-6, msg=f"{group}.{key}")
    # the step really took both micro-batches: one micro-batch alone (batch 2, no accumulation) is far away
    cfg = write_options(_options(data, "half", 2, 1, **sgd), tmp_path / "half.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    half = _weights(tmp_path, "half", 6)
    assert max(float((half["params"][k] - v).abs().max()) for k, v in big["params"].items()) > 1e-4
    log = next((tmp_path / "experiments" / "accum").glob("train_accum_*.log")).read_text()
    assert log.count("| l_pix: ") == 6  # one line per optimizer step, not per micro-batch


def test_resume_between_steps_is_bit_exact(data, tmp_path: Path, monkeypatch) -> None:
    opt = _options(data, "run", 2, 3, **{"logger.save_checkpoint_freq": 100})
    straight = write_options({**opt, "name": "straight"}, tmp_path / "straight.yml")
    assert train_main(["-opt", str(straight), "--root", str(tmp_path)]) == 0
    original = SRModel.optimize_parameters
    calls = []

    def signal_in_step_three(self, batch, current_iter):  # noqa: ANN001, ANN202
        calls.append(current_iter)
        if current_iter == 3 and calls.count(3) == 2:  # the middle micro-batch of iteration 3
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch, current_iter)

    monkeypatch.setattr(SRModel, "optimize_parameters", signal_in_step_three)
    cfg = write_options({**opt, "name": "interrupted"}, tmp_path / "interrupted.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "interrupted"
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["3.state"]  # after the whole step
    monkeypatch.setattr(SRModel, "optimize_parameters", original)
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path), "--auto_resume"]) == 0
    a, b = _weights(tmp_path, "straight", 6), _weights(tmp_path, "interrupted", 6)
    assert all(torch.equal(a[g][k], b[g][k]) for g in a for k in a[g])


def test_non_final_micro_batches_skip_the_all_reduce(data, tmp_path: Path) -> None:
    # DDP's no_sync around every micro-batch but the last (one process group of one rank suffices to see it)
    opt = parse_options(str(write_options(_options(data, "ddp", 2, 3), tmp_path / "d.yml")), is_train=True,
                        root=tmp_path)
    model = SRModel(opt, torch.device("cpu"))
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(model.networks["g"])
        model.train_networks["g"] = ddp
        synced = []
        for micro in range(3):
            with model.micro_batch(micro):
                synced.append(ddp.require_backward_grad_sync)
        assert synced == [False, False, True]
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("edit,message", [
    ({"train.accum_iter": 0}, "'train.accum_iter' must be >= 1"),
    ({"model_type": "RealESRNetModel"}, "does not support gradient accumulation"),
])
def test_bad_accumulation_options(data, tmp_path: Path, edit: dict, message: str) -> None:
    opt = _options(data, "bad", 2, 2)
    for key, value in edit.items():
        if key == "model_type":
            opt["model_type"] = value
        else:
            opt["train"][key.split(".")[1]] = value
    with pytest.raises(OptionsError, match=message):
        parse_options(str(write_options(opt, tmp_path / "bad.yml")), is_train=True, root=tmp_path)
