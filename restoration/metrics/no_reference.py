"""No-reference scores for test sets without ground truth (real-world LQ photographs).

NIQE/BRISQUE need a model fitted on natural images (NIQE's ``modelparameters.mat``); until such a file is
part of the framework, two classical, parameter-free statistics describe a restored image on its own:

* :func:`calculate_noise_sigma` — the noise level left in the image, Immerkær's estimator ("Fast noise
  variance estimation", CVIU 1996): the Laplacian-difference mask ``M = [[1,-2,1],[-2,4,-2],[1,-2,1]]``
  cancels locally linear image structure, so ``σ = sqrt(π/2) / (6 (H-2)(W-2)) · Σ |I * M|`` measures what is
  left, the noise. Lower is cleaner (over-smoothing also lowers it: read it with the sharpness).
* :func:`calculate_sharpness` — the variance of the 4-neighbour Laplacian (Pech-Pacheco et al., ICPR
  2000), the standard focus measure. Higher is sharper (noise also raises it: read it with the noise).

Both work on the MATLAB Y channel in [0, 255] by default, take ``(H, W, 3)`` RGB (or ``(H, W)``) images and
accept an ``img2`` they ignore, so they share the metric signature ``fn(img, img2, **options)``.
"""

from __future__ import annotations

import math

import numpy as np

from restoration.metrics.psnr_ssim import to_y_channel

__all__ = ["calculate_noise_sigma", "calculate_sharpness"]

_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)


def _plane(img: np.ndarray, crop_border: int, test_y_channel: bool) -> np.ndarray:
    """``(H, W)`` float64 in [0, 255]: the Y channel (or the channel mean), border cropped."""
    img = np.asarray(img)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    if img.ndim == 3 and img.shape[2] == 3:
        plane = to_y_channel(img)[..., 0] if test_y_channel else img.astype(np.float64).mean(axis=2)
    elif img.ndim == 3 and img.shape[2] == 1 or img.ndim == 2:
        plane = img.reshape(img.shape[0], img.shape[1]).astype(np.float64)
    else:
        raise ValueError(f"no-reference metrics need (H, W), (H, W, 1) or (H, W, 3) images, got shape {img.shape}")
    if plane.shape[0] < 3 or plane.shape[1] < 3:
        raise ValueError(f"no-reference metrics need at least 3x3 pixels, got {plane.shape}")
    return plane


def _correlate_valid(plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """3x3 correlation, valid region ``(H-2, W-2)``."""
    h, w = plane.shape
    return sum(kernel[i, j] * plane[i : h - 2 + i, j : w - 2 + j] for i in range(3) for j in range(3))


def calculate_noise_sigma(img: np.ndarray, img2: np.ndarray | None = None, crop_border: int = 0,
                          test_y_channel: bool = True) -> float:
    """Immerkær's noise standard deviation of ``img`` on the [0, 255] scale (lower: less noise).

    Args:
        img: ``(H, W, 3)`` RGB or ``(H, W)``, uint8 [0, 255] (or float on that scale).
        img2: Ignored (no reference needed).
        crop_border: Pixels removed from each side first.
        test_y_channel: Measure the MATLAB Y channel (else the channel mean).
    """
    plane = _plane(img, crop_border, test_y_channel)
    h, w = plane.shape
    return float(math.sqrt(math.pi / 2) * np.abs(_correlate_valid(plane, _IMMERKAER)).sum() / (6 * (h - 2) * (w - 2)))


def calculate_sharpness(img: np.ndarray, img2: np.ndarray | None = None, crop_border: int = 0,
                        test_y_channel: bool = True) -> float:
    """Variance of the Laplacian of ``img`` on the [0, 255] scale (higher: sharper). Arguments as
    :func:`calculate_noise_sigma`."""
    return float(_correlate_valid(_plane(img, crop_border, test_y_channel), _LAPLACIAN).var())


calculate_noise_sigma.no_reference = True  # type: ignore[attr-defined]  # scored without ground truth
calculate_sharpness.no_reference = True  # type: ignore[attr-defined]
