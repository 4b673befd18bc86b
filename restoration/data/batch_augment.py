"""Augmentations of a whole training batch ``(lq, gt)`` on the device: CutBlur, mixup, CutMix.

From "Rethinking Data Augmentation for Image Super-resolution" (Yoo et al., CVPR 2020), which studies them
for SR (traiNNer-redux and neosr offer the same names). ``train.batch_augment`` lists them; each entry is
applied in order with its own probability ``prob``, just before the forward pass (after the loader, so the
number of workers never matters). Every random choice comes from a NumPy generator seeded by
``(manual_seed, iteration, rank, micro-batch)``: the same iteration draws the same boxes and pairs on a
resumed run (bit-exact), and no device random stream is touched (no host-device synchronisation either).

Shapes: ``lq`` is ``(B, C, h, w)`` and ``gt`` ``(B, C, h·s, w·s)`` with ``s = scale``, both in [0, 1];
boxes are drawn in LQ pixels and multiplied by ``s`` for ``gt``, so they cover the same picture region.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BATCH_AUGMENTS", "CALL_ARGS", "BatchAugment", "cutblur", "mixup", "cutmix", "batch_rng"]

Pair = tuple[Tensor, Tensor]


def batch_rng(seed: int, iteration: int, rank: int, micro: int = 0) -> np.random.Generator:
    """The generator of one (micro-)batch's augmentation draws (a NumPy ``SeedSequence`` of the four numbers)."""
    return np.random.default_rng([int(seed), int(iteration), int(rank), int(micro)])


