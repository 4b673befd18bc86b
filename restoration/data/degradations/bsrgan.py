"""The BSRGAN degradation (Zhang et al. 2021) as SwinIR's real-world SR models were trained with it.

KAIR's ``utils_blindsr.degradation_bsrgan`` on one numpy image, every random draw from the
``numpy.random.Generator`` passed in (a dataset's :meth:`sample_rng`):

1. at ×4, with probability 0.25, first halve the image (OpenCV resize or MATLAB bicubic, even odds)
   and go on at ×2;
2. seven operations in random order: blur, blur, a random downscale, the downscale to the target
   size (always after the random one), Gaussian noise, JPEG (p = 0.9), camera noise (disabled, as
   in KAIR's dataset);
3. a final JPEG.

The random downscale is, with p = 0.75, an OpenCV resize by ``1/U(1, 2·sf)`` and otherwise a Gaussian
blur shifted by ``(sf - 1)/2`` pixels followed by nearest subsampling. OpenCV interpolations are drawn
from bilinear, bicubic and area. Images are RGB float32 ``(H, W, 3)`` in [0, 1].
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from restoration.data.degradations.operations import jpeg_compress
from restoration.errors import DataError
from restoration.utils.matlab_fspecial import matlab_gaussian
from restoration.utils.matlab_imresize import imresize

__all__ = ["bsrgan_degrade", "bsrgan_blur_kernel", "anisotropic_gaussian", "shift_kernel"]

_JPEG_PROB = 0.9  # the JPEG among the shuffled operations (the last one always happens)
_HALVE_PROB = 0.25  # x4 only: start at half size and continue at x2
_RESIZE_PROB = 0.75  # random downscale: OpenCV resize, else shifted blur + nearest
_CV2_INTERPOLATIONS = (1, 2, 3)  # cv2.INTER_LINEAR, INTER_CUBIC, INTER_AREA
_TINY = 1e-6  # floor of drawn sigmas/eigenvalues: U(0, 1) may return 0, which would divide by zero


def anisotropic_gaussian(size: int, theta: float, l1: float, l2: float) -> np.ndarray:
    """Gaussian with covariance eigenvalues ``l1``, ``l2``, the first along angle ``theta`` (KAIR
    ``anisotropic_Gaussian``), on the grid centred at ``(size - 1)/2``; ``x`` along columns."""
    v = np.array([math.cos(theta), math.sin(theta)])
    reflect = np.array([[v[0], v[1]], [v[1], -v[0]]])  # symmetric and orthogonal: its own inverse
    cov = reflect @ np.diag([max(l1, _TINY), max(l2, _TINY)]) @ reflect
    inv = np.linalg.inv(cov)
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    xx, yy = np.meshgrid(r, r)
    kernel = np.exp(-0.5 * (inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy))
    return kernel / kernel.sum()


def bsrgan_blur_kernel(rng: np.random.Generator, sf: int) -> np.ndarray:
    """KAIR ``add_blur``'s kernel: size 7, 9, ..., 25; p = 0.5 anisotropic (eigenvalues ``(4 + sf)·U(0, 1)``,
    angle ``U(0, π)``), else isotropic with sigma ``(2 + 0.2·sf)·U(0, 1)``."""
    size = 2 * int(rng.integers(2, 12)) + 3
    if rng.random() < 0.5:
        wide = 4.0 + sf
        l1, l2 = wide * rng.random(), wide * rng.random()
        return anisotropic_gaussian(size, rng.random() * math.pi, l1, l2)
    return matlab_gaussian(size, (2.0 + 0.2 * sf) * rng.random())


def _linear_resample(n: int, coords: np.ndarray) -> np.ndarray:
    """``(len(coords), n)`` matrix of linear interpolation at ``coords`` (clipped to ``[0, n-1]``)."""
    coords = np.clip(coords, 0, n - 1)
    low = np.floor(coords).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = coords - low
    m = np.zeros((len(coords), n))
    m[np.arange(len(coords)), low] += 1 - frac
    m[np.arange(len(coords)), high] += frac
    return m


def shift_kernel(kernel: np.ndarray, sf: int) -> np.ndarray:
    """The kernel resampled (bilinear) at ``+(sf - 1)/2`` in x and y (KAIR ``shift_pixel``, which used
    SciPy's removed ``interp2d``), so nearest subsampling after it is centred like a bicubic downscale."""
    h, w = kernel.shape
    shift = (sf - 1) * 0.5
    rows = _linear_resample(h, np.arange(h) + shift)
    cols = _linear_resample(w, np.arange(w) + shift)
    return rows @ kernel @ cols.T


def _convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolution of each channel, mirrored borders (SciPy ``ndimage.convolve(mode='mirror')``)."""
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])  # cv2.filter2D correlates
    out = cv2.filter2D(img, -1, flipped.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(img.shape)


def _resize(img: np.ndarray, width: int, height: int, interpolation: int) -> np.ndarray:
    out = cv2.resize(img, (max(1, width), max(1, height)), interpolation=interpolation)
    return np.clip(out.reshape(out.shape[0], out.shape[1], img.shape[2]), 0.0, 1.0)


def _gaussian_noise(img: np.ndarray, rng: np.random.Generator, low: int = 2, high: int = 25) -> np.ndarray:
    """KAIR ``add_Gaussian_noise``: level ~ {2, ..., 25}/255; p = 0.4 colour, p = 0.4 gray, p = 0.2 noise
    correlated across channels (covariance ``|L²·UᵀDU|``, ``L = high/255``, random rotation ``U``)."""
    level = int(rng.integers(low, high + 1)) / 255.0
    r = rng.random()
    h, w = img.shape[:2]
    if r > 0.6:
        noise = rng.normal(0.0, level, img.shape)
    elif r < 0.4:
        noise = rng.normal(0.0, level, (h, w, 1))
    else:
        d = np.diag(rng.random(3))
        u = np.linalg.svd(rng.random((3, 3)))[0]  # an orthonormal basis, as scipy.linalg.orth
        cov = np.abs((high / 255.0) ** 2 * (u.T @ d @ u))
        noise = rng.multivariate_normal(np.zeros(3), cov, (h, w), check_valid="ignore")
    return np.clip(img + noise.astype(np.float32), 0.0, 1.0)


def _jpeg(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    quality = int(rng.integers(30, 96))
    return jpeg_compress(img, quality).astype(np.float32) / 255.0


def bsrgan_degrade(img: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """Degrade one image.

    Args:
        img: RGB ``(H, W, 3)`` float32 in [0, 1], H and W multiples of ``scale``.
        scale: The SR factor (KAIR uses 2, 3 and 4).
        rng: Source of every random draw.

    Returns:
        The LQ image ``(H / scale, W / scale, 3)``, float32 in [0, 1] (on the 8-bit grid: JPEG comes last).
    """
    h, w = img.shape[:2]
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"the bsrgan degradation needs RGB (H, W, 3) images, got shape {img.shape}")
    if h % scale or w % scale:
        raise DataError(f"bsrgan x{scale}: image size {h}x{w} is not a multiple of the scale")
    img = img.astype(np.float32)
    sf = scale
    if sf == 4 and rng.random() < _HALVE_PROB:
        if rng.random() < 0.5:
            img = _resize(img, w // 2, h // 2, int(rng.choice(_CV2_INTERPOLATIONS)))
        else:
            img = np.clip(imresize(img, 0.5), 0.0, 1.0).astype(np.float32)
        sf = 2

    order = list(rng.permutation(7))
    i2, i3 = order.index(2), order.index(3)
    if i2 > i3:  # the random downscale comes before the one to the target size
        order[i2], order[i3] = order[i3], order[i2]
    size_before = img.shape[:2]
    for op in order:
        if op in (0, 1):
            img = np.clip(_convolve(img, bsrgan_blur_kernel(rng, sf)), 0.0, 1.0)
        elif op == 2:
            size_before = img.shape[:2]
            if rng.random() < _RESIZE_PROB:
                factor = rng.uniform(1, 2 * sf)
                img = _resize(img, int(img.shape[1] / factor), int(img.shape[0] / factor),
                              int(rng.choice(_CV2_INTERPOLATIONS)))
            else:
                kernel = shift_kernel(matlab_gaussian(25, rng.uniform(0.1, 0.6 * sf)), sf)
                img = np.clip(_convolve(img, kernel / kernel.sum())[0::sf, 0::sf], 0.0, 1.0)
        elif op == 3:
            img = _resize(img, int(size_before[1] / sf), int(size_before[0] / sf), int(rng.choice(_CV2_INTERPOLATIONS)))
        elif op == 4:
            img = _gaussian_noise(img, rng)
        elif op == 5 and rng.random() < _JPEG_PROB:
            img = _jpeg(img, rng)
        # op 6: camera (ISP) noise, disabled as in KAIR's training dataset
    img = _jpeg(img, rng)
    if img.shape[:2] != (h // scale, w // scale):  # cannot happen for multiples of the scale; a guard
        raise DataError(f"bsrgan x{scale}: produced {img.shape[:2]} from {h}x{w}, expected {(h // scale, w // scale)}")
    return img
