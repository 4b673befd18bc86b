"""Restormer's multi-Dconv-head transposed attention (MDTA): self-attention across channels, not pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restoration.layers.depthwise_conv import depthwise_conv2d

__all__ = ["MDTA"]


class MDTA(nn.Module):
    """Channel ("transposed") attention of Restormer (Zamir et al. 2022), upstream ``Attention``.

    ``qkv`` 1x1 -> depth-wise 3x3 (``qkv_dwconv``) -> q, k, v; per head q and k are L2-normalised along the
    pixels and ``softmax(q k^T * temperature)`` (``C/heads x C/heads``) mixes the channels of v; then
    ``project_out`` 1x1. The cost is linear in the number of pixels, so any ``H x W`` works.

    The depth-wise convolution goes through :func:`depthwise_conv2d` (one switch; at this dilation of 1 its
    ``'auto'`` is ``F.conv2d``, the faster backward here; the CPU backward, proved equal to ``F.conv2d``'s in
    ``tests/test_depthwise_conv.py``, serves TBSN's dilated copy of this layer).

    Args:
        dim: Channels ``C`` (a multiple of ``num_heads``).
        num_heads: Heads; each attends over ``C / num_heads`` channels.
        bias: Bias in the three convolutions.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``; keys ``temperature`` ``(heads, 1, 1)``, ``qkv``, ``qkv_dwconv``,
        ``project_out``.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        dw = self.qkv_dwconv
        qkv = depthwise_conv2d(self.qkv(x), dw.weight, dw.bias, padding=1)
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in qkv.chunk(3, dim=1))
        attn = torch.softmax(F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1) * self.temperature,
                             dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))
