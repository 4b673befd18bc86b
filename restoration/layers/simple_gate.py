"""NAFNet's SimpleGate: the activation-free gate ``x1 * x2`` over the two channel halves."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SimpleGate"]


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them (no parameters).

    Shapes:
        ``(B, 2C, H, W) -> (B, C, H, W)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2
