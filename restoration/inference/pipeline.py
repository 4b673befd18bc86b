"""One entry point for test-time inference: the network's contract (scale, padding, value range), optionally
tiled, optionally ×8 ensemble."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import Tensor

from restoration.archs.spec import ArchSpec
from restoration.inference.padding import crop_to, pad_to_multiple
from restoration.inference.self_ensemble import self_ensemble as _self_ensemble
from restoration.inference.streamed_tiling import tiled_rows
from restoration.inference.tiling import tiled_forward

__all__ = ["restore", "restore_rows"]


def _geometry(spec: ArchSpec | None, scale: int | None, multiple: int | None) -> tuple[int, int, int]:
    """``(scale, multiple, min_size)`` from the spec, or from the keywords; both given must agree."""
    if spec is None:
        return (1 if scale is None else scale), (1 if multiple is None else multiple), 1
    for name, given, declared in (("scale", scale, spec.scale), ("multiple", multiple, spec.size_multiple)):
        if given is not None and given != declared:
            raise ValueError(f"restore(): {name}={given} contradicts the network's spec ({declared})")
    return spec.scale, spec.size_multiple, spec.min_size


def _value_range_forward(net_fn: Callable[[Tensor], Tensor], spec: ArchSpec | None) -> Callable[[Tensor], Tensor]:
    """``net_fn`` seeing ``x * value_range`` and returning its output divided by it (the spec's value range)."""
    value_range = 1.0 if spec is None else spec.value_range

    def forward(x: Tensor) -> Tensor:
        return net_fn(x) if value_range == 1.0 else net_fn(x * value_range) / value_range

    return forward


@torch.no_grad()
def restore(
    net_fn: Callable[[Tensor], Tensor],
    lq: Tensor,
    scale: int | None = None,
    multiple: int | None = None,
    tile: int | None = None,
    overlap: int = 32,
    tile_batch_size: int = 1,
    self_ensemble: bool = False,
    pad_mode: str = "reflect",
    blend: str = "hann",
    out_device: torch.device | str | None = None,
    spec: ArchSpec | None = None,
) -> Tensor:
    """Restore ``lq`` with ``net_fn``; the composition test.py and validation use.

    Pass the network's contract, ``spec=arch_spec(net)``, and it decides everything the network needs:
    the scale, the padding (``size_multiple``, ``min_size``) and the value range (the network sees
    ``lq * value_range``; its output is divided by ``value_range``, so TBSN's [0, 255] stays inside).
    Without a spec, ``scale`` and ``multiple`` say it (the older keyword form).

    Args:
        net_fn: The network (eval mode), ``(N, C, h, w) -> (N, C', h*scale, w*scale)`` for ``h, w`` multiples
            of ``multiple``.
        lq: ``(B, C, H, W)`` input in [0, 1].
        scale: Upscaling factor of the network (default 1, or the spec's; must agree with a spec).
        multiple: The network's size multiple (default 1, or the spec's; must agree with a spec).
        tile: Tile side in input pixels, or ``None`` for whole-image inference.
        overlap: Tile overlap in input pixels (ignored without ``tile``).
        tile_batch_size: Tiles per network call.
        self_ensemble: Average over the 8 flips/transposes (8× the time).
        pad_mode: Padding mode to reach ``multiple`` (see :func:`~restoration.inference.padding.pad_to_multiple`).
        blend: Tile blending profile (see :func:`~restoration.inference.tiling.tiled_forward`).
        out_device: Where the output is assembled when tiling (default: ``lq.device``).
        spec: The network's :class:`~restoration.archs.spec.ArchSpec`.

    Returns:
        ``(B, C', H*scale, W*scale)`` in the range of ``lq`` (about [0, 1]).
    """
    scale, multiple, min_size = _geometry(spec, scale, multiple)
    if spec is not None and not spec.tileable and tile is not None:
        raise ValueError("restore(): this network cannot be tiled (its spec says tileable=False); use tile=None")
    forward = _value_range_forward(net_fn, spec)

    def once(x: Tensor) -> Tensor:
        if tile is not None:
            return tiled_forward(forward, x, scale, tile, overlap, multiple=multiple, blend=blend,
                                 tile_batch_size=tile_batch_size, out_device=out_device, pad_mode=pad_mode,
                                 min_size=min_size)
        padded, (h, w) = pad_to_multiple(x, multiple, mode=pad_mode, min_size=min_size)
        return crop_to(forward(padded), (h * scale, w * scale))

    return _self_ensemble(once, lq) if self_ensemble else once(lq)


@torch.no_grad()
def restore_rows(
    net_fn: Callable[[Tensor], Tensor],
    lq: Tensor,
    tile: int,
    overlap: int = 32,
    spec: ArchSpec | None = None,
    scale: int | None = None,
    multiple: int | None = None,
    tile_batch_size: int = 1,
    pad_mode: str = "reflect",
    blend: str = "hann",
    out_device: torch.device | str | None = None,
) -> Iterator[tuple[int, Tensor]]:
    """:func:`restore` with ``tile``, handed out a band of finished rows at a time (no ensemble).

    The rows are those of ``restore(net_fn, lq, tile=tile, ...)`` bit for bit (with ``tile_batch_size=1``), but
    only about one tile-high band of the output is ever held (:mod:`restoration.inference.streamed_tiling`), so a
    caller that writes each band into a uint8 image keeps memory bounded by the tile.

    Yields:
        ``(y, band)``: ``band`` is ``(B, C', rows, W*scale)`` in the range of ``lq``, output rows from ``y``.
    """
    scale, multiple, min_size = _geometry(spec, scale, multiple)
    if spec is not None and not spec.tileable:
        raise ValueError("restore_rows(): this network cannot be tiled (its spec says tileable=False)")
    yield from tiled_rows(_value_range_forward(net_fn, spec), lq, scale, tile, overlap, multiple=multiple,
                          blend=blend, tile_batch_size=tile_batch_size, out_device=out_device,
                          pad_mode=pad_mode, min_size=min_size)
