"""PSNR/SSIM as the SIDD denoising papers (AP-BSN, TBSN) report them: scikit-image on uint8 outputs.

Differences from :func:`restoration.metrics.psnr_ssim.calculate_ssim` (BasicSR/MATLAB SSIM):
scikit-image's ``structural_similarity`` with ``gaussian_weights=True, sigma=1.5, win_size=11``
uses the *sample* covariance (``N/(N-1)`` correction) and averages the SSIM map over the image
minus a 5-pixel border after filtering with a truncated Gaussian (``truncate=3.5``); the values
differ in the 3rd-4th decimal. Use these to compare with published SIDD numbers (TBSN: 37.7 dB on
SIDD validation with the released weights).

Inputs are RGB images on the [0, 255] scale; float inputs are first quantised like the official
evaluation (``floor(x + 0.5)`` clipped to [0, 255]), so a network output gives the same number
whether it is passed before or after conversion to uint8.
"""

from __future__ import annotations

import numpy as np

from restoration.metrics.psnr_ssim import prepare_images

__all__ = ["calculate_psnr_skimage", "calculate_ssim_skimage", "quantize_uint8"]


def quantize_uint8(img: np.ndarray) -> np.ndarray:
    """``floor(x + 0.5)`` clipped to [0, 255], as float64 (integer inputs are unchanged)."""
    img = np.asarray(img)
    if np.issubdtype(img.dtype, np.integer):
        return img.astype(np.float64)
    return np.clip(np.floor(img.astype(np.float64) + 0.5), 0, 255)


def _quantized_pair(
    img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Both images quantised (:func:`quantize_uint8`), then checked, cropped and reordered to float64 HWC."""
    return prepare_images(quantize_uint8(img), quantize_uint8(img2), crop_border, input_order, test_y_channel)


def calculate_psnr_skimage(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = "HWC",
                           test_y_channel: bool = False) -> float:
    """``skimage.metrics.peak_signal_noise_ratio`` on uint8-quantised RGB images (``data_range=255``).

    Args:
        img, img2: ``(H, W, 3)`` (or CHW with ``input_order='CHW'``) on the [0, 255] scale.
        crop_border: Pixels removed from each side (0 for SIDD).
        test_y_channel: Compare MATLAB Y only (not used by SIDD papers).
    """
    from skimage.metrics import peak_signal_noise_ratio  # heavy dependency

    a, b = _quantized_pair(img, img2, crop_border, input_order, test_y_channel)
    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(b, a, data_range=255))


def calculate_ssim_skimage(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = "HWC",
                           test_y_channel: bool = False) -> float:
    """``skimage.metrics.structural_similarity`` with Gaussian weights (sigma 1.5, 11x11), channel-averaged.

    Exactly the call of the official TBSN/AP-BSN SIDD evaluation (there on [0, 1] images with
    ``data_range=1``, which gives the same value as [0, 255] with ``data_range=255``).
    """
    from skimage.metrics import structural_similarity  # heavy dependency

    a, b = _quantized_pair(img, img2, crop_border, input_order, test_y_channel)
    return float(structural_similarity(a, b, data_range=255, channel_axis=2, gaussian_weights=True,
                                       sigma=1.5, win_size=11))
