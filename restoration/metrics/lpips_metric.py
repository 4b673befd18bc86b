"""``calculate_lpips``: LPIPS between a restored image and its ground truth (lower is better).

Called like every metric by :func:`restoration.evaluation.evaluate`: ``fn(img, img2, **options)``
with uint8 RGB ``(H, W, 3)`` images. The network (:class:`restoration.losses.lpips.LPIPS`) is built once
per (net, files, device) and kept; it runs on the current CUDA device when there is one.

    val:
      metrics:
        lpips: {type: calculate_lpips, better: lower, net: vgg,
                backbone_weights_path: experiments/pretrained_models/vgg16-397923af.pth,
                lpips_weights_path: experiments/pretrained_models/lpips_v0.1_vgg.pth}
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np
import torch

from restoration.losses.lpips import LPIPS, lpips_file_problems

__all__ = ["calculate_lpips"]


@functools.lru_cache(maxsize=4)
def _network(net: str, backbone_weights_path: str, lpips_weights_path: str, device: str) -> LPIPS:
    return LPIPS(backbone_weights_path, lpips_weights_path, net).to(device)


def _to_tensor(img: np.ndarray, crop_border: int) -> torch.Tensor:
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"calculate_lpips needs RGB (H, W, 3) images, got shape {img.shape}")
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32) / scale).permute(2, 0, 1)[None]


@torch.no_grad()
def calculate_lpips(img: np.ndarray, img2: np.ndarray, backbone_weights_path: str | None = None,
                    lpips_weights_path: str | None = None, net: str = "vgg", crop_border: int = 0) -> float:
    """LPIPS v0.1 of two RGB images (uint8 in [0, 255] or float in [0, 1]), ``(H, W, 3)``.

    Args:
        backbone_weights_path, lpips_weights_path, net: See :class:`restoration.losses.lpips.LPIPS`.
        crop_border: Pixels cut from each border of both images first.
    """
    if img.shape != img2.shape:
        raise ValueError(f"calculate_lpips: image shapes differ, {img.shape} vs {img2.shape}")
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    model = _network(net, str(backbone_weights_path), str(lpips_weights_path), device)
    a, b = (_to_tensor(x, crop_border).to(device) for x in (img, img2))
    return float(model(a, b, normalize=True).item())


def _check_options(opt: Mapping[str, Any]) -> list[str]:
    """Missing weight files are reported by the option check, before anything starts."""
    return lpips_file_problems(opt["net"], opt["backbone_weights_path"], opt["lpips_weights_path"])


calculate_lpips.check_options = _check_options  # type: ignore[attr-defined]  # read by the option check
