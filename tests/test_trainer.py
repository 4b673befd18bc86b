"""SRModel and schedules: EMA, clipping, non-finite skips, mixed precision, BasicSR schedule values."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from restoration.optim.schedulers import build_scheduler, cosine_restart_factor, multistep_factor
from restoration.models.sr_model import SRModel


def _opt(**train: Any) -> dict[str, Any]:
    base = {
        "optim_g": {"type": "SGD", "lr": 1.0},
        "total_iter": 10,
        "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0},
    }
    base.update(train)
    return {
        "name": "t", "scale": 2,
        "network_g": {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 2},
        "train": base,
    }


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 16, 16, generator=g)}


def _params(model: SRModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}


def test_multistep_restart_matches_basicsr() -> None:
    assert [multistep_factor(i, [2, 4], 0.5) for i in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    # restart at 6 with weight 0.5: back to 0.5, then milestones after the restart decay again
    f = [multistep_factor(i, [2, 8], 0.5, restarts=[6], restart_weights=[0.5]) for i in range(10)]
    assert f == [1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_cosine_restart_matches_closed_form() -> None:
    periods, weights, eta = [10, 20], [1.0, 0.5], 1e-3
    for it, expect in [(0, 1.0), (5, eta + 0.5 * (1 - eta)), (10, 0.5), (20, eta + 0.5 * 0.5 * (1 - eta)),
                       (30, eta)]:
        if it == 10:  # first iteration of the second period: restart at weight 0.5 (plus eta_min)
            expect = eta + 0.5 * (1 - eta)
        assert cosine_restart_factor(it, 1.0, periods, weights, eta) == pytest.approx(expect), it


def test_warmup_ramps_linearly_then_follows_schedule() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2.0)
    sched = build_scheduler(opt, {"type": "MultiStepLR", "milestones": [6], "gamma": 0.1}, warmup_iter=4)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 0.2, 0.2])


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_tracks_parameters_and_buffers(warmup: bool) -> None:
    model = SRModel(_opt(ema_decay=0.5, ema_warmup=warmup), torch.device("cpu"))
    before = _params(model)
    model.optimize_parameters(_batch(0), 1)  # the warm-up copies the model at its first update; BasicSR's does not
    after1 = _params(model)
    ema1 = {k: v.clone() for k, v in model.ema.module.state_dict().items()}
    for k, v in ema1.items():
        assert torch.allclose(v, after1[k] if warmup else 0.5 * before[k] + 0.5 * after1[k], atol=1e-6), k
    model.optimize_parameters(_batch(1), 2)
    after2 = _params(model)
    decay = 1 - 2 ** (-2 / 3) if warmup else 0.5  # the warm-up's decay at iteration 2 (0.37), below ema_decay
    for k, v in model.ema.module.state_dict().items():
        assert torch.allclose(v, decay * ema1[k] + (1 - decay) * after2[k], atol=1e-6), k
    assert model.eval_net is model.ema.module


def test_gradient_clipping_bounds_the_update() -> None:
    model = SRModel(_opt(grad_clip=1e-3), torch.device("cpu"))
    before = _params(model)
    log = model.optimize_parameters(_batch(), 1)
    delta = torch.sqrt(sum(((_params(model)[k] - before[k]) ** 2).sum() for k in before))
    assert log["grad_norm"] > 1e-2  # the raw gradient was large ...
    assert float(delta) == pytest.approx(1e-3, rel=1e-3)  # ... and SGD(lr=1) moved by exactly the clip norm


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_loss_skips_step(bad: float, caplog) -> None:
    model = SRModel(_opt(ema_decay=0.9, optim_g={"type": "Adam", "lr": 1e-2}), torch.device("cpu"))
    model.optimize_parameters(_batch(), 1)
    before, ema_before = _params(model), {k: v.clone() for k, v in model.ema.module.state_dict().items()}
    batch = _batch()
    batch["gt"][0, 0, 0, 0] = bad
    with caplog.at_level("WARNING", logger="restoration"):
        log = model.optimize_parameters(batch, 2)
    assert log["skipped"] == 1.0 and model.skipped_steps == 1
    assert "non-finite loss" in caplog.text and "iter 2" in caplog.text
    assert all(torch.equal(before[k], v) for k, v in _params(model).items())
    assert all(torch.equal(ema_before[k], v) for k, v in model.ema.module.state_dict().items())
    assert model.scheduler.last_epoch == 2  # the schedule stays aligned with the iteration counter
    log = model.optimize_parameters(_batch(), 3)  # training continues normally
    assert "skipped" not in log and math.isfinite(log["l_pix"])


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_step(precision: str) -> None:
    model = SRModel(_opt(mixed_precision=precision, optim_g={"type": "Adam", "lr": 1e-3}), torch.device("cpu"))
    before = _params(model)
    log = model.optimize_parameters(_batch(), 1)
    assert math.isfinite(log["l_pix"])
    assert model.scaler.is_enabled() == (precision == "fp16")
    changed = any(not torch.equal(before[k], v) for k, v in _params(model).items())
    # fp16's GradScaler may skip the very first step if its initial scale overflows; bf16 always steps
    assert changed or precision == "fp16"


def test_channels_last_gives_the_same_step() -> None:
    torch.manual_seed(0)
    a = SRModel(_opt(), torch.device("cpu"))
    torch.manual_seed(0)
    b = SRModel(_opt(channels_last=True), torch.device("cpu"))
    la = a.optimize_parameters(a.feed_data(_batch()), 1)
    lb = b.optimize_parameters(b.feed_data(_batch()), 1)
    assert float(la["l_pix"]) == pytest.approx(float(lb["l_pix"]), rel=1e-5)
    for (k, va), vb in zip(_params(a).items(), _params(b).values()):
        assert torch.allclose(va, vb, atol=1e-5), k


def test_training_state_round_trip_restores_lr() -> None:
    opt = _opt(optim_g={"type": "Adam", "lr": 1.0}, scheduler={"type": "MultiStepLR", "milestones": [2], "gamma": 0.1})
    a = SRModel(opt, torch.device("cpu"))
    for i in range(3):
        a.optimize_parameters(_batch(i), i + 1)
    b = SRModel(opt, torch.device("cpu"))
    b.load_training_state(a.training_state())
    assert b.current_lr() == pytest.approx(0.1) and b.scheduler.last_epoch == 3
    la, lb = a.optimize_parameters(_batch(9), 4), b.optimize_parameters(_batch(9), 4)
    assert {k: float(v) for k, v in la.items()} == {k: float(v) for k, v in lb.items()}


def test_training_pads_to_the_network_multiple() -> None:
    opt = _opt()
    opt["network_g"] = {"type": "HAT", "upscale": 2, "in_chans": 3, "img_size": 8, "window_size": 4,
                        "compress_ratio": 2, "squeeze_factor": 2, "depths": [1], "embed_dim": 8,
                        "num_heads": [2], "mlp_ratio": 2, "upsampler": "pixelshuffle", "resi_connection": "1conv"}
    model = SRModel(opt, torch.device("cpu"))
    assert model.spec.size_multiple == 4
    batch = {"lq": torch.rand(1, 3, 6, 7), "gt": torch.rand(1, 3, 12, 14)}  # not multiples of the window
    log = model.optimize_parameters(batch, 1)
    assert math.isfinite(log["l_pix"])
    assert model.inference(batch["lq"]).shape == (1, 3, 12, 14)


@pytest.mark.slow
def test_torch_compile_step_equals_eager() -> None:
    """``train.compile: true`` computes the same training step (compiling takes a minute on the CPU)."""
    torch.manual_seed(0)
    eager = SRModel(_opt(optim_g={"type": "Adam", "lr": 1e-3}), torch.device("cpu"))
    torch.manual_seed(0)
    compiled = SRModel(_opt(optim_g={"type": "Adam", "lr": 1e-3}, compile=True), torch.device("cpu"))
    for i in range(2):
        le = eager.optimize_parameters(_batch(i), i + 1)
        lc = compiled.optimize_parameters(_batch(i), i + 1)
        assert float(lc["l_pix"]) == pytest.approx(float(le["l_pix"]), rel=1e-5)
    for (k, va), vb in zip(_params(eager).items(), _params(compiled).values()):
        assert torch.allclose(va, vb, atol=1e-5), k


def test_logs_say_which_weights_are_scored(tmp_path) -> None:  # noqa: ANN001
    # validation names the EMA copy and its settings; test.py and infer name the checkpoint entry and why
    from restoration.cli.train import main as train_main
    from restoration.utils.weights import entry_note
    from tests.helpers import make_sr_pairs, train_options, write_options

    data = make_sr_pairs(tmp_path / "data", n=2, size=32, scale=2)
    opt = train_options(data, "which", **{"train.ema_decay": 0.999})
    assert train_main(["-opt", str(write_options(opt, tmp_path / "w.yml")), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "which"
    log = next(exp.glob("train_which_*.log")).read_text()
    assert "validation tiny_val @ iter 6: psnr" in log
    assert "; weights: params_ema (the EMA of net_g, decay 0.999, warm-up)" in log
    weights = str(exp / "models" / "net_g_6.pth")
    assert entry_note(weights) == "entry 'params_ema' (the EMA weights; chosen automatically: params_ema, then params)"
    assert entry_note(weights, "params") == "entry 'params' (the trained weights, no EMA; given)"
