"""MS-SSIM (Wang, Simoncelli & Bovik 2003, "Multi-scale structural similarity for image quality assessment").

One differentiable torch computation serves the metric :func:`calculate_ms_ssim` (MATLAB protocol, higher is
better, 1 for identical images) and the losses :class:`restoration.losses.ssim_loss.SSIMLoss` /
:class:`~restoration.losses.ssim_loss.MSSSIMLoss`. At each scale ``j`` the SSIM terms of Wang et al. 2004 are taken
with the 11x11 Gaussian window (sigma 1.5) over the valid region, ``C1 = (0.01 L)²``, ``C2 = (0.03 L)²``
(``L``: the data range), as :func:`restoration.metrics.psnr_ssim.calculate_ssim`::

    cs_j   = mean((2 sigma_xy + C2) / (sigma_x² + sigma_y² + C2))             # contrast-structure
    ssim_j = mean(l * cs) over the map                                         # the SSIM of scale j
    MS-SSIM = ssim_M^w_M * prod_{j<M} cs_j^w_j,   w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

per image and channel, then averaged over channels. Between scales both images are low-passed with a 2x2 mean and
subsampled by 2, as Wang's ``msssim.m`` does (``imfilter(.., ones(2)/4, 'symmetric')`` then ``(1:2:end)``): an odd
side keeps its last row/column, averaged with its mirror (itself).

Sizes: the coarsest of ``M`` scales must still hold the 11x11 window, so a side needs at least
``10 * 2^(M-1) + 1`` pixels: 161 for the standard 5 scales (81 for 4, 41 for 3). Smaller images are refused with
``ValueError`` (the metric) — never scored on fewer scales silently. With ``scales < 5`` (a loss option) the first
``scales`` weights are used, rescaled to sum to 1; with 5 they are the published ones (which sum to 1.0001).

A mean contrast-structure (or last-scale SSIM) term below 1e-8 (images unrelated at a coarse scale; MATLAB would
return a complex number) is clamped to 1e-8 before the fractional power, so values and gradients stay finite. With
one scale the value is the plain SSIM, negative values included.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from restoration.metrics.psnr_ssim import SSIM_SIGMA, SSIM_WINDOW_SIZE, gaussian_window, prepare_images

__all__ = ["MS_SSIM_WEIGHTS", "ms_ssim_min_size", "ms_ssim_weights", "ssim_terms", "ms_ssim_pt", "calculate_ms_ssim"]

#: Wang et al. 2003, the exponents of scales 1 (finest) to 5.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2 = 0.01, 0.03
_CS_FLOOR = 1e-8


def ms_ssim_min_size(scales: int) -> int:
    """The smallest side (pixels) that still holds the 11x11 window at the coarsest of ``scales`` scales."""
    return (SSIM_WINDOW_SIZE - 1) * 2 ** (scales - 1) + 1


def ms_ssim_weights(scales: int) -> tuple[float, ...]:
    """The exponents for ``scales`` scales (1 to 5): the published five, or the first ``scales`` summing to 1."""
    if not 1 <= scales <= len(MS_SSIM_WEIGHTS):
        raise ValueError(f"MS-SSIM scales must be 1 to {len(MS_SSIM_WEIGHTS)}, got {scales}")
    if scales == len(MS_SSIM_WEIGHTS):
        return MS_SSIM_WEIGHTS
    head = MS_SSIM_WEIGHTS[:scales]
    return tuple(w / sum(head) for w in head)


def ssim_terms(x: Tensor, y: Tensor, data_range: float = 1.0) -> tuple[Tensor, Tensor]:
    """Means of the SSIM map and of its contrast-structure map, per image and channel.

    Args:
        x, y: ``(B, C, H, W)`` in [0, ``data_range``], same shape and dtype, ``H, W >= 11``.
        data_range: The white level (1 for [0, 1] tensors, 255 for the uint8 scale).

    Returns:
        ``(ssim, cs)``, each ``(B, C)``, differentiable.
    """
    channels = x.shape[1]
    g = torch.as_tensor(gaussian_window(SSIM_WINDOW_SIZE, SSIM_SIGMA), dtype=x.dtype, device=x.device)
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # one depthwise pass filters all five maps
    taps = 5 * channels
    mean = F.conv2d(stacked, g.view(1, 1, -1, 1).expand(taps, 1, -1, 1), groups=taps)  # valid region only
    mean = F.conv2d(mean, g.view(1, 1, 1, -1).expand(taps, 1, 1, -1), groups=taps)
    mu_x, mu_y, e_xx, e_yy, e_xy = mean.split(channels, dim=1)
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    cs_map = (2 * (e_xy - mu_x * mu_y) + c2) / ((e_xx - mu_x**2) + (e_yy - mu_y**2) + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs_map).mean(dim=(2, 3)), cs_map.mean(dim=(2, 3))


def _halve(x: Tensor) -> Tensor:
    """2x2 mean then every second pixel; an odd side is first extended by its own last row/column."""
    pad_h, pad_w = x.shape[2] % 2, x.shape[3] % 2
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return F.avg_pool2d(x, 2)


def ms_ssim_pt(x: Tensor, y: Tensor, data_range: float = 1.0, scales: int = 5) -> Tensor:
    """MS-SSIM per image, the mean over channels (see the module docstring); differentiable.

    Args:
        x, y: ``(B, C, H, W)`` in [0, ``data_range``], same shape; both sides at least
            :func:`ms_ssim_min_size` ``(scales)``.
        data_range: The white level.
        scales: 1 to 5 (1: plain SSIM).

    Returns:
        ``(B,)`` in x's dtype.

    Raises:
        ValueError: Different shapes, or an image too small for ``scales`` scales.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"MS-SSIM needs two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    weights = ms_ssim_weights(scales)
    need = ms_ssim_min_size(scales)
    if min(x.shape[2:]) < need:
        raise ValueError(f"MS-SSIM with {scales} scales needs at least {need}x{need} pixels (each scale halves the "
                         f"image and the coarsest must hold the {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE} window), got "
                         f"{tuple(x.shape[2:])}")
    if scales == 1:  # plain SSIM, which may be negative: no power, no clamp
        return ssim_terms(x, y, data_range)[0].mean(dim=1)
    result = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
    for j, w in enumerate(weights):
        ssim, cs = ssim_terms(x, y, data_range)
        if j == len(weights) - 1:
            result = result * ssim.clamp(min=_CS_FLOOR) ** w
        else:
            result = result * cs.clamp(min=_CS_FLOOR) ** w
            x, y = _halve(x), _halve(y)
    return result.mean(dim=1)


def calculate_ms_ssim(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: str = "HWC",
    test_y_channel: bool = False,
) -> float:
    """MS-SSIM (5 scales) of two images on the [0, 255] scale, the mean over channels; higher is better.

    The protocol of :func:`restoration.metrics.psnr_ssim.calculate_ssim` (uint8-scale inputs, ``crop_border``,
    unrounded MATLAB Y with ``test_y_channel``), computed in float64.

    Args:
        img: ``(H, W, C)`` (or ``(C, H, W)`` with ``input_order='CHW'``), ``(H, W)`` or ``(H, W, 1)``; RGB.
        img2: Same shape as ``img``.
        crop_border: Pixels removed from each side first.
        input_order: ``'HWC'`` or ``'CHW'``.
        test_y_channel: Compare the MATLAB Y channel only (RGB inputs).

    Returns:
        MS-SSIM, at most 1 (identical images).

    Raises:
        ValueError: Different shapes, or fewer than 161x161 pixels after cropping.
    """
    a, b = prepare_images(img, img2, crop_border, input_order, test_y_channel)
    ta, tb = (torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))[None] for im in (a, b))
    return float(ms_ssim_pt(ta, tb, data_range=255.0)[0])
