"""Progressive patch-size training (Restormer, Zamir et al. CVPR 2022): smaller patches in bigger batches first.

A training set declares three equal-length lists (``datasets.train``)::

    gt_size: 384                                   # the loader's crop: the largest stage patch
    batch_size_per_gpu: 8                          # the loader's batch: the largest stage batch
    mini_batch_sizes: [8, 5, 4, 2, 1, 1]           # batch per GPU of each stage
    gt_sizes: [128, 160, 192, 256, 320, 384]       # GT patch side of each stage
    iters: [92000, 64000, 48000, 36000, 36000, 24000]  # iterations of each stage

Stage ``j`` covers iterations ``sum(iters[:j]) + 1 .. sum(iters[:j+1])`` (1-based, as the loop counts them); the
last stage continues past ``sum(iters)`` to ``train.total_iter`` (Restormer's ``train.py`` does the same). The loader
always delivers ``batch_size_per_gpu`` samples cropped to ``gt_size``; at each iteration the stage takes a random
subset of ``mini_batch_sizes[j]`` samples (when smaller than the batch) and cuts one random ``gt_sizes[j]`` patch,
at the same place for the whole batch, out of ``gt`` and the matching ``gt_sizes[j] // scale`` patch out of ``lq``
(when smaller than the crop). These are the same kind of crops as Restormer's, but not its random numbers:
Restormer draws from Python's ``random``; here every draw comes from a NumPy generator seeded by
``(manual_seed, iteration, rank, micro-batch)``, so a resumed run makes exactly the crops the uninterrupted run
made, and each rank of a multi-GPU run crops its own batch differently. One deliberate difference: Restormer
measures the crop offset in ``gt_size`` units for both images (right only at scale 1, all it trains); here the
offset is drawn in LQ pixels and multiplied by ``scale`` for ``gt``, so the two patches always show the same
region.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from restoration.schema import Key
from restoration.utils.rng import derived_seed

__all__ = ["PROGRESSIVE_OPTIONS", "Stage", "PatchStages", "progressive_problems"]

#: The dataset keys of progressive training, part of every dataset's declaration
#: (:data:`restoration.data.base_dataset.COMMON_OPTIONS`); all three or none.
PROGRESSIVE_OPTIONS: dict[str, Key] = {
    "mini_batch_sizes": Key((list,), doc="progressive training: batch per GPU of each stage (<= batch_size_per_gpu)"),
    "gt_sizes": Key((list,), doc="progressive training: GT patch side of each stage (<= gt_size, multiples of scale)"),
    "iters": Key((list,), doc="progressive training: iterations of each stage; the last one continues to total_iter"),
}

#: Tags the crops' stream, apart from the batch augmentations' and the degradations' (same seed parts).
_CROP_STREAM = 0x7061746368  # "patch"


def _positive_ints(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)


def progressive_problems(bound: Mapping[str, Any]) -> list[str]:
    """Problems with a dataset's progressive keys (``bound``: its complete options; never raises).

    All three lists or none; non-empty lists of positive integers of equal length; only on a training set; every
    ``gt_sizes`` entry at most the dataset's ``gt_size`` and a multiple of ``scale``; every ``mini_batch_sizes``
    entry at most ``batch_size_per_gpu``.
    """
    given = [k for k in PROGRESSIVE_OPTIONS if bound.get(k) is not None]
    if not given:
        return []
    if len(given) < len(PROGRESSIVE_OPTIONS):
        missing = [k for k in PROGRESSIVE_OPTIONS if k not in given]
        return [f"progressive training sets {', '.join(given)} but not {', '.join(missing)}: give all three lists"]
    if str(bound.get("phase", "train")).split("_")[0] != "train":
        return [f"{', '.join(given)} (progressive training) apply only to the training set"]
    problems = [f"{k} must be a non-empty list of positive integers, got {bound[k]!r}"
                for k in PROGRESSIVE_OPTIONS if not _positive_ints(bound[k])]
    if problems:
        return problems
    lengths = {k: len(bound[k]) for k in PROGRESSIVE_OPTIONS}
    if len(set(lengths.values())) > 1:
        return ["mini_batch_sizes, gt_sizes and iters must have one entry per stage, got lengths "
                + ", ".join(f"{k} {n}" for k, n in lengths.items())]
    gt_size, batch, scale = bound.get("gt_size"), bound.get("batch_size_per_gpu"), bound.get("scale") or 1
    if not isinstance(gt_size, int) or isinstance(gt_size, bool):
        problems.append("gt_sizes needs the dataset's gt_size, the loader's crop the stage patches are cut from")
    elif max(bound["gt_sizes"]) > gt_size:
        problems.append(f"gt_sizes {bound['gt_sizes']} exceed gt_size {gt_size}, the loader's crop they are cut "
                        f"from; set gt_size to {max(bound['gt_sizes'])}")
    if isinstance(scale, int) and any(s % scale for s in bound["gt_sizes"]):
        problems.append(f"gt_sizes {bound['gt_sizes']} must be multiples of scale {scale}")
    if isinstance(batch, int) and max(bound["mini_batch_sizes"]) > batch:
        problems.append(f"mini_batch_sizes {bound['mini_batch_sizes']} exceed batch_size_per_gpu {batch}, the "
                        f"loader's batch they are taken from; set batch_size_per_gpu to "
                        f"{max(bound['mini_batch_sizes'])}")
    return problems


@dataclass(frozen=True)
class Stage:
    """One stage: its index (0-based), first and last iteration (1-based; ``last`` None: to the end), patch and
    batch."""

    index: int
    first: int
    last: int | None
    gt_size: int
    batch: int


class PatchStages:
    """The stage schedule of one training process and its crops.

    Args:
        dataset_opt: The training set's bound options (``mini_batch_sizes``, ``gt_sizes``, ``iters``,
            ``gt_size``, ``batch_size_per_gpu``), checked by :func:`progressive_problems`.
        seed: ``manual_seed``. rank: This process's rank. scale: ``gt`` side / ``lq`` side.
    """

    def __init__(self, dataset_opt: Mapping[str, Any], seed: int, rank: int, scale: int) -> None:
        self.enabled = dataset_opt.get("iters") is not None
        self.seed, self.rank, self.scale = int(seed), int(rank), int(scale)
        self.gt_size = int(dataset_opt.get("gt_size") or 0)
        self.batch_size = int(dataset_opt.get("batch_size_per_gpu") or 1)
        ends = list(itertools.accumulate(dataset_opt.get("iters") or []))
        self.stages = [Stage(j, (ends[j - 1] if j else 0) + 1, ends[j] if j < len(ends) - 1 else None, size, batch)
                       for j, (size, batch) in enumerate(zip(dataset_opt.get("gt_sizes") or [],
                                                             dataset_opt.get("mini_batch_sizes") or []))]
        self._announced: int | None = None

    def stage_at(self, iteration: int) -> Stage:
        """The stage of (1-based) ``iteration``: the first whose last iteration is >= it, else the last stage."""
        for stage in self.stages:
            if stage.last is None or iteration <= stage.last:
                return stage
        raise AssertionError("the last stage has no end")

    def announcement(self, iteration: int, world_size: int = 1) -> str | None:
        """The log line when ``iteration`` starts a stage (or is the first of this process: a resumed run says where
        it is), else None."""
        if not self.enabled:
            return None
        stage = self.stage_at(iteration)
        if stage.index == self._announced:
            return None
        self._announced = stage.index
        return (f"progressive training: stage {stage.index + 1}/{len(self.stages)} from iteration {iteration}: "
                f"patch {stage.gt_size}x{stage.gt_size} (GT), batch {stage.batch} per GPU "
                f"({stage.batch * world_size} in all)")

    def rng(self, iteration: int, micro: int = 0) -> np.random.Generator:
        """The generator of one (micro-)batch's subset and crop: a pure function of seed, iteration, rank, micro."""
        return np.random.default_rng(derived_seed(self.seed, iteration, self.rank, micro, _CROP_STREAM))

    def __call__(self, batch: Mapping[str, Any], iteration: int, micro: int = 0) -> Mapping[str, Any]:
        """``batch`` reduced to this iteration's stage (the same object outside progressive training).

        Args:
            batch: A loader batch: ``lq`` ``(B, C, h, w)`` and/or ``gt`` ``(B, C, h·s, w·s)``; every entry whose
                first dimension is ``B`` (tensors, path lists) loses the same samples.
            iteration: The optimizer step being made (1-based). micro: Its micro-batch (gradient accumulation).

        Returns:
            ``lq`` ``(b, C, p/s, p/s)`` and ``gt`` ``(b, C, p, p)`` with ``p, b`` the stage's patch and batch (a
            side already at most ``p`` is left whole), slices of the input batch (values unchanged).
        """
        if not self.enabled:
            return batch
        stage, rng = self.stage_at(iteration), self.rng(iteration, micro)
        ref = batch["lq"] if "lq" in batch else batch["gt"]
        n = int(ref.shape[0])
        out = dict(batch)
        if stage.batch < n:
            keep = rng.choice(n, size=stage.batch, replace=False)  # a random subset in random order
            out = {k: _take(v, keep, n) for k, v in out.items()}
        unit = self.scale if "lq" in batch else 1  # offsets in the reference's pixels, times this for gt
        side = stage.gt_size // unit
        h, w = int(ref.shape[-2]), int(ref.shape[-1])
        if side < h or side < w:
            top = int(rng.integers(0, max(h - side, 0) + 1))
            left = int(rng.integers(0, max(w - side, 0) + 1))
            if "lq" in out:
                out["lq"] = out["lq"][..., top:top + side, left:left + side]
            if "gt" in out:
                out["gt"] = out["gt"][..., top * unit:(top + side) * unit, left * unit:(left + side) * unit]
        return out


def _take(value: Any, keep: np.ndarray, n: int) -> Any:
    """``value`` restricted to the samples ``keep`` when it holds one entry per sample (first dimension ``n``)."""
    if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == n:
        return value[torch.as_tensor(keep, device=value.device)]
    if isinstance(value, (list, tuple)) and len(value) == n:
        return type(value)(value[i] for i in keep)
    return value

