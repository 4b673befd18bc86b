"""Offset prediction and deformed sampling shared by DAT attention and MS-DSwin (DSwinIR).

Both predict per-group 2-D offsets from the queries with the same small network, bound them with
``tanh``, add them to a reference grid and resample the input bilinearly there:

* :class:`OffsetNetwork`: dw ``k x k`` conv -> LayerNorm2d -> GELU -> 1x1 to 2 channels ``(dy, dx)``
  (no bias). An ``nn.Sequential``, so its parameters keep the official ``conv_offset.{0,1,3}.*`` keys.
* :func:`bound_offsets`: ``tanh(o) * [1/(Hk-1), 1/(Wk-1)] * range_factor``.
* :func:`reference_grid` / :func:`normalized_grid`: ``(H, W, 2)`` (y, x) grids in the normalised
  coordinates of ``grid_sample(align_corners=True)``.
* :func:`sample_at`: bilinear ``grid_sample`` at (y, x) positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restoration.layers.layer_norm2d import LayerNorm2d

__all__ = ["OffsetNetwork", "bound_offsets", "normalized_grid", "reference_grid", "sample_at"]


class OffsetNetwork(nn.Sequential):
    """Per-group offset predictor: ``(N, C, H, W) -> (N, 2, Hk, Wk)`` (dy, dx), unbounded.

    Args:
        channels: Channels of one group ``C``.
        kernel_size: Kernel of the depthwise conv.
        stride: Its stride (``Hk ~ H / stride``).
        padding: Its padding.
        eps: LayerNorm2d epsilon (DAT's ``nn.LayerNorm`` uses 1e-5, DSwinIR's LayerNorm2d 1e-6).
    """

    def __init__(self, channels: int, kernel_size: int, stride: int, padding: int, eps: float) -> None:
        super().__init__(
            nn.Conv2d(channels, channels, kernel_size, stride, padding, groups=channels),
            LayerNorm2d(channels, eps=eps),
            nn.GELU(),
            nn.Conv2d(channels, 2, 1, 1, 0, bias=False),
        )


def bound_offsets(offset: torch.Tensor, range_factor: float) -> torch.Tensor:
    """``tanh(offset) * [1/(Hk-1), 1/(Wk-1)] * range_factor`` for ``(N, 2, Hk, Wk)`` (dy, dx) offsets.

    In normalised coordinates, i.e. at most ``range_factor / 2`` grid cells.
    """
    hk, wk = offset.shape[-2:]
    # default dtype (float32) on purpose, like DAT and DSwinIR: float64 runs then match them bit for bit
    bound = torch.tensor([1.0 / (hk - 1.0), 1.0 / (wk - 1.0)], device=offset.device)
    return offset.tanh() * bound.view(1, 2, 1, 1) * range_factor


def normalized_grid(ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """``(len(ys), len(xs), 2)`` (y, x) grid of pixel coordinates mapped by ``c / (n - 1) * 2 - 1``."""
    ny = ys / (ys.numel() - 1.0) * 2 - 1
    nx = xs / (xs.numel() - 1.0) * 2 - 1
    return torch.stack(torch.meshgrid(ny, nx, indexing="ij"), dim=-1)


def reference_grid(h: int, w: int, start: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(h, w, 2)`` (y, x): ``linspace(start, n - 1 + start, n)`` per axis, normalised (DAT's grid)."""
    ys = torch.linspace(start, h - 1 + start, h, dtype=dtype, device=device)
    xs = torch.linspace(start, w - 1 + start, w, dtype=dtype, device=device)
    return normalized_grid(ys, xs)


def sample_at(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (zero padding, ``align_corners=True``) of ``(N, C, H, W)`` ``x`` at
    ``(N, Hk, Wk, 2)`` (y, x) normalised positions -> ``(N, C, Hk, Wk)``."""
    return F.grid_sample(x, pos[..., (1, 0)], mode="bilinear", align_corners=True)
