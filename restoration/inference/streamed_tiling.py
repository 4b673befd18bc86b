"""Tiled inference that hands out finished rows as it goes, so memory is bounded by the tile, not the image.

:func:`~restoration.inference.tiling.tiled_forward` (the reference) blends every tile into a float
accumulator the size of the whole output: on a 6000² photo at ×2 that is 1.7 GB of output plus 0.6 GB of
weights, before the uint8 conversion copies it again. Here tiles run one row of tiles at a time, and the
accumulator is one tile high (``tile * scale`` output rows, the width of the output). When the next row of
tiles starts at output row ``y``, no later tile reaches above ``y``: those rows are finished, divided by their
weight and handed to the caller, and the rows below ``y`` (the overlap) move to the top of the accumulator.

The arithmetic is the reference's, in the same order (every pixel is the sum of the same weighted tiles,
added in the same row-major order, starting from zero, then one division), so with the same tiles through the
network the rows are bit for bit the rows of :func:`tiled_forward`; tests check it after quantisation to 8 and
16 bits.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import Tensor

from restoration.inference.tiling import plan_tiles

__all__ = ["tiled_rows"]


@torch.no_grad()
def tiled_rows(
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
) -> Iterator[tuple[int, Tensor]]:
    """Run ``net_fn`` over overlapping tiles of ``x`` and yield the blended output a band of rows at a time.

    Arguments as :func:`~restoration.inference.tiling.tiled_forward`; ``tile_batch_size`` tiles of one row
    of tiles go through ``net_fn`` together (the reference also batches across rows, so its network calls,
    and therefore its outputs, are the same only for ``tile_batch_size=1`` or a batch-independent network).

    Yields:
        ``(y, band)``: ``band`` is ``(B, C', rows, W*scale)`` float32 (float64 when the network's output is),
        the output rows ``y .. y + rows - 1`` of the cropped ``(B, C', H*scale, W*scale)`` result; bands come
        top to bottom, without gaps, and cover every row once. Peak memory: two accumulators of
        ``(B, C', tile*scale, Wp*scale)`` plus one band and one batch of tiles.
    """
    if tile_batch_size < 1:
        raise ValueError(f"need tile_batch_size >= 1, got {tile_batch_size}")
    out_device = torch.device(out_device) if out_device is not None else x.device
    b, _, h, w = x.shape
    grid = plan_tiles(x, scale, tile, overlap, multiple, blend, out_device, pad_mode, min_size)
    band_h, tile_out_w = grid.tile_h * scale, grid.tile_w * scale
    out_h, out_w, wide = h * scale, w * scale, grid.xp.shape[-1] * scale

    acc: Tensor | None = None  # output rows [top, top + band_h) of the padded output, (B, C', band_h, wide)
    spare: Tensor | None = None  # the other accumulator: the overlap moves into it, no reallocation per row
    weight = torch.zeros(1, 1, band_h, wide, dtype=torch.float32, device=out_device)
    spare_weight = torch.zeros_like(weight)
    top = 0

    def finished(rows: int) -> Iterator[tuple[int, Tensor]]:
        """The first ``rows`` rows of the accumulator, divided by their weight and cropped to the image."""
        assert acc is not None
        keep = min(rows, out_h - top)
        if keep > 0:
            yield top, acc[..., :keep, :out_w] / weight[..., :keep, :out_w].to(acc.dtype)

    for i, y0 in enumerate(grid.starts_h):
        if acc is not None and spare is not None:
            done = y0 * scale - top  # rows above this row of tiles: no later tile reaches them
            yield from finished(done)
            spare.zero_()
            spare_weight.zero_()
            spare[..., : band_h - done, :] = acc[..., done:, :]
            spare_weight[..., : band_h - done, :] = weight[..., done:, :]
            acc, spare, weight, spare_weight = spare, acc, spare_weight, weight
        top = y0 * scale
        row = list(enumerate(grid.starts_w))
        for first in range(0, len(row), tile_batch_size):
            group = row[first : first + tile_batch_size]
            batch = torch.cat([grid.xp[..., y0 : y0 + grid.tile_h, x0 : x0 + grid.tile_w] for _, x0 in group])
            pred = net_fn(batch)
            if pred.dim() != 4 or pred.shape[0] != batch.shape[0] or tuple(pred.shape[-2:]) != (band_h, tile_out_w):
                raise ValueError(
                    f"net_fn mapped a tile of shape {tuple(batch.shape)} to {tuple(pred.shape)}; expected "
                    f"({batch.shape[0]}, C', {band_h}, {tile_out_w}) for scale={scale}"
                )
            if acc is None:
                dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
                acc = torch.zeros(b, pred.shape[1], band_h, wide, dtype=dtype, device=out_device)
                spare = torch.zeros_like(acc)
            pred = pred.to(device=out_device, dtype=acc.dtype)
            for n, (j, x0) in enumerate(group):
                wt = grid.prof_h[i][:, None] * grid.prof_w[j][None, :]
                xs = slice(x0 * scale, x0 * scale + tile_out_w)
                acc[..., :, xs].addcmul_(pred[n * b : (n + 1) * b], wt.to(acc.dtype))
                weight[..., :, xs].add_(wt)
            del pred, batch
    yield from finished(band_h)
