"""Transforms on ``(H, W, C)`` numpy images: conversion to float and to tensors, crops, flip/rotation
augmentation.

All randomness comes from an explicit ``numpy.random.Generator`` argument, so a sample is a pure
function of its generator's seed (see :meth:`BaseDataset.sample_rng`).
"""

from __future__ import annotations

import numpy as np
import torch

from restoration.errors import DataError

__all__ = ["to_float", "hwc_to_chw", "mod_crop", "random_crop", "paired_random_crop", "augment"]


def to_float(img: np.ndarray) -> np.ndarray:
    """Integer ``(H, W, C)`` image → float32 in [0, 1] (``uint8`` / 255, ``uint16`` / 65535)."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return img.astype(np.float32, copy=False)


def hwc_to_chw(img: np.ndarray) -> torch.Tensor:
    """Float ``(H, W, C)`` array → contiguous ``(C, H, W)`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _too_small(name: str, shape: tuple[int, ...], need: int, what: str) -> DataError:
    return DataError(f"image {name} is {shape[0]}x{shape[1]} (HxW), smaller than the {what} {need}x{need}; "
                      "remove it from the dataset or lower gt_size")


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator, name: str = "<image>") -> np.ndarray:
    """A random ``size × size`` patch of ``img``; ``name`` appears in the error if it is too small."""
    h, w = img.shape[:2]
    if h < size or w < size:
        raise _too_small(name, img.shape, size, "training patch")
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return img[top: top + size, left: left + size]


def paired_random_crop(img_gt: np.ndarray, img_lq: np.ndarray, gt_size: int, scale: int, rng: np.random.Generator,
                       gt_name: str = "<gt>", lq_name: str = "<lq>") -> tuple[np.ndarray, np.ndarray]:
    """Crop aligned patches: ``gt_size`` from GT and ``gt_size // scale`` from LQ at the matching place.

    The caller has already checked that GT is ``scale`` times LQ.

    Raises:
        ValueError: If ``gt_size`` is not a multiple of ``scale`` or an image is smaller than its patch.
    """
    if gt_size % scale:
        raise DataError(f"gt_size {gt_size} must be a multiple of scale {scale}")
    lq_size = gt_size // scale
    h, w = img_lq.shape[:2]
    if h < lq_size or w < lq_size:
        raise _too_small(f"{lq_name} (GT {gt_name})", img_lq.shape, lq_size, f"LQ patch (gt_size {gt_size} / scale {scale})")
    top = int(rng.integers(0, h - lq_size + 1))
    left = int(rng.integers(0, w - lq_size + 1))
    lq = img_lq[top: top + lq_size, left: left + lq_size]
    gt = img_gt[top * scale: (top + lq_size) * scale, left * scale: (left + lq_size) * scale]
    return gt, lq


def augment(imgs: list[np.ndarray], rng: np.random.Generator, hflip: bool = True, rotation: bool = True) -> list[np.ndarray]:
    """Apply one random flip/rotation, identical for every image of ``imgs`` (BasicSR's ``augment``).

    With ``hflip`` a horizontal flip with probability 0.5; with ``rotation`` additionally a vertical
    flip and a transpose (90° rotation), each with probability 0.5 — together the 8 dihedral
    transforms. A transpose swaps H and W of non-square images.
    """
    do_h = hflip and rng.random() < 0.5
    do_v = rotation and rng.random() < 0.5
    do_t = rotation and rng.random() < 0.5
    out = []
    for img in imgs:
        if do_h:
            img = img[:, ::-1]
        if do_v:
            img = img[::-1]
        if do_t:
            img = img.transpose(1, 0, 2)
        out.append(np.ascontiguousarray(img))
    return out
