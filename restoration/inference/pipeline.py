"""One entry point for test-time inference: pad to the size multiple, optionally tile, optionally ×8 ensemble."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from restoration.inference.padding import crop_to, pad_to_multiple
from restoration.inference.self_ensemble import self_ensemble as _self_ensemble
from restoration.inference.tiling import tiled_forward

__all__ = ["restore"]


@torch.no_grad()
def restore(
    net_fn: Callable[[Tensor], Tensor],
    lq: Tensor,
    scale: int = 1,
    multiple: int = 1,
    tile: int | None = None,
    overlap: int = 32,
    tile_batch_size: int = 1,
    self_ensemble: bool = False,
    pad_mode: str = "reflect",
    blend: str = "hann",
    out_device: torch.device | str | None = None,
) -> Tensor:
    """Restore ``lq`` with ``net_fn``; the composition test.py and validation use.

    Args:
        net_fn: The network (eval mode), ``(N, C, h, w) -> (N, C', h*scale, w*scale)`` for ``h, w`` multiples
            of ``multiple``.
        lq: ``(B, C, H, W)`` input in [0, 1].
        scale: Upscaling factor of the network (1 for denoising / JPEG).
        multiple: The network's ``size_multiple`` (``getattr(net, 'size_multiple', 1)``).
        tile: Tile side in input pixels, or ``None`` for whole-image inference.
        overlap: Tile overlap in input pixels (ignored without ``tile``).
        tile_batch_size: Tiles per network call.
        self_ensemble: Average over the 8 flips/transposes (8× the time).
        pad_mode: Padding mode to reach ``multiple`` (see :func:`~restoration.inference.padding.pad_to_multiple`).
        blend: Tile blending profile (see :func:`~restoration.inference.tiling.tiled_forward`).
        out_device: Where the output is assembled when tiling (default: ``lq.device``).

    Returns:
        ``(B, C', H*scale, W*scale)``.
    """

    def once(x: Tensor) -> Tensor:
        if tile is not None:
            return tiled_forward(net_fn, x, scale, tile, overlap, multiple=multiple, blend=blend,
                                 tile_batch_size=tile_batch_size, out_device=out_device, pad_mode=pad_mode)
        padded, (h, w) = pad_to_multiple(x, multiple, mode=pad_mode)
        return crop_to(net_fn(padded), (h * scale, w * scale))

    return _self_ensemble(once, lq) if self_ensemble else once(lq)
