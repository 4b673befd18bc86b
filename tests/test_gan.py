"""Adversarial training: GANLoss numbers, the RealESRGANModel step, its options, exact resume, the degradation
hook and the no-reference scores used on real-world outputs.

The trainer is tested on paired data with ``high_order_degradation: false`` (any paired dataset), and once
on a RealESRGANDataset-style batch to prove the degradation step is wired in.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restoration.losses.gan_loss import GANLoss
from restoration.models import register_models
from restoration.registry import MODEL_REGISTRY
from restoration.cli.train import main as train_main
from tests.helpers import (assert_gan_resume_is_bit_exact, make_sr_pairs, torchrun_train, train_options,
                           write_options)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
register_models()

X = torch.tensor([[-2.0, -0.5], [0.25, 3.0]])


# ------------------------------------------------------------------ GANLoss against closed forms
def _bce(x: torch.Tensor, y: float) -> float:
    p = torch.sigmoid(x)
    return float((-(y * torch.log(p) + (1 - y) * torch.log(1 - p))).mean())


@pytest.mark.parametrize("gan_type, real, fake, gen_real", [
    ("vanilla", _bce(X, 1.0), _bce(X, 0.0), _bce(X, 1.0)),
    ("lsgan", float(((X - 1) ** 2).mean()), float((X**2).mean()), float(((X - 1) ** 2).mean())),
    ("wgan", -float(X.mean()), float(X.mean()), -float(X.mean())),
    ("wgan_softplus", float(torch.log1p(torch.exp(-X)).mean()), float(torch.log1p(torch.exp(X)).mean()),
     float(torch.log1p(torch.exp(-X)).mean())),
    ("hinge", float(torch.clamp(1 - X, min=0).mean()), float(torch.clamp(1 + X, min=0).mean()), -float(X.mean())),
])
def test_gan_loss_closed_forms(gan_type: str, real: float, fake: float, gen_real: float) -> None:
    loss = GANLoss(gan_type, loss_weight=0.1)
    assert float(loss(X, True, is_disc=True)) == pytest.approx(real, rel=1e-6)  # the critic's: unweighted
    assert float(loss(X, False, is_disc=True)) == pytest.approx(fake, rel=1e-6)
    assert float(loss(X, True)) == pytest.approx(0.1 * gen_real, rel=1e-6)  # the generator's: weighted


def test_gan_loss_labels_and_misuse() -> None:
    smooth = GANLoss("lsgan", real_label_val=0.9, fake_label_val=0.1)
    assert float(smooth(X, True, is_disc=True)) == pytest.approx(float(((X - 0.9) ** 2).mean()))
    assert float(smooth(X, False, is_disc=True)) == pytest.approx(float(((X - 0.1) ** 2).mean()))
    with pytest.raises(ValueError, match=r"gan_type must be one of \['vanilla', 'lsgan', 'wgan'"):
        GANLoss("lsgann")
    with pytest.raises(TypeError, match="configure it as train.gan_opt, not in train.losses"):
        GANLoss("vanilla")(X, X)  # what train.losses would call: (output, gt)


# ------------------------------------------------------------------ the trainer, directly
def _opt(**train: Any) -> dict[str, Any]:
    return {
        "scale": 2, "manual_seed": 0, "model_type": "RealESRGANModel",
        "network_g": {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 2},
        "network_d": {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4},
        "train": {"optim_g": {"type": "Adam", "lr": 1e-3}, "optim_d": {"type": "Adam", "lr": 1e-3}, "total_iter": 4,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}, "high_order_degradation": False,
                  "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1}, **train},
    }


def _model(**train: Any) -> Any:
    torch.manual_seed(0)
    return MODEL_REGISTRY.get("RealESRGANModel")(_opt(**train), torch.device("cpu"))


def _batch(usm: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    batch = {"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 16, 16, generator=g)}
    if usm:
        batch["gt_usm"] = torch.rand(2, 3, 16, 16, generator=g)
    return batch


def _params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_one_iteration_logs_every_value_with_basicsr_targets_and_weights() -> None:
    model = _model()
    batch = _batch(usm=True)  # l1_gt_usm (default true): L1 against gt_usm; gan_gt_usm (false): D's real is gt
    d0 = {k: v.clone() for k, v in model.networks["d"].state_dict().items()}
    with torch.no_grad():
        output = model.generate(batch["lq"])
        d_ref = MODEL_REGISTRY.get("RealESRGANModel")(_opt(), torch.device("cpu")).networks["d"]
        d_ref.load_state_dict(d0)
        fake_logits = d_ref(output)  # g's step: one power iteration of the critic, as in the trainer
    log = model.optimize_parameters(model.feed_data(batch), 1)
    assert set(log) == {"l_pix", "l_g_gan", "grad_norm", "l_d_real", "l_d_fake", "grad_norm_d", "out_d_real",
                        "out_d_fake"}
    assert float(log["l_pix"]) == pytest.approx(float(F.l1_loss(output, batch["gt_usm"])), rel=1e-6)
    assert float(log["l_g_gan"]) == pytest.approx(0.1 * _bce(fake_logits, 1.0), rel=1e-5)
    with torch.no_grad():
        real_logits = d_ref(batch["gt"])  # d's step: real = gt, fake = the same output, unweighted
        fake_logits_d = d_ref(output)
    assert float(log["out_d_real"]) == pytest.approx(float(real_logits.mean()), rel=1e-5)
    assert float(log["l_d_real"]) == pytest.approx(_bce(real_logits, 1.0), rel=1e-5)
    assert float(log["l_d_fake"]) == pytest.approx(_bce(fake_logits_d, 0.0), rel=1e-5)
    assert all(p.requires_grad for p in model.networks["d"].parameters())  # the critic is trainable again


def test_net_d_init_iters_trains_only_d_first_and_keeps_g_schedule() -> None:
    model = _model(net_d_init_iters=1, scheduler={"type": "MultiStepLR", "milestones": [1], "gamma": 0.5})
    g0, d0 = _params(model.networks["g"]), _params(model.networks["d"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log = model.optimize_parameters(model.feed_data(_batch()), 1)
    # g's schedule steps before g's optimizer on purpose: torch's warning about that order is not shown
    assert not [w for w in caught if "lr_scheduler" in str(w.message)], [str(w.message) for w in caught]
    assert "l_g_gan" not in log and "l_d_real" in log
    assert all(torch.equal(a, b) for a, b in zip(g0, _params(model.networks["g"])))
    assert not all(torch.equal(a, b) for a, b in zip(d0, _params(model.networks["d"])))
    assert model.optimizers["g"].param_groups[0]["lr"] == model.optimizers["d"].param_groups[0]["lr"] == 5e-4
    log = model.optimize_parameters(model.feed_data(_batch()), 2)
    assert "l_g_gan" in log
    assert not all(torch.equal(a, b) for a, b in zip(g0, _params(model.networks["g"])))


def test_net_d_iters_steps_g_every_kth_iteration_and_the_ema_every_iteration() -> None:
    """BasicSR: d steps every iteration, g when iter % net_d_iters == 0, the EMA of g every iteration."""
    model = _model(net_d_iters=2, ema_decay=0.5)
    ema = model.emas["g"].module
    g0 = _params(model.networks["g"])
    log = model.optimize_parameters(model.feed_data(_batch()), 1)  # 1 % 2: g waits, d steps
    assert "l_g_gan" not in log and "grad_norm_d" in log
    assert all(torch.equal(a, b) for a, b in zip(g0, _params(model.networks["g"])))
    log = model.optimize_parameters(model.feed_data(_batch()), 2)  # 2 % 2 == 0: g steps too
    assert "l_g_gan" in log and "grad_norm" in log
    g2 = _params(model.networks["g"])
    assert not all(torch.equal(a, b) for a, b in zip(g0, g2))
    with torch.no_grad():
        for p in ema.parameters():
            p.zero_()  # an EMA that differs from g, so an update shows
    model.optimize_parameters(model.feed_data(_batch()), 3)  # g waits again; its EMA still moves
    assert all(torch.equal(a, b) for a, b in zip(g2, _params(model.networks["g"])))
    torch.testing.assert_close(list(ema.parameters()), [0.5 * p for p in g2])  # 0.5 * 0 + 0.5 * g


def test_fp16_has_one_grad_scaler_per_network_and_an_overflow_of_d_backs_off_only_d() -> None:
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1))
    except RuntimeError as exc:  # CPU fp16 autocast missing in this torch
        pytest.skip(f"fp16 autocast on the CPU: {exc}")
    model = _model(mixed_precision="fp16")
    scalers = model.scalers
    assert scalers["g"] is not scalers["d"] and scalers["g"].is_enabled() and scalers["d"].is_enabled()
    log = model.optimize_parameters(model.feed_data(_batch()), 1)
    assert all(torch.isfinite(v) for v in log.values())
    scale_g, scale_d = scalers["g"].get_scale(), scalers["d"].get_scale()
    loss = model.gan_loss

    def overflowing_critic_loss(pred: torch.Tensor, target: bool, is_disc: bool = False) -> torch.Tensor:
        out = loss(pred, target, is_disc=is_disc)
        return out * float("inf") if is_disc else out

    model.gan_loss = overflowing_critic_loss
    g0, d0 = _params(model.networks["g"]), _params(model.networks["d"])
    log = model.optimize_parameters(model.feed_data(_batch()), 2)
    assert scalers["d"].get_scale() == scale_d * 0.5 and scalers["g"].get_scale() == scale_g  # d backed off alone
    assert "skipped" in log
    assert all(torch.equal(a, b) for a, b in zip(d0, _params(model.networks["d"])))  # d's step skipped
    assert not all(torch.equal(a, b) for a, b in zip(g0, _params(model.networks["g"])))  # g's step taken


def test_g_step_leaves_no_gradient_on_the_critic() -> None:
    model = _model()
    seen: dict[str, list] = {}
    step = model.backward_only

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        out = step(name, *args, **kwargs)
        if name == "g":  # right after g's backward: the frozen critic took no gradient
            seen["d"] = [p.grad for p in model.networks["d"].parameters()]
            seen["requires_grad"] = [p.requires_grad for p in model.networks["d"].parameters()]
        return out

    model.backward_only = spy
    model.optimize_parameters(model.feed_data(_batch()), 1)
    assert seen["d"] and all(g is None for g in seen["d"]) and not any(seen["requires_grad"])


def test_bf16_autocast_trains_with_one_scaler_per_network() -> None:
    model = _model(mixed_precision="bf16")
    log = model.optimize_parameters(model.feed_data(_batch()), 1)
    assert all(torch.isfinite(v) for v in log.values())
    assert set(model.scalers) == {"g", "d"}


def test_upstream_names_are_aliases_not_copies() -> None:
    gan = MODEL_REGISTRY.get("RealESRGANModel")
    assert MODEL_REGISTRY.get("RealHATGANModel") is gan and MODEL_REGISTRY.get("SRGANModel") is gan
    assert MODEL_REGISTRY.get("RealHATMSEModel") is MODEL_REGISTRY.get("RealESRNetModel")


# ------------------------------------------------------------------ the degradation step
def test_a_realesrgan_batch_is_degraded_on_the_device_and_paired_data_is_refused_then() -> None:
    from restoration.errors import DataError

    model = _model(high_order_degradation=True, gt_size=16, queue_size=0)
    pulse = torch.zeros(2, 21, 21)
    pulse[:, 10, 10] = 1
    batch = {"gt": torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)), "kernel1": pulse,
             "kernel2": pulse, "sinc_kernel": pulse}
    out = model.degrade(batch, 3)
    assert out["lq"].shape == (2, 3, 8, 8) and out["gt"].shape == out["gt_usm"].shape == (2, 3, 16, 16)
    again = model.degrade(batch, 3)  # seeded from (manual_seed, iteration, rank): a resumed run repeats it
    assert torch.equal(out["lq"], again["lq"])
    log = model.optimize_parameters(batch, 4)
    assert "l_d_fake" in log
    with pytest.raises(DataError, match="has no 'kernel1'"):
        model.degrade(_batch(), 5)


# ------------------------------------------------------------------ options
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=4, size=32, scale=2)


def _file_options(data: tuple[Path, Path], name: str, **extra: Any) -> dict[str, Any]:
    opt = train_options(data, name, model_type="RealESRGANModel", **extra)
    opt["network_g"] = {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 2}
    opt["network_d"] = {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4}
    opt["train"].update({"optim_d": {"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]}, "high_order_degradation": False,
                         "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1}})
    return opt


def _problems(opt: dict[str, Any], tmp_path: Path) -> str:
    from restoration.options.parse import OptionsError, parse_options

    with pytest.raises(OptionsError) as err:
        parse_options(str(write_options(opt, tmp_path / "bad.yml")), is_train=True, root=tmp_path)
    assert not (tmp_path / "experiments").exists()
    return str(err.value)


def test_bad_gan_options_are_each_one_problem(data, tmp_path: Path) -> None:
    opt = _file_options(data, "bad")
    del opt["train"]["optim_d"]
    opt["train"]["net_d_iters"] = 0
    opt["train"]["gan_opt"] = {"type": "GANLoss", "gan_type": "lsgann", "los_weight": 1}
    text = _problems(opt, tmp_path)
    assert text.splitlines()[1:] == [
        "  - 'train': missing required key 'optim_d'",
        "  - 'train' (RealESRGANModel): net_d_iters must be >= 1, got 0",
        "  - 'train.gan_opt' (GANLoss) has no argument 'los_weight' (did you mean 'loss_weight'?)",
        "  - 'train.gan_opt' (GANLoss) accepts: gan_type, real_label_val, fake_label_val, loss_weight",
        "  - 'train.gan_opt': gan_type must be one of ['vanilla', 'lsgan', 'wgan', 'wgan_softplus', 'hinge'], "
        "got 'lsgann'",
    ]


def test_a_gan_trainer_without_a_discriminator_is_an_options_error(data) -> None:
    from restoration.options.parse import OptionsError

    opt = _opt()
    del opt["network_d"]
    with pytest.raises(OptionsError, match="RealESRGANModel needs 'network_d'"):
        MODEL_REGISTRY.get("RealESRGANModel")(opt, torch.device("cpu"))


@pytest.mark.parametrize("model_type", ["RealESRNetModel", "RealESRGANModel"])
def test_a_queue_size_not_divisible_by_the_batch_size_is_an_options_error(data, tmp_path: Path,
                                                                          model_type: str) -> None:
    opt = _file_options(data, "queue") if model_type == "RealESRGANModel" else train_options(data, "queue")
    opt["model_type"] = model_type
    opt["datasets"]["train"] = {"type": "RealESRGANDataset", "dataroot_gt": str(data[0]), "io_backend": {"type": "disk"},
                                "crop_pad_size": 32, "num_worker_per_gpu": 0, "batch_size_per_gpu": 3}
    opt["train"].update(high_order_degradation=True, gt_size=16, queue_size=8)
    text = _problems(opt, tmp_path)  # before anything is built or written
    assert text.splitlines()[1:] == [
        f"  - 'train' ({model_type}): queue_size 8 must be a multiple of the per-GPU batch size 3 (e.g. 6)"]
    opt["train"]["queue_size"] = 6
    from restoration.options.validate import validate_options

    assert validate_options(opt, is_train=True) == []
    opt["train"].update(queue_size=8, high_order_degradation=False)  # paired data: no pool, nothing to check
    assert not [p for p in validate_options(opt, is_train=True) if "queue_size" in p]


# ------------------------------------------------------------------ checkpoint and exact resume
def test_interrupted_and_resumed_equals_straight_bit_for_bit(data, tmp_path: Path) -> None:
    opt = _file_options(data, "straight", **{"logger.save_checkpoint_freq": 2, "val": None})
    assert train_main(["-opt", str(write_options(opt, tmp_path / "s.yml")), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "straight"
    state = torch.load(exp / "training_states" / "6.state", weights_only=True)
    for key in ("net_g", "net_d", "optimizer", "optimizer_d", "scheduler", "scheduler_d", "scaler_d", "ema"):
        assert key in state, key
    log = next(exp.glob("train_straight_*.log")).read_text()
    for name in ("l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake", "grad_norm_d"):
        assert name in log, name

    assert_gan_resume_is_bit_exact(exp, opt, tmp_path, last=6)  # stopped after iteration 4, resumed


# ------------------------------------------------------------------ no-reference scores
def test_noise_sigma_estimates_the_added_noise_and_sharpness_orders_blur() -> None:
    from restoration.metrics.no_reference import calculate_noise_sigma, calculate_sharpness

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    flat = np.repeat((60 + 0.5 * xx + 0.3 * yy)[..., None], 3, axis=2)  # linear: the mask cancels it exactly
    assert calculate_noise_sigma(flat, test_y_channel=False) == pytest.approx(0.0, abs=1e-9)
    noisy = flat + rng.normal(0, 10, flat.shape[:2])[..., None]
    assert calculate_noise_sigma(noisy, None, test_y_channel=False) == pytest.approx(10.0, rel=0.05)
    edges = np.repeat(((xx // 8 + yy // 8) % 2 * 200.0)[..., None], 3, axis=2)
    blurred = (edges + np.roll(edges, 1, 0) + np.roll(edges, 1, 1) + np.roll(edges, (1, 1), (0, 1))) / 4
    assert calculate_sharpness(edges.astype(np.uint8)) > calculate_sharpness(blurred.astype(np.uint8)) > 0
    assert calculate_sharpness.no_reference and calculate_noise_sigma.no_reference


def test_gan_with_the_degradation_on_two_gloo_processes(data, tmp_path: Path) -> None:
    """DDP with both networks and the device-side degradation: each rank keeps its own training-pair pool,
    and a 2-process run stopped at iteration 2 and resumed equals the straight run bit for bit."""
    opt = _file_options(data, "ddp_gan", **{"val": None, "train.total_iter": 4, "logger.save_checkpoint_freq": 2})
    opt["datasets"]["train"] = {"type": "RealESRGANDataset", "dataroot_gt": str(data[0]), "io_backend": {"type": "disk"},
                                "crop_pad_size": 32, "num_worker_per_gpu": 0, "batch_size_per_gpu": 1}
    opt["train"].update(high_order_degradation=True, gt_size=16, queue_size=2)

    run = torchrun_train(write_options(opt, tmp_path / "ddp.yml"), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    exp = tmp_path / "experiments" / "ddp_gan"
    state = torch.load(exp / "training_states" / "2.state", weights_only=True)
    pools = [r["pair_pool"] for r in state["rank_states"]]
    assert state["world_size"] == 2 and len(pools) == 2 and not torch.equal(pools[0]["gt"], pools[1]["gt"])

    resumed = tmp_path / "resumed"
    shutil.copytree(exp, resumed)
    (resumed / "training_states" / "4.state").unlink()
    opt2 = {**opt, "name": "ddp_gan_resumed", "path": {"experiments_root": str(resumed)}}
    run = torchrun_train(write_options(opt2, tmp_path / "ddp2.yml"), tmp_path, "--auto_resume")
    assert run.returncode == 0, run.stderr[-3000:]
    a = torch.load(exp / "training_states" / "4.state", weights_only=True)
    b = torch.load(resumed / "training_states" / "4.state", weights_only=True)
    for key in ("net_g", "net_d", "ema"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f"{key}.{name} differs after a 2-process resume"


def test_an_iteration_reads_the_device_once_for_both_networks() -> None:
    """g's and d's finite-gradient checks share one read (on a GPU: one host sync instead of two)."""
    from tests.test_gpu_readiness import count_host_reads

    model = _model()
    model.optimize_parameters(model.feed_data(_batch()), 1)  # optimizer state, EMA
    with count_host_reads() as reads:
        for it in (2, 3):
            log = model.optimize_parameters(model.feed_data(_batch()), it)
    assert len(reads) == 2, reads
    assert {"grad_norm", "grad_norm_d"} <= set(log)


def test_non_finite_generator_loss_skips_g_and_still_steps_d() -> None:
    model = _model()
    model.optimize_parameters(model.feed_data(_batch()), 1)
    g0, d0 = _params(model.networks["g"]), _params(model.networks["d"])
    batch = _batch(usm=True)
    batch["gt_usm"][0, 0, 0, 0] = float("nan")  # g's L1 target (l1_gt_usm); d's real is gt (gan_gt_usm off)
    log = model.optimize_parameters(model.feed_data(batch), 2)
    assert float(log["skipped"]) == 1.0 and "grad_norm" not in log and "grad_norm_d" in log
    assert all(torch.equal(a, b) for a, b in zip(g0, _params(model.networks["g"])))
    assert not all(torch.equal(a, b) for a, b in zip(d0, _params(model.networks["d"])))
