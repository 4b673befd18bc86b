"""The loss toolbox (SSIM/MS-SSIM, focal frequency, colour/luma, TV, LDL) against references written here.

Each reference is an independent float64 computation (DFT matrices instead of torch.fft, window loops instead of
``unfold``, hand-written MATLAB YCbCr rows) or a number worked out by hand; the SSIM losses are checked against
the repository's SSIM metric, and MS-SSIM against ``pytorch_msssim`` when it is installed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restoration.losses.focal_frequency_loss import FFLoss
from restoration.losses.ldl_loss import LDLLoss, artifact_map
from restoration.errors import LossInputError, LossOptionError
from restoration.losses.loss_list import build_losses, evaluate_losses
from restoration.losses.ssim_loss import MSSSIMLoss, SSIMLoss
from restoration.losses.tv_loss import WeightedTVLoss
from restoration.losses.ycbcr_loss import ColorLoss, LumaLoss
from restoration.metrics.ms_ssim import MS_SSIM_WEIGHTS, calculate_ms_ssim, ms_ssim_weights
from restoration.metrics.psnr_ssim import calculate_ssim_pt, gaussian_window
from restoration.registry import LOSS_REGISTRY

TOOLBOX = ("SSIMLoss", "MSSSIMLoss", "FFLoss", "ColorLoss", "LumaLoss", "WeightedTVLoss", "LDLLoss")


def _pair(shape: tuple[int, ...], noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    gt = torch.rand(shape, generator=gen, dtype=torch.float64)
    out = (gt + noise * torch.randn(shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    return out, gt


# ------------------------------------------------------------------------------------------------ SSIM / MS-SSIM


@pytest.mark.parametrize("channels", ["rgb", "y"])
def test_ssim_loss_is_one_minus_the_ssim_metric(channels: str) -> None:
    out, gt = _pair((2, 3, 24, 20))
    loss = SSIMLoss(loss_weight=2.0, channels=channels)(out, gt)
    metric = calculate_ssim_pt(out, gt, crop_border=0, test_y_channel=channels == "y")  # (B,), float64
    assert metric.mean().item() < 0.97  # a real difference, not the trivial 1
    assert loss.item() == pytest.approx(2.0 * (1.0 - metric.mean().item()), abs=1e-12)


def test_ssim_loss_gradient_matches_finite_differences() -> None:
    out, gt = _pair((1, 1, 12, 13))
    out.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: SSIMLoss()(x, gt), (out,), eps=1e-6, atol=1e-7, fast_mode=True)


def test_ms_ssim_loss_is_one_minus_the_metric_and_runs_at_the_minimum_size() -> None:
    out, gt = _pair((1, 3, 161, 170), noise=0.15)
    loss = MSSSIMLoss(channels="y")(out, gt)
    as_uint8_scale = [(t[0].permute(1, 2, 0) * 255).numpy() for t in (out, gt)]
    metric = calculate_ms_ssim(*as_uint8_scale, crop_border=0, test_y_channel=True)
    assert 0.5 < metric < 0.99
    assert loss.item() == pytest.approx(1.0 - metric, abs=1e-12)


def test_ms_ssim_loss_equals_pytorch_msssim() -> None:
    """The ``pytorch_msssim`` package (optional) on even sizes, where its zero-padded pooling equals MATLAB's."""
    msssim = pytest.importorskip("pytorch_msssim")
    out, gt = _pair((2, 3, 192, 176), noise=0.2)
    window = torch.from_numpy(gaussian_window()).view(1, 1, 1, 11).repeat(3, 1, 1, 1)  # its own is float32
    expected = msssim.ms_ssim(out, gt, data_range=1.0, win=window).item()
    assert 1.0 - MSSSIMLoss()(out, gt).item() == pytest.approx(expected, abs=1e-12)


