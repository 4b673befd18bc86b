"""Reading a state dict's layout: the shared helpers of every family's detector.

A detector (``restoration/archs/<family>/detect.py``) maps a state dict to ``(registry name, constructor kwargs)``
from key names and tensor shapes only, and raises :class:`LayoutMismatch` when the keys are another family's.
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import torch

__all__ = ["StateDict", "LayoutMismatch", "shape", "count", "square_side", "width_ratio", "upscale_pixelshuffle",
           "count_even", "group_blocks"]

StateDict = Mapping[str, torch.Tensor]


class LayoutMismatch(Exception):
    """Raised by a detector whose family the keys do not belong to; the message says which key decided it."""


def shape(sd: StateDict, key: str) -> tuple[int, ...]:
    if key not in sd:
        raise LayoutMismatch(f"no '{key}'")
    return tuple(sd[key].shape)


def count(sd: StateDict, prefix: str) -> int:
    """How many consecutive ``prefix{i}.`` groups exist (``i`` = 0, 1, ...)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in sd for m in [pattern.match(k)] if m}
    n = 0
    while n in found:
        n += 1
    return n


def square_side(n: int, what: str) -> int:
    side = math.isqrt(n)
    if side * side != n:
        raise LayoutMismatch(f"{what} has {n} entries, not a square")
    return side


#: Ratios authors write (Restormer's 2.66 first: 2.65 often gives the same widths).
USUAL_RATIOS = (2.0, 1.0, 4.0, 2.66, 3.0, 1.5)


def width_ratio(pairs: Sequence[tuple[int, int]], what: str) -> float:
    """The shortest decimal ``r`` with ``int(width * r) == hidden`` for every ``(width, hidden)`` pair.

    Widths of hidden layers are ``int(width * ratio)`` (timm's ``Mlp``, Restormer's FFN), so ``hidden / width``
    alone may round down wrongly (Restormer's 2.66 gives 127 of 48); this finds the ratio the author wrote.
    """
    for r in USUAL_RATIOS:
        if all(int(w * r) == h for w, h in pairs):
            return float(r)
    lo = max(h / w for w, h in pairs)
    hi = min((h + 1) / w for w, h in pairs)
    for digits in range(7):
        q = 10 ** digits
        r = math.ceil(lo * q - 1e-9) / q
        if r < hi and all(int(w * r) == h for w, h in pairs):
            return float(r)
    raise LayoutMismatch(f"{what}: no ratio r gives int(width * r) = hidden for {list(pairs)}")


def upscale_pixelshuffle(sd: StateDict, num_feat: int) -> int:
    """Scale of an ``Upsample`` (conv -> 4C + shuffle(2) per x2, or conv -> 9C + shuffle(3)) at ``upsample.*``."""
    convs = count_even(sd, "upsample.")
    if convs == 0:
        raise LayoutMismatch("no 'upsample.0.weight'")
    first = shape(sd, "upsample.0.weight")[0]
    if first == 9 * num_feat and convs == 1:
        return 3
    if first == 4 * num_feat:
        return 2 ** convs
    raise LayoutMismatch(f"upsample.0.weight has {first} output channels, neither 4x nor 9x {num_feat}")


def count_even(sd: StateDict, prefix: str) -> int:
    """Convolutions at ``prefix0``, ``prefix2``, ``prefix4``, ... (Sequential of conv, shuffle pairs)."""
    n = 0
    while f"{prefix}{2 * n}.weight" in sd:
        n += 1
    return n


def group_blocks(sd: StateDict, group: str) -> list[int]:
    """Blocks per residual group: ``layers.{i}.residual_group.blocks.{j}``."""
    groups = count(sd, "layers.")
    if groups == 0:
        raise LayoutMismatch("no 'layers.0.*'")
    return [count(sd, f"layers.{i}.{group}.") for i in range(groups)]
