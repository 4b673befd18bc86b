"""The real-world SR GAN stage on one GPU: ``RealESRGANDataset`` kernels from the workers, the batched
Real-ESRGAN degradation (torch JPEG included) and its training-pair pool on the device, generator and
discriminator each with its own optimizer and GradScaler, in fp32, bf16 and fp16.

Part of the GPU proof (``python -m pytest -m cuda``, docs/gpu.md). The same configuration also runs on the
CPU in the default suite (the ``cpu`` case), so the GPU test's options cannot rot while no GPU is around.
ESRGANModel's paired GAN step (RRDBNet + VGGStyleDiscriminator) is a GPU-only case in fp32 and bf16.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from restoration.data.degradations.realesrgan import degradation_generator, realesrgan_degrade
from restoration.cli.train import main as train_main
from tests.helpers import make_sr_pairs, train_options, write_options

_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (GPU proof: pytest -m cuda)")
_GAN_LINE = re.compile(r"\| l_pix: (\S+) .*\| l_g_gan: (\S+) .*\| l_d_real: (\S+) \| l_d_fake: (\S+)")


@pytest.fixture(scope="module")
def gt_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hr, _ = make_sr_pairs(tmp_path_factory.mktemp("realsr_gpu"), n=4, size=48, scale=4)
    return hr


def gan_options(gt: Path, name: str, num_gpu: int, precision: str | bool) -> dict[str, Any]:
    """8 iterations of a tiny x4 RealESRGANModel run: the x4plus degradation on 48² GT crops, gt_size 32,
    a pool of 2 batches, SwinIR x4 + UNetDiscriminatorSN, checkpoint at 8."""
    opt = train_options((gt, gt), name, **{"num_gpu": num_gpu, "scale": 4, "model_type": "RealESRGANModel",
                                           "val": None, "train.total_iter": 8, "train.warmup_iter": -1,
                                           "logger.save_checkpoint_freq": 8, "logger.use_tb_logger": False})
    opt["datasets"]["train"] = {"type": "RealESRGANDataset", "dataroot_gt": str(gt), "io_backend": {"type": "disk"},
                                "crop_pad_size": 48, "num_worker_per_gpu": 1, "batch_size_per_gpu": 2}
    opt["network_g"].update(upscale=4, upsampler="nearest+conv")
    opt["network_d"] = {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 8, "skip_connection": True}
    opt["train"].update(optim_d={"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]}, high_order_degradation=True,
                        gt_size=32, queue_size=4, mixed_precision=precision,
                        gan_opt={"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1},
                        scheduler={"type": "MultiStepLR", "milestones": [6], "gamma": 0.5})
    return opt


def train_eight_gan_iterations(opt: dict, tmp_path: Path, device: str) -> tuple[Path, dict]:
    """Train ``opt`` (8 iterations) through train.py; the log names ``device`` and every logged GAN loss is finite.
    Returns the experiment folder and its ``8.state``."""
    name = opt["name"]
    assert train_main(["-opt", str(write_options(opt, tmp_path / "o.yml")), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / name
    log = next(exp.glob(f"train_{name}_*.log")).read_text()
    assert f"device {device}" in log
    values = [tuple(float(v) for v in m) for m in _GAN_LINE.findall(log)]
    assert len(values) == 8 and all(math.isfinite(v) for row in values for v in row), values
    return exp, torch.load(exp / "training_states" / "8.state", weights_only=True, map_location="cpu")


@pytest.mark.parametrize("device, precision", [
    pytest.param("cpu", False, id="cpu-fp32"),
    pytest.param("cuda", False, id="cuda-fp32", marks=[pytest.mark.cuda, _CUDA]),
    pytest.param("cuda", "bf16", id="cuda-bf16", marks=[pytest.mark.cuda, _CUDA]),
    pytest.param("cuda", "fp16", id="cuda-fp16", marks=[pytest.mark.cuda, _CUDA]),
])
def test_gan_stage_trains_with_the_degradation_on_the_device(gt_folder: Path, tmp_path: Path, device: str,
                                                              precision: str | bool) -> None:
    name = f"realsr_{device}_{precision or 'fp32'}"
    _, state = train_eight_gan_iterations(gan_options(gt_folder, name, 1 if device == "cuda" else 0, precision),
                                          tmp_path, device)
    pool = state["rank_states"][0]["pair_pool"]
    assert pool["ptr"] == 4 and pool["lq"].shape == (4, 3, 8, 8) and pool["gt"].shape == (4, 3, 32, 32)
    assert all(torch.isfinite(v).all() for v in state["net_d"].values() if v.is_floating_point())
    # one GradScaler per network, enabled for fp16 only (its scale saved for resume)
    assert bool(state["scaler"]) == bool(state["scaler_d"]) == (precision == "fp16")


@pytest.fixture(scope="module")
def pairs_128(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("esrgan_gpu"), n=4, size=128, scale=4)


def esrgan_options(pairs: tuple[Path, Path], name: str, num_gpu: int, precision: str | bool) -> dict[str, Any]:
    """8 iterations of a tiny x4 ESRGANModel run (BasicSR's relativistic GAN step on paired data): RRDBNet (8
    features, 1 block) + VGGStyleDiscriminator whose input_size is the GT patch (128, as ESRGAN's files pair
    them), batch 2, EMA, checkpoint at 8."""
    opt = train_options(pairs, name, **{"num_gpu": num_gpu, "scale": 4, "model_type": "ESRGANModel", "val": None,
                                        "train.total_iter": 8, "train.warmup_iter": -1,
                                        "logger.save_checkpoint_freq": 8, "logger.use_tb_logger": False})
    opt["datasets"]["train"].update(gt_size=128)
    del opt["datasets"]["val_1"]
    opt["network_g"] = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 8,
                        "num_block": 1, "num_grow_ch": 4}
    opt["network_d"] = {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 8, "input_size": 128}
    opt["train"].update(optim_d={"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]}, mixed_precision=precision,
                        pixel_opt={"type": "L1Loss", "loss_weight": 1e-2},
                        gan_opt={"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 5e-3},
                        scheduler={"type": "MultiStepLR", "milestones": [6], "gamma": 0.5})
    return opt


def run_esrgan_step(pairs: tuple[Path, Path], tmp_path: Path, device: str, precision: str | bool) -> None:
    """Train :func:`esrgan_options` on ``device`` through train.py and check its log, state and weight files."""
    name = f"esrgan_{device}_{precision or 'fp32'}"
    exp, state = train_eight_gan_iterations(esrgan_options(pairs, name, 1 if device == "cuda" else 0, precision),
                                            tmp_path, device)
    for key in ("net_g", "net_d", "ema"):
        assert all(torch.isfinite(v).all() for v in state[key].values() if v.is_floating_point()), key
    assert not state["scaler"] and not state["scaler_d"]  # GradScalers are for fp16 only
    net_d = torch.load(exp / "models" / "net_d_8.pth", weights_only=True, map_location="cpu")
    assert all(torch.equal(v, state["net_d"][k]) for k, v in net_d["params"].items())


@pytest.mark.cuda
@_CUDA
@pytest.mark.parametrize("precision", [pytest.param(False, id="fp32"), pytest.param("bf16", id="bf16")])
def test_esrgan_step_trains_on_one_gpu(pairs_128: tuple[Path, Path], tmp_path: Path, precision: str | bool) -> None:
    """ESRGANModel's step (relativistic discriminator on whole 128² GT patches, EMA of g) on one GPU; the
    same body was run on the CPU (fp32 and bf16) when it was written."""
    run_esrgan_step(pairs_128, tmp_path, "cuda", precision)


def _kernel_batch(device: str, n: int = 4, side: int = 128) -> dict[str, torch.Tensor]:
    """``n`` random GT images with kernels drawn as RealESRGANDataset draws them, on ``device``."""
    import numpy as np

    from restoration.data.degradations.kernels import draw_batch_kernels
    from restoration.data.realesrgan_dataset import RealESRGANDataset
    from restoration.options.schema import all_defaults

    kernels = draw_batch_kernels(np.random.default_rng(0), all_defaults(RealESRGANDataset.options), n)
    batch = {"gt": torch.rand(n, 3, side, side, device=device)}
    batch.update({key: torch.from_numpy(k).to(device) for key, k in kernels.items()})
    return batch


@pytest.mark.cuda
@_CUDA
def test_degradation_blocks_the_host_once() -> None:
    """A batch's degradation on the GPU waits for the GPU once, in its NaN/Inf check: every parameter is drawn
    on the CPU and copied without a sync, the constants (USM taps, DCT, JPEG tables) are made once per
    device, Poisson noise counts levels without ``bincount``. Gray noise in both stages, Poisson then
    Gaussian, the pool full (its shuffle included)."""
    import warnings

    from restoration.data.degradations.realesrgan import TrainingPairPool

    batch, pool = _kernel_batch("cuda"), TrainingPairPool(8)
    opt = {"gt_size": 96, "queue_size": 8, "gaussian_noise_prob": 0.0, "gaussian_noise_prob2": 1.0,
           "gray_noise_prob": 1.0, "gray_noise_prob2": 1.0}
    for it in range(3):  # fills the pool; builds the per-device constants
        realesrgan_degrade(batch, opt, degradation_generator(0, it), pool)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            realesrgan_degrade(batch, opt, degradation_generator(0, 3), pool)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [f"{Path(w.filename).name}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) <= 1, syncs


@pytest.mark.cuda
@_CUDA
def test_gan_iteration_blocks_the_host_twice_at_most() -> None:
    """One RealESRGANModel iteration on the GPU (degradation, g and d): the degradation's NaN/Inf check and
    one finite-gradient read for both networks; nothing else waits for the GPU."""
    import warnings

    from restoration.models import register_models
    from restoration.registry import MODEL_REGISTRY

    register_models()
    torch.manual_seed(0)
    opt = {"scale": 4, "manual_seed": 0, "model_type": "RealESRGANModel",
           "network_g": {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 4},
           "network_d": {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 8},
           "train": {"optim_g": {"type": "Adam", "lr": 1e-4}, "optim_d": {"type": "Adam", "lr": 1e-4},
                     "total_iter": 10, "ema_decay": 0.999, "gt_size": 64, "queue_size": 8,
                     "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0},
                     "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1}}}
    model = MODEL_REGISTRY.get("RealESRGANModel")(opt, torch.device("cuda"))
    batch = model.feed_data(_kernel_batch("cuda", side=96))
    for it in range(1, 4):  # the pool fills, optimizer state and EMA exist, cuDNN has tuned
        model.optimize_parameters(batch, it)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            log = model.optimize_parameters(batch, 4)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [f"{Path(w.filename).name}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) <= 2, syncs
    assert "grad_norm" in log and "grad_norm_d" in log


@pytest.mark.cuda
@_CUDA
def test_degradation_on_the_gpu_is_seeded_and_in_range() -> None:
    """The degradation of a batch on the GPU is a function of (seed, iteration): the same pair gives the same
    batch, another iteration another; LQ is 8-bit, in [0, 1], gt/4 in size."""
    batch = _kernel_batch("cuda")
    opt = {"gt_size": 96, "queue_size": 0}
    (lq, gt, _), (lq_again, _, _), (lq_other, _, _) = (
        realesrgan_degrade(batch, opt, degradation_generator(0, it)) for it in (5, 5, 6))
    assert lq.is_cuda and lq.shape == (4, 3, 24, 24) and gt.shape == (4, 3, 96, 96)
    assert torch.equal(lq, lq_again) and not torch.equal(lq, lq_other)
    assert float(lq.min()) >= 0 and float(lq.max()) <= 1
    assert torch.equal(lq, (lq * 255).round() / 255)  # rounded to 8 bits