def test_ms_ssim_weights_and_scales() -> None:
    assert MS_SSIM_WEIGHTS == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, Table/Section 3.2
    four = ms_ssim_weights(4)
    assert sum(four) == pytest.approx(1.0) and four[0] / four[3] == pytest.approx(0.0448 / 0.2363)
    out, gt = _pair((1, 1, 81, 90))
    one_scale = MSSSIMLoss(scales=1)(out, gt).item()
    assert one_scale == pytest.approx(SSIMLoss()(out, gt).item(), abs=1e-15)
    assert 0 < MSSSIMLoss(scales=4)(out, gt).item() < 1


def test_ms_ssim_loss_refuses_images_too_small_for_its_scales() -> None:
    out, gt = _pair((1, 3, 128, 128))
    with pytest.raises(LossInputError, match=r"scales: 5 needs images of at least 161x161 pixels, got \(128, 128\);"
                                             r" use a larger gt_size or fewer scales \(scales: 4 needs 81\)"):
        MSSSIMLoss()(out, gt)
    with pytest.raises(LossInputError, match="at least 11x11"):
        SSIMLoss()(out[..., :10, :], gt[..., :10, :])
    with pytest.raises(LossInputError, match="channels: y needs RGB"):
        SSIMLoss(channels="y")(out[:, :1], gt[:, :1])
    with pytest.raises(LossOptionError, match="scales must be an integer from 1 to 5, got 6"):
        MSSSIMLoss(scales=6)


# ------------------------------------------------------------------------------------------- focal frequency loss


def _dft(n: int) -> np.ndarray:
    k = np.arange(n)
    return np.exp(-2j * np.pi * np.outer(k, k) / n) / math.sqrt(n)


def _ffl_reference(pred: np.ndarray, target: np.ndarray, alpha: float = 1.0, patch_factor: int = 1,
                   ave_spectrum: bool = False, log_matrix: bool = False, batch_matrix: bool = False) -> float:
    """Focal frequency loss with explicit DFT matrices, patch loops and per-slice maxima (float64)."""
    b, c, h, w = pred.shape
    ph, pw = h // patch_factor, w // patch_factor
    fh, fw = _dft(ph), _dft(pw)

    def spectra(x: np.ndarray) -> np.ndarray:
        out = np.zeros((b, patch_factor**2, c, ph, pw), complex)
        for i in range(patch_factor):
            for j in range(patch_factor):
                for n in range(b):
                    for ch in range(c):
                        out[n, i * patch_factor + j, ch] = fh @ x[n, ch, i * ph:(i + 1) * ph, j * pw:(j + 1) * pw] @ fw.T
        return out

    sp, st = spectra(pred), spectra(target)
    if ave_spectrum:
        sp, st = sp.mean(0, keepdims=True), st.mean(0, keepdims=True)
    dist = np.abs(sp - st) ** 2
    weight = np.sqrt(dist) ** alpha
    if log_matrix:
        weight = np.log(weight + 1.0)
    if batch_matrix:
        weight = weight / weight.max()
    else:
        for idx in np.ndindex(*weight.shape[:3]):
            peak = weight[idx].max()
            weight[idx] = weight[idx] / peak if peak > 0 else 0.0
    return float(np.mean(np.clip(weight, 0, 1) * dist))


def test_ffl_of_an_impulse_is_analytic() -> None:
    """A one-pixel difference d has a flat spectrum d / sqrt(HW): every weight is 1, so the loss is d² / (HW)."""
    gt = torch.rand(2, 3, 8, 12, dtype=torch.float64)
    out = gt.clone()
    out[:, :, 3, 5] += 0.5
    assert FFLoss()(out, gt).item() == pytest.approx(0.25 / 96, rel=1e-12)
    assert FFLoss(loss_weight=3.0, alpha=2.0)(out, gt).item() == pytest.approx(3 * 0.25 / 96, rel=1e-12)
    assert FFLoss()(gt, gt).item() == 0.0  # identical: zero weights, not NaN


@pytest.mark.parametrize("options", [
    {},
    {"alpha": 2.0, "log_matrix": True},
    {"patch_factor": 2, "batch_matrix": True},
    {"ave_spectrum": True, "alpha": 0.5},
])
def test_ffl_matches_dft_matrix_reference(options: dict) -> None:
    out, gt = _pair((2, 2, 8, 12), noise=0.2)
    expected = _ffl_reference(out.numpy(), gt.numpy(), **options)
    assert FFLoss(**options)(out, gt).item() == pytest.approx(expected, rel=1e-10)


