"""Tiled inference: run a network on overlapping tiles and blend them, so test memory is bounded.

Full-image inference of a transformer on a 2K image can need tens of GB. Cutting the image into tiles
bounds memory by the tile size, but naive tiling (no overlap, or overlap with a hard cut) leaves seams,
because pixels near a tile edge see a truncated receptive field. Here tiles overlap by ``overlap``
LR pixels and outputs are averaged with a smooth weight that falls towards *interior* tile edges only:

* the weight of a tile is the outer product of two 1-D profiles; a profile is 1 in the middle and ramps
  (half Hann by default) over ``overlap * scale`` output pixels at each side that touches another tile;
* sides on the image border keep weight 1, so no output pixel ever has zero total weight, and pixels
  covered by a single tile are returned unchanged;
* ramp values are sampled at pixel centres, so they are never exactly 0, and two Hann ramps over the
  same pixels sum to exactly 1.

The result equals the whole-image output up to the (small) receptive-field truncation at tile edges,
which the ramps push to weight ~0; tests check it stays within 0.05 dB PSNR of the whole-image output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from restoration.inference.padding import crop_to, pad_to_multiple

__all__ = ["BLEND_MODES", "TileGrid", "tile_starts", "blend_profile", "plan_tiles", "tiled_forward"]

BLEND_MODES = ("hann", "linear", "uniform")


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``[0, size)`` with at least ``overlap`` overlap.

    The last tile is aligned to the end (so it may overlap its neighbour by more than ``overlap``).
    """
    if tile >= size:
        return [0]
    stride = tile - overlap
    if stride < 1:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def blend_profile(length: int, ramp: int, ramp_start: bool, ramp_end: bool, mode: str = "hann") -> Tensor:
    """1-D blending weight of one tile side, ``(length,)`` float32 in ``(0, 1]``.

    Args:
        length: Tile length in output pixels.
        ramp: Ramp length in output pixels (the overlap); clipped to ``length // 2``.
        ramp_start: Ramp up at the start (the tile has a neighbour before it).
        ramp_end: Ramp down at the end (the tile has a neighbour after it).
        mode: ``'hann'`` (raised cosine), ``'linear'`` or ``'uniform'`` (plain average of overlapping tiles).
    """
    if mode not in BLEND_MODES:
        raise ValueError(f"unknown blend mode {mode!r}; choose one of {BLEND_MODES}")
    w = torch.ones(length, dtype=torch.float32)
    ramp = min(ramp, length // 2)
    if mode == "uniform" or ramp == 0:
        return w
    # Pixel-centre samples in (0, 1): strictly positive, and ramp(i) + ramp(ramp-1-i) == 1.
    t = (torch.arange(ramp, dtype=torch.float64) + 0.5) / ramp
    up = (0.5 - 0.5 * torch.cos(math.pi * t)) if mode == "hann" else t
    up = up.to(torch.float32)
    if ramp_start:
        w[:ramp] = up
    if ramp_end:
        w[length - ramp :] = up.flip(0)
    return w


def _profiles(starts: list[int], length: int, ramp: int, mode: str, device: torch.device) -> list[Tensor]:
    """1-D blending profile of every tile along one axis (ramps only towards neighbouring tiles)."""
    last = len(starts) - 1
    return [blend_profile(length, ramp, i > 0, i < last, mode).to(device) for i in range(len(starts))]


def _round_tile(tile: int, multiple: int) -> int:
    """Largest multiple of ``multiple`` not above ``tile`` (at least one multiple)."""
    return max(multiple, (tile // multiple) * multiple)


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of one input go: the padded input, the tile size, the tile starts and blend profiles.

    ``xp`` is ``(B, C, Hp, Wp)``, the input padded to the network's multiple; tiles are ``tile_h x tile_w``
    input pixels starting at ``(starts_h[i], starts_w[j])``; tile ``(i, j)`` is weighted by
    ``prof_h[i][:, None] * prof_w[j][None, :]`` (output pixels, values in ``(0, 1]``).
    """

    xp: Tensor
    tile_h: int
    tile_w: int
    starts_h: list[int]
    starts_w: list[int]
    prof_h: list[Tensor]
    prof_w: list[Tensor]


def plan_tiles(x: Tensor, scale: int, tile: int, overlap: int, multiple: int = 1, blend: str = "hann",
               out_device: torch.device | None = None, pad_mode: str = "reflect", min_size: int = 1) -> TileGrid:
    """The :class:`TileGrid` of ``x`` (``(B, C, H, W)``); arguments as :func:`tiled_forward`."""
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}")
    if tile < 1 or overlap < 0 or scale < 1:
        raise ValueError(f"need tile >= 1, overlap >= 0, scale >= 1; got tile={tile}, overlap={overlap}, "
                         f"scale={scale}")
    out_device = out_device if out_device is not None else x.device
    xp, _ = pad_to_multiple(x, multiple, mode=pad_mode, min_size=min_size)
    hp, wp = xp.shape[-2:]
    if _round_tile(tile, multiple) < min_size:
        raise ValueError(f"tile {tile} (rounded down to a multiple of {multiple}: {_round_tile(tile, multiple)}) "
                         f"is smaller than the network's minimum input side {min_size}")
    tile_h = min(_round_tile(tile, multiple), hp)
    tile_w = min(_round_tile(tile, multiple), wp)
    # Overlap must leave a positive stride; a too-large request is clipped rather than refused.
    ov_h = min(overlap, tile_h - 1) if tile_h < hp else 0
    ov_w = min(overlap, tile_w - 1) if tile_w < wp else 0
    starts_h = tile_starts(hp, tile_h, ov_h)
    starts_w = tile_starts(wp, tile_w, ov_w)
    # A tile's weight depends only on whether it has neighbours before/after it along each axis.
    prof_h = _profiles(starts_h, tile_h * scale, ov_h * scale, blend, out_device)
    prof_w = _profiles(starts_w, tile_w * scale, ov_w * scale, blend, out_device)
    return TileGrid(xp, tile_h, tile_w, starts_h, starts_w, prof_h, prof_w)


@torch.no_grad()
def tiled_forward(
    net_fn: Callable[[Tensor], Tensor],
    x: Tensor,
    scale: int,
    tile: int,
    overlap: int,
    multiple: int = 1,
    blend: str = "hann",
    tile_batch_size: int = 1,
    out_device: torch.device | str | None = None,
    pad_mode: str = "reflect",
    min_size: int = 1,
) -> Tensor:
    """Run ``net_fn`` over overlapping tiles of ``x`` and blend the outputs into one image.

    Args:
        net_fn: Maps ``(N, C, h, w)`` to ``(N, C', h*scale, w*scale)``; ``h, w`` are multiples of ``multiple``.
        x: ``(B, C, H, W)`` input batch (any size; smaller than a tile is fine).
        scale: Output/input size ratio (1 for denoising/JPEG).
        tile: Tile side in input pixels; rounded *down* to a multiple of ``multiple`` and clipped to the
            (padded) image, so an image smaller than a tile is processed in one piece.
        overlap: Overlap between neighbouring tiles in input pixels (e.g. 32; ``0`` gives hard seams).
            Should exceed the network's effective receptive-field radius for seamless results.
        multiple: Size multiple the network needs (its ``size_multiple``); the image is padded to it with
            ``pad_mode`` and the output cropped back.
        blend: Weight profile, one of :data:`BLEND_MODES`.
        tile_batch_size: How many tiles go through ``net_fn`` at once (times ``B``); peak memory is about
            ``tile_batch_size * B`` tiles' worth of activations plus the output accumulators.
        out_device: Device of the accumulators and the result (default ``x.device``); e.g. ``'cpu'`` to run
            tiles on the GPU but keep a huge output in host memory.
        pad_mode: Padding mode for :func:`~restoration.inference.padding.pad_to_multiple`.
        min_size: Smallest side the network accepts (``ArchSpec.min_size``): a smaller image is padded up to
            it, and a (rounded) tile below it is an error.

    Returns:
        ``(B, C', H*scale, W*scale)``, the shape of the whole-image output, float32 (or the output dtype
        when that is float64).
    """
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}")
    if tile < 1 or overlap < 0 or tile_batch_size < 1 or scale < 1:
        raise ValueError(f"need tile >= 1, overlap >= 0, tile_batch_size >= 1, scale >= 1; got "
                         f"tile={tile}, overlap={overlap}, tile_batch_size={tile_batch_size}, scale={scale}")
    out_device = torch.device(out_device) if out_device is not None else x.device
    b, _, h, w = x.shape
    grid = plan_tiles(x, scale, tile, overlap, multiple, blend, out_device, pad_mode, min_size)
    xp, tile_h, tile_w, starts_h, starts_w = grid.xp, grid.tile_h, grid.tile_w, grid.starts_h, grid.starts_w
    prof_h, prof_w, hp, wp = grid.prof_h, grid.prof_w, grid.xp.shape[-2], grid.xp.shape[-1]
    coords = [(i, j, y0, x0) for i, y0 in enumerate(starts_h) for j, x0 in enumerate(starts_w)]

    out: Tensor | None = None
    weight = torch.zeros(1, 1, hp * scale, wp * scale, dtype=torch.float32, device=out_device)
    for first in range(0, len(coords), tile_batch_size):
        group = coords[first : first + tile_batch_size]
        batch = torch.cat([xp[..., y0 : y0 + tile_h, x0 : x0 + tile_w] for _, _, y0, x0 in group], dim=0)
        pred = net_fn(batch)
        expected = (tile_h * scale, tile_w * scale)
        if pred.dim() != 4 or pred.shape[0] != batch.shape[0] or tuple(pred.shape[-2:]) != expected:
            raise ValueError(
                f"net_fn mapped a tile of shape {tuple(batch.shape)} to {tuple(pred.shape)}; expected "
                f"({batch.shape[0]}, C', {expected[0]}, {expected[1]}) for scale={scale}"
            )
        if out is None:
            dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
            out = torch.zeros(b, pred.shape[1], hp * scale, wp * scale, dtype=dtype, device=out_device)
        pred = pred.to(device=out_device, dtype=out.dtype)
        for n, (i, j, y0, x0) in enumerate(group):
            wt = prof_h[i][:, None] * prof_w[j][None, :]
            ys, xs = slice(y0 * scale, (y0 + tile_h) * scale), slice(x0 * scale, (x0 + tile_w) * scale)
            out[..., ys, xs].addcmul_(pred[n * b : (n + 1) * b], wt.to(out.dtype))
            weight[..., ys, xs].add_(wt)
        del pred, batch
    assert out is not None
    out.div_(weight.to(out.dtype))
    return crop_to(out, (h * scale, w * scale))
