"""Geometric self-ensemble (×8): run the network on the 8 flips/transposes of the input and average.

This is the "+" of EDSR+/RCAN+/SwinIR+/HAT+ results: the dihedral group of the square (identity,
vertical flip, horizontal flip, both, and the same four after a transpose). Each output is mapped back by
the inverse transform before averaging, so a network that is itself equivariant (e.g. pointwise) returns
exactly its plain output.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["NUM_TRANSFORMS", "dihedral_transform", "inverse_dihedral_transform", "self_ensemble"]

NUM_TRANSFORMS = 8


def _check_index(k: int) -> None:
    if not 0 <= k < NUM_TRANSFORMS:
        raise ValueError(f"transform index must be in [0, {NUM_TRANSFORMS}), got {k}")


def dihedral_transform(x: Tensor, k: int) -> Tensor:
    """Apply the ``k``-th of the 8 transforms to the last two dimensions of ``x``.

    Bits of ``k``: 1 = flip H (vertical flip), 2 = flip W (horizontal flip), 4 = transpose H/W, applied
    in that order. ``k = 0`` is the identity.

    Args:
        x: ``(..., H, W)``.
        k: Transform index in ``[0, 8)``.

    Returns:
        ``(..., H, W)``, or ``(..., W, H)`` when bit 4 is set.
    """
    _check_index(k)
    if k & 1:
        x = x.flip(-2)
    if k & 2:
        x = x.flip(-1)
    if k & 4:
        x = x.transpose(-2, -1)
    return x


def inverse_dihedral_transform(y: Tensor, k: int) -> Tensor:
    """Undo :func:`dihedral_transform` ``k`` (the same operations in reverse order)."""
    _check_index(k)
    if k & 4:
        y = y.transpose(-2, -1)
    if k & 2:
        y = y.flip(-1)
    if k & 1:
        y = y.flip(-2)
    return y


def self_ensemble(net_fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Average ``net_fn`` over the 8 dihedral transforms of ``x``.

    Non-square inputs are fine: the transposed views are ``(W, H)``; the network must accept that shape
    (pad to the window multiple inside ``net_fn``, e.g. with :func:`~restoration.inference.padding.pad_to_multiple`,
    or wrap :func:`~restoration.inference.tiling.tiled_forward`). The 8 passes run one at a time and are
    accumulated in place, so peak memory is one pass plus one output.

    Args:
        net_fn: Maps ``(B, C, H, W)`` to ``(B, C', H*s, W*s)``; called 8 times (typically under ``torch.no_grad``).
        x: ``(B, C, H, W)`` input batch.

    Returns:
        ``(B, C', H*s, W*s)`` mean of the 8 back-transformed outputs; dtype of the network output
        (accumulated in float32 when the output is half precision).
    """
    acc: Tensor | None = None
    for k in range(NUM_TRANSFORMS):
        # contiguous(): flipped/transposed views would otherwise reach convs as strided tensors.
        y = inverse_dihedral_transform(net_fn(dihedral_transform(x, k).contiguous()), k)
        if acc is None:
            acc_dtype = torch.float32 if y.dtype in (torch.float16, torch.bfloat16) else y.dtype
            acc = y.to(acc_dtype, copy=True)
        else:
            if y.shape != acc.shape:
                raise ValueError(
                    f"network output for transform {k} has shape {tuple(y.shape)}, expected {tuple(acc.shape)}; "
                    "the network must map (H, W) and (W, H) inputs consistently"
                )
            acc.add_(y)
    assert acc is not None
    return acc.div_(NUM_TRANSFORMS).to(y.dtype)
