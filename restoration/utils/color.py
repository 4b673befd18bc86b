"""RGB <-> YCbCr conversion, exactly as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb`` (ITU-R BT.601, studio swing).

The SR literature reports PSNR/SSIM on the Y channel computed this way, so the constants below are MATLAB's, not
OpenCV's (``cv2.cvtColor(..., COLOR_RGB2YCrCb)`` uses full swing and gives different numbers).

With R, G, B in [0, 1] the forward transform gives values in [0, 255]::

    Y  =  16 +  65.481 R + 128.553 G +  24.966 B
    Cb = 128 -  37.797 R -  74.203 G + 112.000 B
    Cr = 128 + 112.000 R -  93.786 G -  18.214 B

Value conventions (numpy functions), the same as MATLAB's for its ``uint8`` and ``double`` classes:

* ``uint8`` input: values in [0, 255]; the output is ``uint8``, rounded (half away from zero) and clipped.
* floating input: values in [0, ``data_range``] with ``data_range = 1.0`` by default; pass ``data_range=255.0`` for
  float images in [0, 255]. The output is the same float dtype in the same range, unrounded.

The torch functions take ``(B, 3, H, W)`` tensors in [0, 1] and return [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["rgb2ycbcr", "ycbcr2rgb", "rgb2ycbcr_pt", "ycbcr2rgb_pt", "RGB2YCBCR_MATRIX", "YCBCR_OFFSET"]

# Rows: Y, Cb, Cr. Columns: R, G, B. Applied to RGB in [0, 1], giving [0, 255] (MATLAB's rgb2ycbcr.m).
RGB2YCBCR_MATRIX = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
# The exact inverse (MATLAB's ycbcr2rgb.m uses this inverse, rounded to its printed digits).
_YCBCR2RGB_MATRIX = np.linalg.inv(RGB2YCBCR_MATRIX)


def _to_unit_float64(img: np.ndarray, data_range: float | None) -> tuple[np.ndarray, float]:
    """Return ``img`` as float64 scaled to [0, 1], and the range it came in."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
    if img.dtype == np.uint8:
        rng = 255.0 if data_range is None else float(data_range)
    elif np.issubdtype(img.dtype, np.floating):
        rng = 1.0 if data_range is None else float(data_range)
    else:
        raise TypeError(f"expected a uint8 or floating image, got dtype {img.dtype}")
    return img.astype(np.float64) / rng, rng


def _from_255(out: np.ndarray, like: np.ndarray, rng: float) -> np.ndarray:
    """Convert a float64 result in [0, 255] back to the input's dtype and range."""
    if like.dtype == np.uint8:
        # MATLAB rounds half away from zero; values are clipped to [0, 255] first, so floor(x + 0.5) does that.
        return np.floor(np.clip(out, 0.0, 255.0) + 0.5).astype(np.uint8)
    return (out * (rng / 255.0)).astype(like.dtype)


def rgb2ycbcr(img: np.ndarray, y_only: bool = False, data_range: float | None = None) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` for an ``(H, W, 3)`` RGB numpy image.

    Args:
        img: RGB image, ``(H, W, 3)``; ``uint8`` in [0, 255] or float in [0, ``data_range``].
        y_only: Return only Y, shape ``(H, W)``.
        data_range: The white level of the input (default 255 for ``uint8``, 1.0 for floats).

    Returns:
        YCbCr ``(H, W, 3)`` (or Y ``(H, W)``), same dtype and range convention as the input (see module docstring).
    """
    unit, rng = _to_unit_float64(img, data_range)
    if y_only:
        out = unit @ RGB2YCBCR_MATRIX[0] + YCBCR_OFFSET[0]
    else:
        out = unit @ RGB2YCBCR_MATRIX.T + YCBCR_OFFSET
    return _from_255(out, img, rng)


def ycbcr2rgb(img: np.ndarray, data_range: float | None = None) -> np.ndarray:
    """Inverse of :func:`rgb2ycbcr` (MATLAB ``ycbcr2rgb``) for an ``(H, W, 3)`` YCbCr numpy image.

    Args:
        img: YCbCr image, ``(H, W, 3)``; ``uint8`` in [0, 255] or float in [0, ``data_range``].
        data_range: The white level of the input (default 255 for ``uint8``, 1.0 for floats).

    Returns:
        RGB ``(H, W, 3)``, same dtype and range convention as the input; floats are not clipped.
    """
    unit, rng = _to_unit_float64(img, data_range)
    rgb_unit = (unit * 255.0 - YCBCR_OFFSET) @ _YCBCR2RGB_MATRIX.T  # RGB in [0, 1]
    return _from_255(rgb_unit * 255.0, img, rng)


def rgb2ycbcr_pt(img: torch.Tensor, y_only: bool = False) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` for RGB tensors.

    Args:
        img: ``(B, 3, H, W)`` float tensor, RGB in [0, 1].
        y_only: Return only Y, ``(B, 1, H, W)``.

    Returns:
        ``(B, 3, H, W)`` YCbCr (or ``(B, 1, H, W)`` Y) in [0, 1], unrounded, same dtype as ``img``.
    """
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) tensor, got shape {tuple(img.shape)}")
    rows = RGB2YCBCR_MATRIX[:1] if y_only else RGB2YCBCR_MATRIX
    offset = YCBCR_OFFSET[:1] if y_only else YCBCR_OFFSET
    weight = torch.as_tensor(rows, dtype=img.dtype, device=img.device)
    bias = torch.as_tensor(offset, dtype=img.dtype, device=img.device)
    out = torch.einsum("oc,bchw->bohw", weight, img) + bias.view(1, -1, 1, 1)
    return out / 255.0


def ycbcr2rgb_pt(img: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb2ycbcr_pt`: ``(B, 3, H, W)`` YCbCr in [0, 1] → RGB in [0, 1] (not clipped)."""
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) tensor, got shape {tuple(img.shape)}")
    weight = torch.as_tensor(_YCBCR2RGB_MATRIX, dtype=img.dtype, device=img.device)
    bias = torch.as_tensor(YCBCR_OFFSET, dtype=img.dtype, device=img.device)
    return torch.einsum("oc,bchw->bohw", weight, img * 255.0 - bias.view(1, -1, 1, 1))
