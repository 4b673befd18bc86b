"""Arbitrary output scale (``--outscale``): resize a network's output to ``input size x outscale``.

Real-ESRGAN's convention, kept so its users get the same files: the network output is quantised first (uint8 or
uint16), then resized with OpenCV to ``(int(w_in * outscale), int(h_in * outscale))``, Lanczos-4 by default; an
``outscale`` equal to the network's scale leaves the output untouched. ``area`` is the better filter for a large
reduction (``outscale`` well below the network's scale), ``bicubic`` a common alternative.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["OUTSCALE_FILTERS", "DEFAULT_OUTSCALE_FILTER", "outscale_size", "resize_to_outscale"]

#: ``--outscale-filter`` names and their OpenCV interpolation flags.
OUTSCALE_FILTERS = {
    "lanczos4": cv2.INTER_LANCZOS4,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
}
#: Real-ESRGAN's filter (``RealESRGANer.enhance``).
DEFAULT_OUTSCALE_FILTER = "lanczos4"


def outscale_size(height: int, width: int, outscale: float) -> tuple[int, int]:
    """``(H_out, W_out)`` of an ``height x width`` input at ``outscale``, truncated as Real-ESRGAN does (at least 1)."""
    return max(1, int(height * outscale)), max(1, int(width * outscale))


def resize_to_outscale(img: np.ndarray, in_size: tuple[int, int], outscale: float, net_scale: int,
                       filter_name: str = DEFAULT_OUTSCALE_FILTER) -> np.ndarray:
    """Resize the quantised network output ``img`` ``(H, W, C)`` to ``in_size x outscale``.

    Args:
        img: The network's output, ``(H_in * net_scale, W_in * net_scale, C)`` uint8/uint16 (C = 1, 3 or 4).
        in_size: ``(H_in, W_in)`` of the input image.
        outscale: Output size / input size (any positive number).
        net_scale: The network's own scale; equal to ``outscale``, ``img`` is returned as it is.
        filter_name: One of :data:`OUTSCALE_FILTERS`.

    Returns:
        ``(int(H_in * outscale), int(W_in * outscale), C)``, the dtype of ``img``.
    """
    if float(outscale) == float(net_scale):
        return img
    h, w = outscale_size(*in_size, outscale)
    out = cv2.resize(img, (w, h), interpolation=OUTSCALE_FILTERS[filter_name])
    return out[:, :, None] if out.ndim == 2 else out  # OpenCV drops a single channel