def test_ffl_gradient_treats_the_weights_as_constants() -> None:
    """d/dx mean(W |F x - F y|²) = 2 Re(F^H (W (F x - F y))) / N with W held fixed (the official detach)."""
    out, gt = _pair((1, 1, 6, 8), noise=0.3)
    x = out.clone().requires_grad_(True)
    FFLoss()(x, gt).backward()
    fh, fw = _dft(6), _dft(8)
    diff = fh @ (out[0, 0].numpy() - gt[0, 0].numpy()) @ fw.T
    weight = np.abs(diff) / np.abs(diff).max()
    expected = 2 * np.real(fh.conj().T @ (weight * diff) @ fw.conj()) / 48
    np.testing.assert_allclose(x.grad[0, 0].numpy(), expected, atol=1e-14)


def test_ffl_defaults_are_the_official_ones_and_sizes_are_checked() -> None:
    loss = FFLoss()
    assert (loss.loss_weight, loss.alpha, loss.patch_factor) == (1.0, 1.0, 1)
    assert not (loss.ave_spectrum or loss.log_matrix or loss.batch_matrix)
    with pytest.raises(LossInputError, match=r"patch_factor 3 does not divide the image size \(8, 12\)"):
        FFLoss(patch_factor=3)(*_pair((1, 1, 8, 12)))
    with pytest.raises(LossOptionError, match="patch_factor must be a positive integer"):
        FFLoss(patch_factor=0)


# ------------------------------------------------------------------------------------------------ colour and luma


def _matlab_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr rows for (B, 3, H, W) RGB in [0, 1] -> YCbCr in [0, 1]."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return np.stack([y, cb, cr], 1) / 255.0


