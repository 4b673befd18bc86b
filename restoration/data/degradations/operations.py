"""The single-step degradations of a GT image: MATLAB bicubic downscaling, Gaussian noise, OpenCV JPEG.

The option-driven chain (:mod:`restoration.data.degradations.chain`) and the BSRGAN recipe
(:mod:`restoration.data.degradations.bsrgan`) are both made of these. Images are numpy ``(H, W, C)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from restoration.data.transforms import to_float
from restoration.errors import DataError
from restoration.utils.image_io import imencode, imfrombytes
from restoration.utils.matlab_imresize import imresize

__all__ = ["bicubic_downscale", "add_gaussian_noise", "jpeg_compress"]


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(img, 1/scale, 'bicubic')``; H and W must be multiples of ``scale``.

    Integer images stay integer (rounded like MATLAB), float images stay float (unclipped).
    """
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise DataError(f"bicubic x{scale}: image size {h}x{w} is not a multiple of the scale (mod-crop it first)")
    if scale == 1:
        return img
    return imresize(img, 1.0 / scale)


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator, clip: bool = False) -> np.ndarray:
    """``img + N(0, sigma/255)`` as float32 in [0, 1] units (``sigma`` in [0, 255] units)."""
    x = to_float(img)
    noisy = x + rng.standard_normal(x.shape, dtype=np.float64).astype(np.float32) * np.float32(sigma / 255.0)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode with OpenCV's JPEG encoder at ``quality`` and decode; returns ``uint8``.

    Colour images are encoded from BGR (OpenCV's order, done inside :func:`imencode`), with OpenCV's
    default 4:2:0 chroma subsampling, as the JPEG-artifact-removal papers do with ``cv2.imencode``.
    """
    if img.dtype != np.uint8:
        x = to_float(img)
        img = np.floor(np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = imencode(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return imfrombytes(buf, f"<jpeg quality {quality}>", mode="gray" if img.shape[-1] == 1 or img.ndim == 2 else "rgb")
