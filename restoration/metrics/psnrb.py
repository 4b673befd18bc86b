"""PSNR-B (Yim & Bovik 2011, "Quality Assessment of Deblocked Images"), the PSNR of the JPEG-artefact tables
(ARCNN, FBCNN, SwinIR); higher is better.

PSNR-B adds to the MSE a blocking-effect factor (BEF) of the *restored* image ``img`` (the first argument, as
:func:`restoration.evaluation.evaluate` passes the output first), measured on the boundaries of the
``block_size`` grid (8: JPEG's)::

    D_B   = mean of (x[i, j] - x[i, j+1])² and (x[i, j] - x[i+1, j])² over neighbour pairs that straddle a block
            boundary (j + 1, resp. i + 1, a multiple of block_size)
    D_B^C = the same mean over every other neighbour pair
    BEF   = log2(block_size) / log2(min(H, W)) * (D_B - D_B^C)   when D_B > D_B^C, else 0
    PSNR-B = 10 log10(255² / (MSE + BEF))

per channel (``inf`` when ``MSE + BEF = 0``), then averaged over channels, as KAIR's ``calculate_psnrb`` (the code
behind SwinIR's JPEG tables, which are on Y or grey images). The pair counts are the pairs that exist, which is the
paper's ``N_V (N_H / B - 1)`` when the sides are multiples of ``B``. For other sides KAIR counts ``N_V (N_H // B - 1)``
boundary pairs while summing over ``(N_H - 1) // B`` columns of them, one column more than it counts, so on such
images (several LIVE1 pictures) its numbers differ from these. An image with no boundary pair (a side of at most
``block_size``) or a side of 1 pixel has ``BEF = 0``.

Inputs follow :mod:`restoration.metrics.psnr_ssim`: the [0, 255] scale, ``crop_border``, ``test_y_channel``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from restoration.metrics.psnr_ssim import prepare_images

__all__ = ["blocking_effect_factor", "calculate_psnrb"]


def blocking_effect_factor(img: np.ndarray, block_size: int = 8) -> float:
    """BEF of one channel ``(H, W)`` (any scale; squared differences in that scale), see the module docstring."""
    h, w = img.shape
    if min(h, w) < 2:
        return 0.0
    img = img.astype(np.float64, copy=False)
    across_columns = (img[:, 1:] - img[:, :-1]) ** 2  # (H, W-1): pair (j, j+1) in column j
    across_rows = (img[1:, :] - img[:-1, :]) ** 2  # (H-1, W)
    col_on_boundary = (np.arange(1, w) % block_size) == 0  # j + 1 a multiple of block_size
    row_on_boundary = (np.arange(1, h) % block_size) == 0
    n_boundary = h * int(col_on_boundary.sum()) + w * int(row_on_boundary.sum())
    n_inside = h * (w - 1) + w * (h - 1) - n_boundary
    if n_boundary == 0 or n_inside == 0:
        return 0.0
    d_boundary = (across_columns[:, col_on_boundary].sum() + across_rows[row_on_boundary, :].sum()) / n_boundary
    d_inside = (across_columns[:, ~col_on_boundary].sum() + across_rows[~row_on_boundary, :].sum()) / n_inside
    if d_boundary <= d_inside:
        return 0.0
    return float(math.log2(block_size) / math.log2(min(h, w)) * (d_boundary - d_inside))


def calculate_psnrb(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: str = "HWC",
    test_y_channel: bool = False,
    block_size: int = 8,
) -> float:
    """PSNR-B (dB) of the restored ``img`` against the reference ``img2``, both on the [0, 255] scale.

    Args:
        img: Restored image, ``(H, W, C)`` (or ``(C, H, W)`` with ``input_order='CHW'``), ``(H, W)`` or
            ``(H, W, 1)``; its blocking is measured.
        img2: Reference, same shape.
        crop_border: Pixels removed from each side first (the block grid then starts at the crop).
        input_order: ``'HWC'`` or ``'CHW'``.
        test_y_channel: Score the MATLAB Y channel only (RGB inputs).
        block_size: Side of the coding blocks (8 for JPEG).

    Returns:
        The mean over channels of each channel's PSNR-B; ``inf`` for identical images without blocking.

    Raises:
        ValueError: Different shapes, a bad ``crop_border`` or ``input_order``, ``block_size < 2``.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"block_size must be an integer >= 2, got {block_size!r}")
    a, b = prepare_images(img, img2, crop_border, input_order, test_y_channel)
    values = []
    for c in range(a.shape[2]):
        total = float(np.mean((a[..., c] - b[..., c]) ** 2)) + blocking_effect_factor(a[..., c], block_size)
        values.append(math.inf if total == 0 else 10.0 * math.log10(255.0**2 / total))
    return float(np.mean(values))


def _check_options(opt: Mapping[str, Any]) -> list[str]:
    """A bad ``block_size`` is an options error, reported before anything starts."""
    size = opt["block_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        return [f"block_size must be an integer >= 2, got {size!r}"]
    return []


calculate_psnrb.check_options = _check_options  # type: ignore[attr-defined]  # read by the option check
