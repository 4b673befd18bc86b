"""Gated depthwise-conv feed-forward networks on (B, C, H, W) maps: Restormer's GDFN and DSwinIR's
multi-scale gated FFN (MSG-FFN)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GDFN", "MSGFFN", "build_gated_ffn", "FFN_TYPES"]

FFN_TYPES: tuple[str, ...] = ("gdfn", "msg")


class GDFN(nn.Module):
    """Gated-Dconv feed-forward (Restormer): ``1x1 -> 2h``, dw 3x3, ``gelu(x1) * x2``, ``1x1 -> C``.

    Key names match Restormer / the official DSwinIR release (``project_in``, ``dwconv``,
    ``project_out``).

    Args:
        dim: Channels ``C``.
        ffn_expansion_factor: Hidden width ``h = int(C * factor)``.
        bias: Bias in the convolutions.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float = 2.0, bias: bool = False) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class MSGFFN(nn.Module):
    """Multi-scale gated FFN: parallel gated depthwise branches with different kernel sizes.

    ``1x1 -> 2h``; for each kernel size ``k_j`` a dw ``k_j x k_j`` conv and its own gate
    ``gelu(a_j) * b_j`` (h channels); the branch outputs are concatenated and fused by ``1x1 -> C``.
    The gate sits inside each branch so the scales cannot collapse into one larger dw kernel
    (a sum of parallel linear dw convs would be exactly one conv).

    The DSwinIR paper describes MSG-FFN only as "multi-scale, gated, parallel depthwise branches"; the
    released code uses GDFN instead. The kernel sizes (default ``(3, 5)``), the per-branch gate and the
    concatenation fusion are this project's choices, **not verified against the authors**.

    Args:
        dim: Channels ``C``.
        ffn_expansion_factor: Hidden width ``h = int(C * factor)`` per branch.
        bias: Bias in the convolutions.
        kernel_sizes: Odd depthwise kernel sizes, one per branch.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float = 2.0, bias: bool = False,
                 kernel_sizes: Sequence[int] = (3, 5)) -> None:
        super().__init__()
        if not kernel_sizes or any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"MSG-FFN kernel_sizes must be non-empty and odd, got {tuple(kernel_sizes)}")
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.branches = nn.ModuleList(
            nn.Conv2d(hidden * 2, hidden * 2, k, padding=k // 2, groups=hidden * 2, bias=bias)
            for k in kernel_sizes
        )
        self.project_out = nn.Conv2d(hidden * len(kernel_sizes), dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project_in(x)
        gated = []
        for conv in self.branches:
            a, b = conv(x).chunk(2, dim=1)
            gated.append(F.gelu(a) * b)
        return self.project_out(torch.cat(gated, dim=1))


def build_gated_ffn(ffn_type: str, dim: int, ffn_expansion_factor: float, bias: bool,
                    msg_kernel_sizes: Sequence[int] = (3, 5)) -> nn.Module:
    """``'gdfn'`` -> :class:`GDFN`, ``'msg'`` -> :class:`MSGFFN`."""
    if ffn_type == "gdfn":
        return GDFN(dim, ffn_expansion_factor, bias)
    if ffn_type == "msg":
        return MSGFFN(dim, ffn_expansion_factor, bias, msg_kernel_sizes)
    raise ValueError(f"unknown ffn_type {ffn_type!r}; choose one of {FFN_TYPES}")
