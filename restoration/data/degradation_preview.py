"""A picture of what the network will train on: (GT, degraded LQ) samples of the training pipeline.

Used by ``train.py --preview_degradations N`` and ``scripts/data/preview_degradations.py``. Samples come from
the training dataset exactly as the loop gets them (patches, flips, a DegradationDataset's bicubic / noise /
JPEG / BSRGAN recipe); a trainer that degrades on the device (``RealESRNetModel``, ``RealESRGANModel``) has
its Real-ESRGAN degradation applied with the option file's ``train:`` settings, one draw per sample.

Layout: :data:`PAIRS_PER_ROW` pairs a row, each pair ``GT | LQ`` with the LQ upsampled (nearest) to the GT
size and :data:`~restoration.utils.image_grid.GAP` pixels between them, :data:`PAIR_GAP` pixels between pairs
and between rows. With GT patches ``s`` × ``s`` and ``n`` samples the image is
``rows * s + (rows - 1) * PAIR_GAP`` high and ``k * (2 * s + GAP) + (k - 1) * PAIR_GAP`` wide, where
``k = min(n, PAIRS_PER_ROW)`` and ``rows = ceil(n / PAIRS_PER_ROW)``.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import default_collate

from restoration.data.degradations.realesrgan import degradation_generator, realesrgan_degrade
from restoration.data.loader import build_dataset
from restoration.errors import DataError
from restoration.registry import MODEL_REGISTRY
from restoration.utils.image_grid import GAP, hstack, upsample_nearest, vstack
from restoration.utils.image_io import imwrite, tensor2img
from restoration.utils.rng import seed_everything

__all__ = ["PAIRS_PER_ROW", "PAIR_GAP", "PREVIEW_FILE", "preview_samples", "preview_grid", "expected_size",
           "write_preview"]

#: (GT, LQ) pairs side by side in one row of the preview.
PAIRS_PER_ROW = 4
#: White pixels between two pairs and between two rows (wider than the gap inside a pair, so pairs stand apart).
PAIR_GAP = 8
#: ``train.py --preview_degradations`` writes ``experiments/<name>/`` + this.
PREVIEW_FILE = "degradation_preview.png"


def _device_degradation(opt: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Real-ESRGAN degradation options of a trainer that degrades on the device, else ``None``.

    They are read through the trainer's own ``declared_options`` (its defaults and ``train:``) without
    building its networks: a stage-2 file whose stage-1 weights do not exist yet
    can be previewed.
    """
    trainer = MODEL_REGISTRY.get(opt["model_type"])
    if not hasattr(trainer, "degrade") or not hasattr(trainer, "declared_options"):
        return None
    values = trainer.declared_options(opt.get("train"))
    if not values.get("high_order_degradation", True) or float(values.get("paired_prob", 0)) >= 1:
        return None  # trains on the dataset's own pairs
    return {**values, "scale": int(opt["scale"])}


def preview_samples(opt: Mapping[str, Any], n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` training samples as ``(gt, lq)`` uint8 RGB ``(H, W, C)`` images (LQ at its own size).

    Args:
        opt: Parsed training options (``parse_options``): ``datasets.train``, ``model_type``, ``scale``,
            ``manual_seed``, ``train``.
        n: Number of samples; the dataset is cycled when it has fewer images.

    Raises:
        DataError: The training samples carry no ``lq`` and the trainer makes none (nothing to compare).
    """
    seed = int(opt.get("manual_seed") or 0)
    seed_everything(seed)
    dataset = build_dataset(opt["datasets"]["train"])
    degradation = _device_degradation(opt)
    out = []
    for i in range(n):
        batch = default_collate([dataset[i % len(dataset)]])
        if degradation is not None:
            lq, gt, _ = realesrgan_degrade(batch, degradation, degradation_generator(seed, i + 1))
        elif "lq" in batch:
            lq, gt = batch["lq"], batch["gt"]
        else:
            raise DataError(f"the training samples of {opt['datasets']['train'].get('type')} have no 'lq' and "
                            f"{opt['model_type']} makes none: there is no degradation to preview")
        out.append((tensor2img(gt[0].clamp(0, 1)), tensor2img(lq[0].clamp(0, 1))))
    return out


def preview_grid(samples: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The samples laid out as described in the module docstring: uint8 RGB ``(H, W, 3)``."""
    pairs = [hstack([gt, upsample_nearest(lq, gt.shape[0], gt.shape[1])]) for gt, lq in samples]
    rows = [hstack(pairs[i: i + PAIRS_PER_ROW], PAIR_GAP) for i in range(0, len(pairs), PAIRS_PER_ROW)]
    return vstack(rows, PAIR_GAP)


def expected_size(n: int, gt_size: int) -> tuple[int, int]:
    """``(height, width)`` of the preview of ``n`` samples of ``gt_size``² GT patches."""
    k, rows = min(n, PAIRS_PER_ROW), math.ceil(n / PAIRS_PER_ROW)
    return rows * gt_size + (rows - 1) * PAIR_GAP, k * (2 * gt_size + GAP) + (k - 1) * PAIR_GAP


def write_preview(opt: Mapping[str, Any], n: int, path: str | os.PathLike) -> tuple[int, int]:
    """Write the preview of ``n`` samples to ``path`` (PNG; folders are created); returns its ``(height, width)``."""
    if n < 1:
        raise DataError(f"the preview needs at least one sample, got {n}")
    with torch.no_grad():
        grid = preview_grid(preview_samples(opt, n))
    imwrite(path, grid)
    return grid.shape[0], grid.shape[1]
