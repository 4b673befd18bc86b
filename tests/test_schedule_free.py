"""Schedule-free AdamW: validation and saved weights use its averaged point, training resumes bit-exactly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from restoration.models.sr_model import SRModel
from restoration.options.parse import OptionsError, parse_options
from restoration.cli.train import main as train_main
from tests.helpers import make_sr_pairs, train_options, write_options

pytest.importorskip("schedulefree", reason="the 'optim' extra (schedulefree) is not installed")

BETA1 = 0.9


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=4, size=32, scale=2)


def _options(data, name: str) -> dict:  # noqa: ANN001
    opt = train_options(data, name, **{"logger.save_checkpoint_freq": 100, "val.val_freq": 3})
    opt["train"]["optim_g"] = {"type": "AdamWScheduleFree", "lr": 2e-3, "betas": [BETA1, 0.999], "warmup_steps": 2}
    opt["train"].pop("scheduler")
    opt["train"]["warmup_iter"] = -1
    return opt


def test_validation_and_saved_weights_use_the_averaged_point_and_resume_is_exact(data, tmp_path: Path,
                                                                                  monkeypatch) -> None:
    seen: dict[int, dict[str, torch.Tensor]] = {}
    original_inference = SRModel.inference

    def recording_inference(self, lq):  # noqa: ANN001, ANN202
        seen.setdefault(len(seen), {k: v.clone() for k, v in self.net_g.state_dict().items()})
        return original_inference(self, lq)

    monkeypatch.setattr(SRModel, "inference", recording_inference)
    straight = write_options(_options(data, "straight"), tmp_path / "straight.yml")
    assert train_main(["-opt", str(straight), "--root", str(tmp_path)]) == 0
    monkeypatch.setattr(SRModel, "inference", original_inference)
    exp = tmp_path / "experiments" / "straight"
    saved = torch.load(exp / "models" / "net_g_6.pth", weights_only=True)["params"]
    state = torch.load(exp / "training_states" / "6.state", weights_only=True)
    y = state["net_g"]  # the training point
    z = {k: s["z"] for k, s in zip(y, state["optimizer"]["state"].values())}  # the optimizer's base sequence
    name = next(k for k in y if k.endswith("weight") and y[k].dim() > 1)
    # schedule-free's evaluation point x = y + (1 - 1/beta1) (z - y), what optimizer.eval() computes
    x = torch.lerp(y[name], z[name], 1 - 1 / BETA1)
    torch.testing.assert_close(saved[name], x, rtol=1e-6, atol=1e-7)
    assert not torch.equal(saved[name], y[name])  # the saved weights are not the training point
    validated = seen[max(seen)]  # the last validation ran at iteration 6, after the save
    assert torch.equal(validated[name], saved[name])

    # SIGTERM during iteration 4 (after the validation at 3), --auto_resume: the same weights and state at 6
    original = SRModel.optimize_parameters

    def step_then_signal(self, batch, current_iter):  # noqa: ANN001, ANN202
        out = original(self, batch, current_iter)
        if current_iter == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(SRModel, "optimize_parameters", step_then_signal)
    cfg = write_options(_options(data, "interrupted"), tmp_path / "interrupted.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    monkeypatch.setattr(SRModel, "optimize_parameters", original)
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path), "--auto_resume"]) == 0
    resumed = tmp_path / "experiments" / "interrupted"
    again = torch.load(resumed / "models" / "net_g_6.pth", weights_only=True)["params"]
    assert all(torch.equal(again[k], saved[k]) for k in saved)
    state2 = torch.load(resumed / "training_states" / "6.state", weights_only=True)
    assert all(torch.equal(state2["net_g"][k], y[k]) for k in y)


@pytest.mark.parametrize("edit,message", [
    ({"scheduler": {"type": "MultiStepLR", "milestones": [3]}}, "schedule-free: remove 'train.scheduler'"),
    ({"warmup_iter": 2}, "use its own 'warmup_steps' instead of 'train.warmup_iter'"),
])
def test_schedule_free_refuses_a_schedule(data, tmp_path: Path, edit: dict, message: str) -> None:
    opt = _options(data, "sf_bad")
    opt["train"].update(edit)
    with pytest.raises(OptionsError, match=message):
        parse_options(str(write_options(opt, tmp_path / "bad.yml")), is_train=True, root=tmp_path)


def test_evaluation_point_gives_back_the_training_point_bit_for_bit(data, tmp_path: Path) -> None:
    # optimizer.train() after optimizer.eval() is not exact in floating point (checked below), so the block
    # restores the copied training point: otherwise every validation would nudge the trained weights
    opt = parse_options(str(write_options(_options(data, "sf_unit"), tmp_path / "u.yml")), is_train=True,
                        root=tmp_path)
    model = SRModel(opt, torch.device("cpu"))
    g = model.networks["g"]
    for _ in range(3):
        g.zero_grad()
        g(torch.rand(2, 3, 8, 8)).square().mean().backward()
        model.optimizers["g"].step()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    with model.evaluation_point():
        inside = {k: v.clone() for k, v in g.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())
    assert any(not torch.equal(before[k], inside[k]) for k in before)
    optimizer = model.optimizers["g"]
    optimizer.eval()
    optimizer.train()
    assert any(not torch.equal(before[k], v) for k, v in g.state_dict().items())  # the round trip alone drifts
