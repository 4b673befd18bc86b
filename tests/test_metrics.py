"""PSNR/SSIM protocol, MATLAB Y channel, and the published Set5 bicubic baseline."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restoration.metrics.psnr_ssim import (
    SSIM_C1,
    calculate_psnr,
    calculate_psnr_pt,
    calculate_ssim,
    calculate_ssim_pt,
    gaussian_window,
)
from restoration.registry import METRIC_REGISTRY
from restoration.utils.color import rgb2ycbcr, rgb2ycbcr_pt, ycbcr2rgb, ycbcr2rgb_pt
from restoration.utils.matlab_imresize import imresize

SET5 = ("baby", "bird", "butterfly", "head", "woman")
# Published bicubic rows (EDSR/RCAN/SwinIR tables) and what a correct MATLAB pipeline measures.
PUBLISHED = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}


def _rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return np.ascontiguousarray(img[:, :, ::-1])


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).double()[None] / 255.0


# ------------------------------------------------------------------------------------------ colour


def test_y_channel_matches_matlab_formula_by_hand() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]], [[0, 255, 0], [0, 0, 255], [100, 150, 200]]], np.uint8)
    # Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16, computed by hand for each pixel.
    expected_y = np.array([[16.0, 235.0, 81.481], [144.553, 40.966, 16 + 30824.25 / 255]])
    y = rgb2ycbcr(rgb.astype(np.float64), y_only=True, data_range=255.0)
    np.testing.assert_allclose(y, expected_y, atol=1e-12)
    np.testing.assert_allclose(rgb2ycbcr(rgb / 255.0, y_only=True) * 255, expected_y, atol=1e-12)
    # MATLAB: rgb2ycbcr(uint8([255 0 0])) = [81 90 240] (Cb = 128 - 37.797, Cr = 128 + 112, rounded).
    np.testing.assert_array_equal(rgb2ycbcr(rgb)[0, 2], [81, 90, 240])
    assert rgb2ycbcr(rgb).dtype == np.uint8 and rgb2ycbcr(rgb, y_only=True).shape == (2, 3)
    pt = rgb2ycbcr_pt(torch.from_numpy(rgb.transpose(2, 0, 1).copy()).double()[None] / 255, y_only=True)
    np.testing.assert_allclose(pt[0, 0].numpy() * 255, expected_y, atol=1e-12)


def test_ycbcr_round_trip() -> None:
    rgb = np.random.default_rng(0).random((4, 5, 3))
    np.testing.assert_allclose(ycbcr2rgb(rgb2ycbcr(rgb)), rgb, atol=1e-12)
    t = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]
    np.testing.assert_allclose(ycbcr2rgb_pt(rgb2ycbcr_pt(t)).numpy(), t.numpy(), atol=1e-12)
    np.testing.assert_allclose(rgb2ycbcr_pt(t)[0].numpy().transpose(1, 2, 0), rgb2ycbcr(rgb), atol=1e-12)


# ------------------------------------------------------------------------------------------ PSNR


def test_psnr_of_constant_offset_is_analytic() -> None:
    img = np.random.default_rng(0).integers(10, 200, (16, 12, 3)).astype(np.uint8)
    # MSE = 5² = 25 everywhere, so PSNR = 10 log10(255² / 25) = 20 log10(51).
    assert calculate_psnr(img, img + 5, crop_border=0) == pytest.approx(20 * math.log10(51), abs=1e-12)
    # On Y a uniform RGB offset d moves Y by d * (65.481 + 128.553 + 24.966) / 255 = d * 219 / 255.
    d_y = 5 * 219.0 / 255
    assert calculate_psnr(img, img + 5, 0, test_y_channel=True) == pytest.approx(
        10 * math.log10(255**2 / d_y**2), abs=1e-9
    )
    assert calculate_psnr(img, img, 0) == math.inf


def test_crop_border_crops_each_side() -> None:
    img = np.full((20, 20, 3), 100, np.uint8)
    img2 = img.copy()
    img2[:3] = 0  # differences only in the 3-pixel top border
    img2[:, -3:] = 0  # ... and right border
    assert calculate_psnr(img, img2, crop_border=3) == math.inf
    assert calculate_ssim(img, img2, crop_border=3) == pytest.approx(1.0, abs=1e-12)
    assert calculate_psnr(img, img2, crop_border=2) < 20


def test_input_order_and_grayscale_forms_agree() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (24, 20, 3)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 8, a.shape), 0, 255)
    for fn in (calculate_psnr, calculate_ssim):
        hwc = fn(a, b, 2)
        assert fn(a.transpose(2, 0, 1), b.transpose(2, 0, 1), 2, input_order="CHW") == pytest.approx(hwc, abs=1e-12)
        assert fn(a[..., 0], b[..., 0], 2) == pytest.approx(fn(a[..., :1], b[..., :1], 2), abs=1e-12)
        # Y on an already 1-channel image leaves it alone.
        assert fn(a[..., :1], b[..., :1], 2, test_y_channel=True) == pytest.approx(fn(a[..., :1], b[..., :1], 2))


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(8, 8, 3\) vs \(8, 9, 3\)"):
        calculate_psnr(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)), 0)
    with pytest.raises(ValueError, match=r"\(1, 3, 16, 16\) vs \(1, 3, 16, 15\)"):
        calculate_ssim_pt(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 15), 0)
    with pytest.raises(ValueError, match="input_order"):
        calculate_psnr(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), 0, input_order="WHC")


# ------------------------------------------------------------------------------------------ SSIM


def test_ssim_identity_and_constant_images() -> None:
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert calculate_ssim(img, img, 0) == pytest.approx(1.0, abs=1e-12)
    # Two constant images a, b: means a, b, variances 0 -> SSIM = (2ab + C1) / (a² + b² + C1).
    a, b = 100.0, 120.0
    expected = (2 * a * b + SSIM_C1) / (a**2 + b**2 + SSIM_C1)
    got = calculate_ssim(np.full((16, 16), a), np.full((16, 16), b), 0)
    assert got == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(gaussian_window(), cv2.getGaussianKernel(11, 1.5)[:, 0], atol=1e-15)


def test_ssim_matches_scikit_image_gaussian_ssim() -> None:
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (40, 36)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    # Gaussian window σ=1.5 truncated at 3.5σ (11 taps), population covariance, mean over the valid region.
    ref = skimage_metrics.structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert calculate_ssim(a, b, 0) == pytest.approx(ref, abs=1e-9)


def test_too_small_for_ssim_window() -> None:
    with pytest.raises(ValueError, match="11x11"):
        calculate_ssim(np.zeros((14, 14)), np.zeros((14, 14)), crop_border=2)


# ------------------------------------------------------------------------------------------ torch vs numpy


@pytest.mark.parametrize("test_y_channel", [False, True])
def test_torch_metrics_equal_numpy(test_y_channel: bool) -> None:
    rng = np.random.default_rng(7)
    imgs = rng.integers(0, 256, (2, 30, 27, 3)).astype(np.uint8)
    imgs2 = np.clip(imgs + rng.normal(0, 10, imgs.shape), 0, 255).round().astype(np.uint8)
    t1 = torch.cat([_to_tensor(x) for x in imgs]).float()
    t2 = torch.cat([_to_tensor(x) for x in imgs2]).float()
    psnr_pt = calculate_psnr_pt(t1, t2, crop_border=3, test_y_channel=test_y_channel)
    ssim_pt = calculate_ssim_pt(t1, t2, crop_border=3, test_y_channel=test_y_channel)
    assert psnr_pt.shape == ssim_pt.shape == (2,)
    for i in range(2):
        psnr = calculate_psnr(imgs[i], imgs2[i], 3, test_y_channel=test_y_channel)
        ssim = calculate_ssim(imgs[i], imgs2[i], 3, test_y_channel=test_y_channel)
        assert psnr_pt[i].item() == pytest.approx(psnr, abs=1e-6)
        assert ssim_pt[i].item() == pytest.approx(ssim, abs=1e-6)
    assert calculate_psnr_pt(t1, t1, 0)[0].item() == math.inf


def test_metrics_are_registered() -> None:
    for name, fn in [
        ("calculate_psnr", calculate_psnr),
        ("calculate_ssim", calculate_ssim),
        ("calculate_psnr_pt", calculate_psnr_pt),
        ("calculate_ssim_pt", calculate_ssim_pt),
    ]:
        assert METRIC_REGISTRY.get(name) is fn


# ------------------------------------------------------------------------------------------ Set5 bicubic baseline


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_bicubic_baseline_matches_published(benchmarks: Path, scale: int) -> None:
    """Upsample MATLAB's LR_bicubic/X{s} with our imresize, round, PSNR/SSIM on Y with crop = s."""
    from restoration import build_network

    net = build_network({"type": "Bicubic", "upscale": scale})
    psnr, ssim, psnr_pt = [], [], []
    for name in SET5:
        hr = _rgb(benchmarks / "Set5" / "HR" / f"{name}.png")
        hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]  # mod-crop
        lr = _rgb(benchmarks / "Set5" / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
        sr = imresize(lr.astype(np.float64) / 255.0, scale=scale)
        sr = np.floor(np.clip(sr * 255.0, 0, 255) + 0.5).astype(np.uint8)
        assert sr.shape == hr.shape, name
        psnr.append(calculate_psnr(sr, hr, crop_border=scale, test_y_channel=True))
        ssim.append(calculate_ssim(sr, hr, crop_border=scale, test_y_channel=True))
        # The same through the Bicubic network in float32, the way test.py evaluates a model.
        with torch.no_grad():
            out = net(_to_tensor(lr).float()).clamp(0, 1)
        out = (out * 255.0).round() / 255.0
        psnr_pt.append(calculate_psnr_pt(out, _to_tensor(hr), crop_border=scale, test_y_channel=True).item())
    mean_psnr, mean_ssim = float(np.mean(psnr)), float(np.mean(ssim))
    pub_psnr, pub_ssim = PUBLISHED[scale]
    assert abs(mean_psnr - pub_psnr) <= 0.03, f"x{scale}: PSNR {mean_psnr:.4f} vs published {pub_psnr}"
    assert abs(mean_ssim - pub_ssim) <= 0.0015, f"x{scale}: SSIM {mean_ssim:.5f} vs published {pub_ssim}"
    assert float(np.mean(psnr_pt)) == pytest.approx(mean_psnr, abs=2e-3)
