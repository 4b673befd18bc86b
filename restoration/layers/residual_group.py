"""Residual groups of window-attention blocks (SwinIR's RSTB, HAT's RHAG) and their shared rules.

Tokens are (B, H, W, C) channels-last maps; the convolution closing a group sees (B, C, H, W).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.utils.checkpoint as checkpoint
from torch import nn

__all__ = ["SwinLayer", "ResidualGroup", "residual_conv", "drop_path_rates", "check_groups"]


def residual_conv(dim: int, resi_connection: str) -> nn.Module:
    """The convolution closing a residual group.

    ``'1conv'``: one 3x3; ``'3conv'``: 3x3 to C/4, 1x1, 3x3 back (saves parameters in SwinIR's large
    real-SR model); ``'identity'``: none (HAT).
    """
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if resi_connection == "3conv":
        return nn.Sequential(
            nn.Conv2d(dim, dim // 4, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim // 4, 1, 1, 0),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim, 3, 1, 1),
        )
    if resi_connection == "identity":
        return nn.Identity()
    raise ValueError(f"resi_connection must be '1conv', '3conv' or 'identity', got {resi_connection!r}")


def drop_path_rates(drop_path_rate: float, depths: Sequence[int]) -> list[list[float]]:
    """Stochastic-depth rates rising linearly from 0 to ``drop_path_rate`` over all blocks, split per group."""
    # On the CPU even when the network is built on the meta device: the rates are Python floats.
    rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
    return [rates[sum(depths[:i]) : sum(depths[: i + 1])] for i in range(len(depths))]


def check_groups(depths: Sequence[int], num_heads: Sequence[int], embed_dim: int) -> list[str]:
    """Problems with the per-group ``depths`` / ``num_heads`` options (for ``check_options``)."""
    problems = []
    if len(depths) != len(num_heads):
        problems.append(f"depths has {len(depths)} entries but num_heads has {len(num_heads)}")
    for h in num_heads:
        if embed_dim % int(h):
            problems.append(f"num_heads {h} does not divide embed_dim {embed_dim}")
    return problems


class SwinLayer(nn.Module):
    """Blocks applied in turn (official ``BasicLayer``; keys ``blocks.N``), each optionally checkpointed.

    Args:
        blocks: Modules called as ``blk(x, *args)`` with (B, H, W, C) ``x``.
        use_checkpoint: Gradient checkpointing per block (training only): less memory, slower.
    """

    def __init__(self, blocks: Sequence[nn.Module], use_checkpoint: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.use_checkpoint = use_checkpoint

    def forward(self, x: torch.Tensor, *args: torch.Tensor | None) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C); ``args`` (indices, masks) go to every block."""
        for blk in self.blocks:
            if self.use_checkpoint and self.training:
                x = checkpoint.checkpoint(blk, x, *args, use_reentrant=False)
            else:
                x = blk(x, *args)
        return x


class ResidualGroup(nn.Module):
    """``x + conv(residual_group(x))`` (keys ``residual_group.*``, ``conv.*``).

    Args:
        residual_group: Maps (B, H, W, C) tokens (plus extra forward arguments) to (B, H, W, C).
        conv: Applied on (B, C, H, W), see :func:`residual_conv`.
    """

    def __init__(self, residual_group: nn.Module, conv: nn.Module) -> None:
        super().__init__()
        self.residual_group = residual_group
        self.conv = conv

    def forward(self, x: torch.Tensor, *args: torch.Tensor | None) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C); ``args`` go to ``residual_group``."""
        y = self.residual_group(x, *args).permute(0, 3, 1, 2)
        return self.conv(y).permute(0, 2, 3, 1) + x
