"""Images side by side: LQ (upsampled, nearest) | SR | GT rows for looking at data and results.

Every function takes and returns uint8 RGB ``(H, W, 3)`` arrays (gray ``(H, W, 1)`` or ``(H, W)`` inputs are
shown as RGB), so a grid can be written with :func:`~restoration.utils.image_io.imwrite` or sent to tensorboard.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["GAP", "to_rgb", "upsample_nearest", "hstack", "vstack", "thumbnail", "comparison_row"]

#: White pixels between two images of a grid (and between two rows).
GAP = 2


def to_rgb(img: np.ndarray) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` uint8 → ``(H, W, 3)`` uint8."""
    if img.ndim == 2:
        img = img[:, :, None]
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]


def upsample_nearest(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` enlarged (or shrunk) to ``(height, width)`` by nearest neighbour: every LQ pixel stays a
    visible block, nothing is smoothed away or invented."""
    rows = np.arange(height) * img.shape[0] // height
    cols = np.arange(width) * img.shape[1] // width
    return img[rows][:, cols]


def hstack(images: Sequence[np.ndarray], gap: int = GAP) -> np.ndarray:
    """Images left to right, top-aligned, ``gap`` white columns between them; lower ones are padded white.

    The result is ``max(h)`` × ``sum(w) + gap * (n - 1)``.
    """
    images = [to_rgb(i) for i in images]
    height = max(i.shape[0] for i in images)
    width = sum(i.shape[1] for i in images) + gap * (len(images) - 1)
    out = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for img in images:
        out[: img.shape[0], x: x + img.shape[1]] = img
        x += img.shape[1] + gap
    return out


def vstack(images: Sequence[np.ndarray], gap: int = GAP) -> np.ndarray:
    """Images top to bottom, left-aligned, ``gap`` white rows between them: ``sum(h) + gap * (n - 1)`` × ``max(w)``."""
    return np.ascontiguousarray(hstack([np.transpose(to_rgb(i), (1, 0, 2)) for i in images], gap).transpose(1, 0, 2))


def thumbnail(img: np.ndarray, max_side: int) -> np.ndarray:
    """``img`` shrunk (area average) so that its longer side is at most ``max_side``; smaller images unchanged."""
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return to_rgb(img)
    f = max_side / max(h, w)
    small = cv2.resize(to_rgb(img), (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return small


def comparison_row(lq: np.ndarray, *others: np.ndarray | None, gap: int = GAP) -> np.ndarray:
    """``LQ | others...`` with the LQ upsampled (nearest) to the first other image's size; ``None`` entries
    (no ground truth) are left out. E.g. ``comparison_row(lq, sr, gt)`` or ``comparison_row(lq, gt)``."""
    shown = [o for o in others if o is not None]
    if not shown:
        return to_rgb(lq)
    h, w = shown[0].shape[:2]
    return hstack([upsample_nearest(to_rgb(lq), h, w), *shown], gap)
