"""``calculate_dists``: DISTS between a restored image and its ground truth (lower is better).

Called like every metric by :func:`restoration.evaluation.evaluate`: ``fn(img, img2, **options)`` with
uint8 RGB ``(H, W, 3)`` images. The network (:class:`restoration.losses.dists.DISTS`) is built once per
(files, device) and kept; it runs on the current CUDA device when there is one.

    val:
      metrics:
        dists: {type: calculate_dists, better: lower,
                backbone_weights_path: experiments/pretrained_models/vgg16-397923af.pth,
                dists_weights_path: experiments/pretrained_models/dists_weights.pt}
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np
import torch

from restoration.losses.dists import DISTS, dists_file_problems

__all__ = ["calculate_dists"]


@functools.lru_cache(maxsize=4)
def _network(backbone_weights_path: str, dists_weights_path: str, device: str) -> DISTS:
    return DISTS(backbone_weights_path, dists_weights_path).to(device)


def _to_tensor(img: np.ndarray, crop_border: int) -> torch.Tensor:
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"calculate_dists needs RGB (H, W, 3) images, got shape {img.shape}")
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32) / scale).permute(2, 0, 1)[None]


@torch.no_grad()
def calculate_dists(img: np.ndarray, img2: np.ndarray, backbone_weights_path: str | None = None,
                    dists_weights_path: str | None = None, crop_border: int = 0) -> float:
    """DISTS of two RGB images (uint8 in [0, 255] or float in [0, 1]), ``(H, W, 3)``; 0 for equal images.

    Args:
        backbone_weights_path, dists_weights_path: See :class:`restoration.losses.dists.DISTS`.
        crop_border: Pixels cut from each border of both images first.
    """
    if img.shape != img2.shape:
        raise ValueError(f"calculate_dists: image shapes differ, {img.shape} vs {img2.shape}")
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    model = _network(str(backbone_weights_path), str(dists_weights_path), device)
    a, b = (_to_tensor(x, crop_border).to(device) for x in (img, img2))
    return float(model(a, b).item())


def _check_options(opt: Mapping[str, Any]) -> list[str]:
    """Missing weight files are reported by the option check, before anything starts."""
    return dists_file_problems(opt["backbone_weights_path"], opt["dists_weights_path"])


calculate_dists.check_options = _check_options  # type: ignore[attr-defined]  # read by the option check
