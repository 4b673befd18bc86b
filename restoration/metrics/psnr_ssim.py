"""PSNR and SSIM with the evaluation protocol of the SR literature (BasicSR / MATLAB conventions).

Protocol (numpy functions, the numbers that go into paper tables):

* Inputs are RGB (or grayscale) images on the uint8 scale [0, 255] — ``uint8`` or float; outputs of a network must be
  rounded to uint8 *before* calling these, as every published table does.
* ``crop_border`` pixels are removed from each side first (SR: ``crop_border = scale``).
* ``test_y_channel=True`` compares only the unrounded MATLAB Y channel,
  ``Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16`` (see :mod:`restoration.utils.color`).
* PSNR = ``10 log10(255² / MSE)`` in float64 over all pixels and channels (``inf`` for identical images).
* SSIM per channel with an 11×11 Gaussian window (σ = 1.5) over the valid region only (no padding),
  ``C1 = (0.01·255)²``, ``C2 = (0.03·255)²``, then the mean over channels.

The torch versions take ``(B, C, H, W)`` tensors in [0, 1], compute in float64 on the uint8 scale and return one value
per image, ``(B,)``; they agree with the numpy versions to ~1e-10.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from restoration.utils.color import rgb2ycbcr, rgb2ycbcr_pt

__all__ = [
    "prepare_images",
    "calculate_psnr",
    "calculate_ssim",
    "calculate_psnr_pt",
    "calculate_ssim_pt",
    "gaussian_window",
    "to_y_channel",
]

SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 255.0) ** 2
SSIM_C2 = (0.03 * 255.0) ** 2

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def gaussian_window(size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian, float64 ``(size,)`` — the same as ``cv2.getGaussianKernel(size, sigma)``."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _check_same_shape(shape1: tuple[int, ...], shape2: tuple[int, ...]) -> None:
    if tuple(shape1) != tuple(shape2):
        raise ValueError(f"image shapes differ: {tuple(shape1)} vs {tuple(shape2)}")


def to_y_channel(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB on the [0, 255] scale → ``(H, W, 1)`` unrounded MATLAB Y in [16, 235] (float64).

    Images with one channel are returned unchanged (as float64): they are taken to be luminance already.
    """
    img = img.astype(np.float64)
    if img.ndim == 3 and img.shape[2] == 3:
        return rgb2ycbcr(img / 255.0, y_only=True)[..., None] * 255.0
    return img


def prepare_images(
    img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Shared input handling of the numpy metrics: check shapes, reorder to HWC, crop, optionally take Y.

    Returns:
        Both images as float64 ``(H, W, C)`` arrays (a 2-D input gets ``C = 1``).

    Raises:
        ValueError: Different shapes, an unknown ``input_order``, a negative ``crop_border`` or one
            that leaves nothing.
    """
    _check_same_shape(img.shape, img2.shape)
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    if img.ndim not in (2, 3):
        raise ValueError(f"expected a 2-D or 3-D image, got shape {img.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    out = []
    for im in (img, img2):
        im = np.asarray(im, dtype=np.float64)
        if im.ndim == 2:
            im = im[..., None]
        elif input_order == "CHW":
            im = im.transpose(1, 2, 0)
        if crop_border:
            im = im[crop_border:-crop_border, crop_border:-crop_border, :]
        if test_y_channel:
            im = to_y_channel(im)
        out.append(im)
    if out[0].shape[0] == 0 or out[0].shape[1] == 0:
        raise ValueError(f"crop_border={crop_border} leaves nothing of an image of shape {img.shape}")
    return out[0], out[1]


def calculate_psnr(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: str = "HWC",
    test_y_channel: bool = False,
) -> float:
    """PSNR (dB) between two images on the [0, 255] scale.

    Args:
        img: ``(H, W, C)`` (or ``(C, H, W)`` with ``input_order='CHW'``), ``(H, W)`` or ``(H, W, 1)``; RGB.
        img2: Same shape as ``img``.
        crop_border: Pixels removed from each side before comparing (SR convention: the scale).
        input_order: ``'HWC'`` or ``'CHW'``.
        test_y_channel: Compare the MATLAB Y channel only (RGB inputs).

    Returns:
        PSNR in dB; ``inf`` for identical images.
    """
    a, b = prepare_images(img, img2, crop_border, input_order, test_y_channel)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation of ``(H, W)`` with ``outer(g, g)``, valid region only: ``(H-k+1, W-k+1)``."""
    k = g.size
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0) @ g  # (H-k+1, W)
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ g  # (H-k+1, W-k+1)


