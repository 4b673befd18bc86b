"""``Identity``: returns its input (upscaled by nearest neighbour when ``upscale > 1``).

A baseline for test.py tables: with denoising or JPEG data it scores the degraded input itself, so
a table shows how much a network improves on doing nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Identity"]


class Identity(nn.Module):
    """``(B, C, H, W)`` → the same tensor (or nearest-neighbour ×``upscale``); no parameters."""

    size_multiple = 1

    def __init__(self, upscale: int = 1) -> None:
        super().__init__()
        if upscale < 1:
            raise ValueError(f"upscale must be >= 1, got {upscale}")
        self.upscale = upscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.upscale == 1 else F.interpolate(x, scale_factor=self.upscale, mode="nearest")