def test_luma_and_color_losses_match_hand_written_ycbcr() -> None:
    out, gt = _pair((2, 3, 8, 12), noise=0.2)
    yo, yg = _matlab_ycbcr(out.numpy()), _matlab_ycbcr(gt.numpy())
    assert LumaLoss()(out, gt).item() == pytest.approx(np.abs(yo[:, 0] - yg[:, 0]).mean(), rel=1e-12)
    assert LumaLoss(criterion="l2")(out, gt).item() == pytest.approx(((yo[:, 0] - yg[:, 0]) ** 2).mean(), rel=1e-12)

    def pool(x: np.ndarray, s: int) -> np.ndarray:  # mean of s x s blocks
        b, c, h, w = x.shape
        return x.reshape(b, c, h // s, s, w // s, s).mean(axis=(3, 5))

    expected = np.abs(pool(yo[:, 1:], 4) - pool(yg[:, 1:], 4)).mean()
    assert ColorLoss()(out, gt).item() == pytest.approx(expected, rel=1e-12)  # redux's default scale 4
    assert ColorLoss(scale=1)(out, gt).item() == pytest.approx(np.abs(yo[:, 1:] - yg[:, 1:]).mean(), rel=1e-12)


def test_a_grey_shift_is_luma_only() -> None:
    """Adding d to R, G and B moves Y by d * 219/255 and leaves Cb, Cr unchanged (their rows sum to 0)."""
    gt = torch.rand(1, 3, 8, 8, dtype=torch.float64) * 0.8
    out = gt + 0.1
    assert LumaLoss()(out, gt).item() == pytest.approx(0.1 * 219 / 255, rel=1e-12)
    assert ColorLoss()(out, gt).item() == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(LossInputError, match=r"ColorLoss needs RGB \(B, 3, H, W\) images"):
        ColorLoss()(gt[:, :1], gt[:, :1])


# ------------------------------------------------------------------------------------------------ total variation


def test_tv_loss_by_hand() -> None:
    x = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]])  # (1, 1, 2, 3)
    # vertical |2-0|, |2-1|, |2-3| -> mean 4/3; horizontal |1-0|, |3-1|, |2-2|, |2-2| -> mean 3/4
    assert WeightedTVLoss()(x).item() == pytest.approx(4 / 3 + 3 / 4)
    assert WeightedTVLoss(loss_weight=2.0, reduction="sum")(x, torch.zeros_like(x)).item() == pytest.approx(14.0)
    weight = torch.tensor([[[[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]]])
    # vertical pairs keep weight row 0 (1, 0, 0): 2 / 1; horizontal keep columns 0-1: (1 + 0 + 0 + 0) / 3
    assert WeightedTVLoss()(x, weight=weight).item() == pytest.approx(2.0 + 1 / 3)
    with pytest.raises(LossOptionError, match="reduction must be 'mean' or 'sum'"):
        WeightedTVLoss(reduction="none")


# ------------------------------------------------------------------------------------------------------------ LDL


def _ldl_reference(out: torch.Tensor, gt: torch.Tensor, ema: torch.Tensor, ksize: int = 7) -> torch.Tensor:
    """LDL's map from shifted copies: local variance = (sum r² - (sum r)² / n) / (n - 1) over the window."""
    r = (gt - out).abs().sum(1)  # (B, H, W)
    r_ema = (gt - ema).abs().sum(1)
    pad = ksize // 2
    h, w = r.shape[1:]
    padded = torch.from_numpy(np.pad(r.detach().numpy(), ((0, 0), (pad, pad), (pad, pad)), mode="reflect"))
    # the padding is rebuilt from r itself so that the gradient reaches every copied pixel
    rows = torch.cat([r[:, 1:pad + 1].flip(1), r, r[:, -pad - 1:-1].flip(1)], 1)
    padded_r = torch.cat([rows[:, :, 1:pad + 1].flip(2), rows, rows[:, :, -pad - 1:-1].flip(2)], 2)
    assert torch.equal(padded_r.detach(), padded)
    n = ksize * ksize
    s1 = sum(padded_r[:, i:i + h, j:j + w] for i in range(ksize) for j in range(ksize))
    s2 = sum(padded_r[:, i:i + h, j:j + w] ** 2 for i in range(ksize) for j in range(ksize))
    local = (s2 - s1**2 / n) / (n - 1)
    m = r.shape[1] * r.shape[2]
    mean = r.mean(dim=(1, 2), keepdim=True)
    patch = (((r - mean) ** 2).sum(dim=(1, 2), keepdim=True) / (m - 1)) ** 0.2
    return torch.where(r < r_ema, torch.zeros_like(r), patch * local)[:, None]


def test_ldl_map_loss_and_gradient_match_the_reference() -> None:
    out, gt = _pair((2, 3, 12, 14), noise=0.2, seed=1)
    noise = torch.randn(gt.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ema = (gt + 0.15 * noise).clamp(0, 1)  # closer to gt than out in some pixels, farther in others
    expected_map = _ldl_reference(out, gt, ema)
    got_map = artifact_map(out, gt, ema)
    assert 0 < (got_map == 0).float().mean() < 1  # the EMA comparison masks some pixels and keeps others
    torch.testing.assert_close(got_map, expected_map, rtol=1e-10, atol=1e-14)

    x1, x2 = out.clone().requires_grad_(True), out.clone().requires_grad_(True)
    loss = LDLLoss(loss_weight=0.5)(x1, gt, ema_output=ema)
    w = _ldl_reference(x2, gt, ema)
    expected = 0.5 * (w * x2 - w * gt).abs().mean()  # the official L1 of the weighted images, map not detached
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-9, atol=1e-14)


def test_ldl_without_the_ema_output_is_one_clear_error() -> None:
    out, gt = _pair((1, 3, 12, 12))
    losses = build_losses({"losses": [{"type": "LDLLoss", "loss_weight": 1.0}]})
    assert list(losses) == ["l_ldl"] and losses["l_ldl"].needs_ema_output
    with pytest.raises(LossInputError, match=r"LDLLoss needs the EMA generator's output \(ema_output=\)"):
        evaluate_losses(losses, out, gt)  # how the trainers call their losses today
    with pytest.raises(LossOptionError, match="ksize must be an odd integer"):
        LDLLoss(ksize=4)


# --------------------------------------------------------------------------------------- registry, options, AMP


def _call(loss: torch.nn.Module, out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    if getattr(loss, "needs_ema_output", False):
        return loss(out, gt, ema_output=(out + gt) / 2)
    return loss(out, gt)


def _small_options(name: str) -> dict:
    return {"MSSSIMLoss": {"scales": 2}}.get(name, {})  # 2 scales fit a 24x24 test image


def test_toolbox_losses_build_from_train_losses_with_labels() -> None:
    entries = [{"type": name, "loss_weight": 0.5, **_small_options(name)} for name in TOOLBOX]
    losses = build_losses({"losses": entries})
    assert list(losses) == ["l_ssim", "l_msssim", "l_ff", "l_color", "l_luma", "l_tv", "l_ldl"]
    for name in TOOLBOX:
        assert LOSS_REGISTRY.get(name).__name__ == name


@pytest.mark.parametrize("name", TOOLBOX)
def test_toolbox_loss_computes_in_float32_under_bf16_autocast(name: str) -> None:
    """bf16 inputs under autocast: a float32 result equal to the float32 computation on the same values."""
    loss = LOSS_REGISTRY.get(name)(**_small_options(name))
    out, gt = (t.to(torch.bfloat16) for t in _pair((2, 3, 24, 24), noise=0.2))
    x = out.detach().clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = _call(loss, x, gt)
    assert value.dtype == torch.float32 and value.ndim == 0
    reference = _call(loss, out.float(), gt.float())
    assert value.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-9)
    value.backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad.float()).all()