def _ssim_map(img: Array, img2: Array, filt: Callable[[Array], Array]) -> Array:
    """SSIM map (Wang et al. 2004) of two images on the [0, 255] scale; ``filt`` is the local Gaussian mean.

    Written once for numpy arrays and torch tensors alike, so both versions compute the same formula.
    """
    mu1, mu2 = filt(img), filt(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = filt(img * img) - mu1_sq
    sigma2_sq = filt(img2 * img2) - mu2_sq
    sigma12 = filt(img * img2) - mu1_mu2
    return ((2 * mu1_mu2 + SSIM_C1) * (2 * sigma12 + SSIM_C2)) / (
        (mu1_sq + mu2_sq + SSIM_C1) * (sigma1_sq + sigma2_sq + SSIM_C2)
    )


def _check_ssim_size(height: int, width: int) -> None:
    if min(height, width) < SSIM_WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs at least {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE} pixels after cropping, got {(height, width)}"
        )


def _ssim_single_channel(img: np.ndarray, img2: np.ndarray) -> float:
    """SSIM of two float64 ``(H, W)`` images on the [0, 255] scale (Gaussian window, valid region)."""
    g = gaussian_window()
    return float(_ssim_map(img, img2, lambda x: _filter_valid(x, g)).mean())


def calculate_ssim(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: str = "HWC",
    test_y_channel: bool = False,
) -> float:
    """SSIM between two images on the [0, 255] scale, averaged over channels.

    Arguments as for :func:`calculate_psnr`; at least 11x11 pixels must remain after cropping.

    Returns:
        Mean SSIM in [-1, 1] (1 for identical images).
    """
    a, b = prepare_images(img, img2, crop_border, input_order, test_y_channel)
    _check_ssim_size(*a.shape[:2])
    return float(np.mean([_ssim_single_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))


# ----------------------------------------------------------------------------------------------------------------------
# torch versions: (B, C, H, W) in [0, 1] -> (B,)
# ----------------------------------------------------------------------------------------------------------------------


def _prepare_pt(
    img: torch.Tensor, img2: torch.Tensor, crop_border: int, test_y_channel: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes, crop, optionally take Y; return float64 ``(B, C, H, W)`` tensors on the [0, 255] scale."""
    _check_same_shape(tuple(img.shape), tuple(img2.shape))
    if img.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) tensors, got shape {tuple(img.shape)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    out = []
    for im in (img, img2):
        im = im.to(torch.float64)
        if crop_border:
            im = im[:, :, crop_border:-crop_border, crop_border:-crop_border]
        if test_y_channel and im.shape[1] == 3:
            im = rgb2ycbcr_pt(im, y_only=True)
        out.append(im * 255.0)
    if out[0].shape[2] == 0 or out[0].shape[3] == 0:
        raise ValueError(f"crop_border={crop_border} leaves nothing of an image of shape {tuple(img.shape)}")
    return out[0], out[1]


def calculate_psnr_pt(
    img: torch.Tensor, img2: torch.Tensor, crop_border: int, test_y_channel: bool = False
) -> torch.Tensor:
    """PSNR (dB) per image for ``(B, C, H, W)`` tensors in [0, 1]; same protocol as :func:`calculate_psnr`.

    Returns:
        ``(B,)`` float64 tensor; ``inf`` where the images are identical.
    """
    a, b = _prepare_pt(img, img2, crop_border, test_y_channel)
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)


def calculate_ssim_pt(
    img: torch.Tensor, img2: torch.Tensor, crop_border: int, test_y_channel: bool = False
) -> torch.Tensor:
    """SSIM per image for ``(B, C, H, W)`` tensors in [0, 1]; same protocol as :func:`calculate_ssim`.

    Returns:
        ``(B,)`` float64 tensor, the mean over channels of each image's SSIM.
    """
    a, b = _prepare_pt(img, img2, crop_border, test_y_channel)
    _check_ssim_size(*a.shape[2:])
    channels = a.shape[1]
    g = torch.from_numpy(gaussian_window()).to(a.device)
    # The 2-D Gaussian is separable: two 1-D depthwise passes cost 2k instead of k² multiplies per pixel.
    g_col = g.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    g_row = g.view(1, 1, 1, -1).expand(channels, 1, 1, -1)

    def filt(x: torch.Tensor) -> torch.Tensor:
        # Depthwise, no padding: the valid region.
        return F.conv2d(F.conv2d(x, g_col, groups=channels), g_row, groups=channels)

    return _ssim_map(a, b, filt).mean(dim=(2, 3)).mean(dim=1)
