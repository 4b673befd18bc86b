"""MATLAB's ``fspecial('gaussian', size, sigma)`` for numpy, shared by the BSRGAN degradation and NIQE."""

from __future__ import annotations

import numpy as np

__all__ = ["matlab_gaussian"]

_TINY = 1e-6  # floor of sigma: a drawn sigma of 0 would divide by zero


def matlab_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: values below ``eps·max`` set to 0, normalised.

    Returns:
        A float64 ``(size, size)`` kernel centred at ``(size - 1) / 2`` that sums to 1; ``sigma`` below 1e-6
        is taken as 1e-6 (a single 1 at the centre for odd ``size``).
    """
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    kernel = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * max(sigma, _TINY) ** 2))
    kernel[kernel < np.finfo(np.float64).eps * kernel.max()] = 0
    return kernel / kernel.sum()