def _box(rng: np.random.Generator, h: int, w: int, alpha: float) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a box whose sides are ``alpha`` (± 1 % noise, the paper's) of the image's."""
    ratio = float(np.clip(rng.normal() * 0.01 + alpha, 0.0, 1.0))
    ch, cw = max(1, min(h, int(h * ratio))), max(1, min(w, int(w * ratio)))
    return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw


def cutblur(lq: Tensor, gt: Tensor, scale: int, rng: np.random.Generator, *, prob: float = 1.0,
            alpha: float = 0.7) -> Pair:
    """CutBlur: the network input mixes a degraded and a clean version of the same picture inside a box, so
    the network learns where (and how much) to restore instead of sharpening everything; ``gt`` is unchanged.

    Definition used here: the paper cuts and pastes between the LR and HR images at one resolution. The input
    of an ``s``-times network has LQ resolution, so the clean version is ``gt`` downscaled to LQ size
    (bicubic with antialiasing; ``gt`` itself when ``scale`` is 1): with probability 1/2 the clean box is
    pasted into ``lq`` (HR content inside the patch), otherwise the ``lq`` box into the clean image (LR content
    inside the patch). The box's sides are ``alpha`` of the LQ image's.

    Args:
        lq: ``(B, C, h, w)``; gt: ``(B, C, h·s, w·s)``; both [0, 1]. prob: Chance of applying it.
    """
    h, w = lq.shape[-2:]
    top, left, ch, cw = _box(rng, h, w, alpha)
    clean_inside = rng.random() < 0.5
    if scale == 1:
        clean = gt.to(lq.dtype)
    else:
        clean = F.interpolate(gt.float(), size=(h, w), mode="bicubic", align_corners=False,
                              antialias=True).clamp_(0, 1).to(lq.dtype)
    box = (..., slice(top, top + ch), slice(left, left + cw))
    if clean_inside:
        out = lq.clone()
        out[box] = clean[box]
    else:
        out = clean.clone()
        out[box] = lq[box]
    return out, gt


def mixup(lq: Tensor, gt: Tensor, scale: int, rng: np.random.Generator, *, prob: float = 1.0,
          alpha: float = 1.2) -> Pair:
    """mixup: each pair is blended with another pair of the batch (a random permutation), the same weight
    ``v ~ Beta(alpha, alpha)`` for ``lq`` and ``gt``: ``v·x + (1 − v)·x[perm]``."""
    v = float(rng.beta(alpha, alpha))
    perm = torch.as_tensor(rng.permutation(lq.shape[0]), device=lq.device)
    return v * lq + (1 - v) * lq[perm], v * gt + (1 - v) * gt[perm.to(gt.device)]


def cutmix(lq: Tensor, gt: Tensor, scale: int, rng: np.random.Generator, *, prob: float = 1.0,
           alpha: float = 0.7) -> Pair:
    """CutMix: a box of another pair of the batch (a random permutation), taken at one place and pasted at
    another (as the paper's code does), into ``lq`` and at ``scale`` times the coordinates into ``gt``. The
    box's sides are ``alpha`` of the LQ image's."""
    h, w = lq.shape[-2:]
    src_top, src_left, ch, cw = _box(rng, h, w, alpha)
    dst_top, dst_left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    perm = torch.as_tensor(rng.permutation(lq.shape[0]), device=lq.device)
    out = []
    for x, s in ((lq, 1), (gt, scale)):
        mixed = x.clone()
        mixed[..., dst_top * s:(dst_top + ch) * s, dst_left * s:(dst_left + cw) * s] = \
            x[perm.to(x.device)][..., src_top * s:(src_top + ch) * s, src_left * s:(src_left + cw) * s]
        out.append(mixed)
    return out[0], out[1]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _prob_problems(bound: Mapping[str, Any]) -> list[str]:
    problems = [f"{key} must be a number, got {bound[key]!r}" for key in ("prob", "alpha") if not _number(bound[key])]
    if _number(bound["prob"]) and not 0 <= bound["prob"] <= 1:
        problems.append(f"prob must be in [0, 1], got {bound['prob']}")
    return problems


def _check_box_options(bound: Mapping[str, Any]) -> list[str]:
    """cutblur's and cutmix's ``check_options``: ``prob`` in [0, 1], the box side ``alpha`` in (0, 1]."""
    problems = _prob_problems(bound)
    if _number(bound["alpha"]) and not 0 < bound["alpha"] <= 1:
        problems.append(f"alpha (the box side as a fraction of the image's) must be in (0, 1], got {bound['alpha']}")
    return problems


def _check_mixup_options(bound: Mapping[str, Any]) -> list[str]:
    """mixup's ``check_options``: ``prob`` in [0, 1], the Beta parameter ``alpha`` > 0."""
    problems = _prob_problems(bound)
    if _number(bound["alpha"]) and not bound["alpha"] > 0:
        problems.append(f"alpha (the Beta distribution's parameter) must be > 0, got {bound['alpha']}")
    return problems


cutblur.check_options = _check_box_options  # type: ignore[attr-defined]  # read by the option check
cutmix.check_options = _check_box_options  # type: ignore[attr-defined]
mixup.check_options = _check_mixup_options  # type: ignore[attr-defined]

#: The augmentations ``train.batch_augment`` may name (``type``). Each declares its options by its signature:
#: the keyword-only arguments with their defaults; :data:`CALL_ARGS` are supplied by the step.
BATCH_AUGMENTS: dict[str, Callable[..., Pair]] = {"cutblur": cutblur, "mixup": mixup, "cutmix": cutmix}
CALL_ARGS: tuple[str, ...] = ("lq", "gt", "scale", "rng")


def _options(func: Callable[..., Pair]) -> dict[str, Any]:
    """``{name: default}`` of an augmentation's options (its keyword-only arguments)."""
    return {n: p.default for n, p in inspect.signature(func).parameters.items() if p.kind == p.KEYWORD_ONLY}


class BatchAugment:
    """The configured augmentations of one training process.

    Args:
        entries: ``train.batch_augment``: ``[{type, prob, alpha}, ...]`` (checked by the option check).
        seed: ``manual_seed``. rank: This process's rank. scale: ``gt`` side / ``lq`` side.
    """

    def __init__(self, entries: Sequence[Mapping[str, Any]], seed: int, rank: int, scale: int) -> None:
        self.entries = [(BATCH_AUGMENTS[e["type"]], {**_options(BATCH_AUGMENTS[e["type"]]),
                                                     **{k: v for k, v in e.items() if k != "type"}})
                        for e in entries]
        self.seed, self.rank, self.scale = int(seed), int(rank), int(scale)

    def __call__(self, batch: Mapping[str, Any], iteration: int, micro: int = 0) -> Mapping[str, Any]:
        """``batch`` with ``lq`` and ``gt`` augmented (the same object when nothing is configured)."""
        if not self.entries:
            return batch
        rng = batch_rng(self.seed, iteration, self.rank, micro)
        lq, gt = batch["lq"], batch["gt"]
        for func, kwargs in self.entries:
            if rng.random() < kwargs["prob"]:  # always drawn, so one entry's outcome never shifts the next's draws
                lq, gt = func(lq, gt, self.scale, rng, **kwargs)
        return {**batch, "lq": lq, "gt": gt}