def test_toolbox_options_are_checked_before_anything_is_built() -> None:
    from restoration.options.validate import check_component

    problems: list[str] = []
    check_component(LOSS_REGISTRY, {"type": "ColorLoss", "criterion": "l11"}, "train.losses[0]", problems)
    check_component(LOSS_REGISTRY, {"type": "SSIMLoss", "channels": "ycbcr"}, "train.losses[1]", problems)
    check_component(LOSS_REGISTRY, {"type": "FFLoss", "ave_spectrun": True}, "train.losses[2]", problems)
    assert problems[0] == "'train.losses[0]': criterion must be one of ['charbonnier', 'l1', 'l2'], got 'l11' " \
                          "(did you mean 'l1'?)"
    assert problems[1] == "'train.losses[1]': channels must be one of ['rgb', 'y'], got 'ycbcr'"
    assert "has no argument 'ave_spectrun'" in problems[2]


def test_ldl_trains_with_the_ema_output_and_needs_an_ema(tmp_path) -> None:  # noqa: ANN001
    # the trainers hand LDL the EMA generator's output; without an EMA the option file is refused up front
    from restoration.options.parse import OptionsError, parse_options
    from restoration.cli.train import main as train_main
    from tests.helpers import make_sr_pairs, train_options, write_options

    data = make_sr_pairs(tmp_path / "data", n=2, size=32, scale=2)
    opt = train_options(data, "ldl")
    opt["train"]["losses"] = [{"type": "L1Loss", "loss_weight": 1.0}, {"type": "LDLLoss", "loss_weight": 1.0}]
    opt["train"]["ema_decay"] = 0.9
    assert train_main(["-opt", str(write_options(opt, tmp_path / "ldl.yml")), "--root", str(tmp_path)]) == 0
    log = next((tmp_path / "experiments" / "ldl").glob("train_ldl_*.log")).read_text()
    assert log.count("| l_ldl: ") == 6  # logged at every iteration (print_freq 1)
    opt["train"]["ema_decay"] = 0
    with pytest.raises(OptionsError, match=r"'train.losses\[1\]' \(LDLLoss\) compares with the EMA generator's output"):
        parse_options(str(write_options(opt, tmp_path / "no_ema.yml")), is_train=True, root=tmp_path)
