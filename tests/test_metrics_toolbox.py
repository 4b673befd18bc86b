"""PSNR-B and MS-SSIM against hand computations and references written here (loops, scipy, MATLAB's steps)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from restoration.metrics.ms_ssim import MS_SSIM_WEIGHTS, calculate_ms_ssim
from restoration.metrics.psnr_ssim import calculate_psnr, gaussian_window, to_y_channel
from restoration.metrics.psnrb import blocking_effect_factor, calculate_psnrb
from restoration.registry import METRIC_REGISTRY


def _blocky(h: int, w: int, channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth reference and a copy with a random offset per 8x8 block (JPEG-like blocking), uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    ref = np.stack([100 + 60 * np.sin(xx / 9 + c) * np.cos(yy / 7) for c in range(channels)], -1)
    offsets = rng.integers(-12, 13, (h // 8 + 1, w // 8 + 1, channels))
    blocky = ref + offsets[yy // 8, xx // 8] + rng.normal(0, 1, ref.shape)
    return np.clip(blocky, 0, 255).round().astype(np.uint8), np.clip(ref, 0, 255).round().astype(np.uint8)


# ------------------------------------------------------------------------------------------------------------ PSNR-B


def test_psnrb_of_four_flat_blocks_by_hand() -> None:
    """16x16 of four flat 8x8 blocks a b / c d: only the 32 boundary pairs differ.

    D_B = 8 ((a-b)² + (c-d)² + (a-c)² + (b-d)²) / 32 = 8 (1600 + 4900 + 6400 + 900) / 32 = 3450, D_B^C = 0,
    eta = log2(8) / log2(16) = 3/4, so BEF = 2587.5.
    """
    img = np.zeros((16, 16), np.float64)
    img[:8, :8], img[:8, 8:], img[8:, :8], img[8:, 8:] = 10, 50, 90, 20
    assert blocking_effect_factor(img) == pytest.approx(2587.5, rel=1e-14)
    assert calculate_psnrb(img, img, crop_border=0) == pytest.approx(10 * math.log10(255**2 / 2587.5), abs=1e-12)
    # MSE 4 adds to the BEF of the restored image (the first argument); the reference's blocking does not count
    assert calculate_psnrb(img, img + 2, crop_border=0) == pytest.approx(10 * math.log10(255**2 / 2591.5), abs=1e-12)
    assert calculate_psnrb(img + 2, img, crop_border=0) == pytest.approx(10 * math.log10(255**2 / 2591.5), abs=1e-12)
    flat = np.full((16, 16), 7.0)
    assert calculate_psnrb(flat, img, crop_border=0) == pytest.approx(calculate_psnr(flat, img, 0), abs=1e-12)
    assert calculate_psnrb(flat, flat, crop_border=0) == math.inf


def _kair_style_psnrb(restored: np.ndarray, reference: np.ndarray) -> float:
    """KAIR's ``calculate_psnrb`` formula (SwinIR's JPEG tables), restated: boundary columns at 7, 15, ...,
    boundary counts ``H (W // 8 - 1) + W (H // 8 - 1)``, images on [0, 1], PSNR-B per channel then averaged."""
    a = torch.from_numpy(restored.astype(np.float64)).permute(2, 0, 1)[None] / 255
    b = torch.from_numpy(reference.astype(np.float64)).permute(2, 0, 1)[None] / 255
    h, w = a.shape[2:]
    cols, rows = torch.arange(7, w - 1, 8), torch.arange(7, h - 1, 8)
    other_cols = torch.tensor([j for j in range(w - 1) if j not in cols.tolist()])
    other_rows = torch.tensor([i for i in range(h - 1) if i not in rows.tolist()])
    total = 0.0
    for c in range(a.shape[1]):
        x = a[0, c]
        d_b = ((x[:, cols] - x[:, cols + 1]) ** 2).sum() + ((x[rows] - x[rows + 1]) ** 2).sum()
        d_bc = ((x[:, other_cols] - x[:, other_cols + 1]) ** 2).sum() + ((x[other_rows] - x[other_rows + 1]) ** 2).sum()
        n_b = h * (w // 8 - 1) + w * (h // 8 - 1)
        n_bc = h * (w - 1) + w * (h - 1) - n_b
        d_b, d_bc = d_b / n_b, d_bc / n_bc
        bef = math.log2(8) / math.log2(min(h, w)) * (d_b - d_bc) if d_b > d_bc else 0.0
        mse = ((a[0, c] - b[0, c]) ** 2).mean()
        total += float(10 * torch.log10(1 / (mse + bef)))
    return total / a.shape[1]


def test_psnrb_equals_the_kair_formula_on_multiples_of_eight() -> None:
    restored, reference = _blocky(48, 64, 3)
    ours = calculate_psnrb(restored, reference, crop_border=0)
    assert ours < calculate_psnr(restored, reference, 0) - 0.5  # the blocks are penalised
    assert ours == pytest.approx(_kair_style_psnrb(restored, reference), abs=1e-10)


def test_psnrb_counts_the_pairs_that_exist_on_other_sizes() -> None:
    """20x27: a loop over every neighbour pair; KAIR's counts (one boundary column fewer) give another number."""
    restored, reference = _blocky(20, 27, 1, seed=3)
    x = restored[..., 0].astype(np.float64)
    sums, counts = [0.0, 0.0], [0, 0]  # [inside, boundary]
    for i in range(20):
        for j in range(27):
            for di, dj, pos in ((0, 1, j), (1, 0, i)):
                if i + di < 20 and j + dj < 27:
                    on_boundary = int((pos + 1) % 8 == 0)
                    sums[on_boundary] += (x[i, j] - x[i + di, j + dj]) ** 2
                    counts[on_boundary] += 1
    assert counts == [20 * 26 + 27 * 19 - 20 * 3 - 27 * 2, 20 * 3 + 27 * 2]  # columns 7, 15, 23; rows 7, 15
    bef = max(0.0, math.log2(8) / math.log2(20) * (sums[1] / counts[1] - sums[0] / counts[0]))
    mse = np.mean((x - reference[..., 0]) ** 2)
    expected = 10 * math.log10(255**2 / (mse + bef))
    assert calculate_psnrb(restored, reference, crop_border=0) == pytest.approx(expected, abs=1e-10)
    assert abs(expected - _kair_style_psnrb(restored, reference)) > 1e-3


def test_psnrb_protocol_options_and_registration() -> None:
    restored, reference = _blocky(40, 48, 3, seed=1)
    y = calculate_psnrb(to_y_channel(restored[2:-2, 2:-2]), to_y_channel(reference[2:-2, 2:-2]), crop_border=0)
    assert calculate_psnrb(restored, reference, crop_border=2, test_y_channel=True) == pytest.approx(y, abs=1e-12)
    assert METRIC_REGISTRY.get("calculate_psnrb") is calculate_psnrb
    with pytest.raises(ValueError, match="block_size must be an integer >= 2"):
        calculate_psnrb(restored, reference, 0, block_size=1)

    from restoration.options.validate import check_component

    problems: list[str] = []
    check_component(METRIC_REGISTRY, {"type": "calculate_psnrb", "crop_border": 0, "test_y_chanel": True},
                    "val.metrics.psnrb", problems, call_args=("img", "img2"))
    check_component(METRIC_REGISTRY, {"type": "calculate_psnrb", "crop_border": 0, "block_size": 0},
                    "val.metrics.psnrb", problems, call_args=("img", "img2"))
    assert "did you mean 'test_y_channel'?" in problems[0]
    assert problems[-1] == "'val.metrics.psnrb': block_size must be an integer >= 2, got 0"


# ----------------------------------------------------------------------------------------------------------- MS-SSIM


def _ms_ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Wang's msssim.m step by step on one (H, W) channel on [0, 255]: filter2(.., 'valid'), then
    imfilter(.., ones(2)/4, 'symmetric', 'same') and (1:2:end, 1:2:end) between scales."""
    win = np.outer(gaussian_window(), gaussian_window())
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mcs, mssim = [], []
    for _ in range(5):
        mu1, mu2 = correlate2d(a, win, "valid"), correlate2d(b, win, "valid")
        s11 = correlate2d(a * a, win, "valid") - mu1**2
        s22 = correlate2d(b * b, win, "valid") - mu2**2
        s12 = correlate2d(a * b, win, "valid") - mu1 * mu2
        cs = (2 * s12 + c2) / (s11 + s22 + c2)
        mcs.append(cs.mean())
        mssim.append(((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1) * cs).mean())
        a, b = (np.pad(x, ((0, 1), (0, 1)), mode="symmetric") for x in (a, b))
        a, b = ((x[:-1, :-1] + x[1:, :-1] + x[:-1, 1:] + x[1:, 1:])[::2, ::2] / 4 for x in (a, b))
    w = MS_SSIM_WEIGHTS
    return float(np.prod([mcs[j] ** w[j] for j in range(4)]) * mssim[4] ** w[4])


def test_ms_ssim_matches_the_matlab_steps_on_odd_sizes() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (163, 171)).astype(np.float64)
    ref = correlate2d(np.pad(ref, 2, mode="edge"), np.ones((5, 5)) / 25, "valid")  # some structure at every scale
    dist = np.clip(ref + rng.normal(0, 12, ref.shape), 0, 255).round()
    expected = _ms_ssim_reference(dist, ref)
    assert 0.5 < expected < 0.99
    assert calculate_ms_ssim(dist, ref, crop_border=0) == pytest.approx(expected, abs=1e-12)
    assert calculate_ms_ssim(ref, ref, crop_border=0) == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_protocol_sizes_and_registration() -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (170, 168, 3)).astype(np.uint8)
    dist = np.clip(ref + rng.normal(0, 20, ref.shape), 0, 255).astype(np.uint8)
    ya, yb = (to_y_channel(x[3:-3, 3:-3])[..., 0] for x in (dist, ref))
    assert calculate_ms_ssim(dist, ref, crop_border=3, test_y_channel=True) == pytest.approx(
        _ms_ssim_reference(ya, yb), abs=1e-12)
    with pytest.raises(ValueError, match=r"needs at least 161x161 pixels .* got \(160, 158\)"):
        calculate_ms_ssim(dist, ref, crop_border=5)
    assert METRIC_REGISTRY.get("calculate_ms_ssim") is calculate_ms_ssim
