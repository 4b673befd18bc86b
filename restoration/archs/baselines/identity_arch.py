"""``Identity``: returns its input (upscaled by nearest neighbour when ``upscale > 1``).

A baseline for test.py tables: with denoising or JPEG data it scores the degraded input itself, so
a table shows how much a network improves on doing nothing.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec

__all__ = ["Identity"]


class Identity(nn.Module):
    """``(B, C, H, W)`` → the same tensor (or nearest-neighbour ×``upscale``); no parameters, any ``C``."""

    def __init__(self, upscale: int = 1) -> None:
        super().__init__()
        self.spec = checked_spec(type(self), dict(upscale=upscale))
        self.upscale = upscale

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        upscale = opt["upscale"]
        if not isinstance(upscale, int) or isinstance(upscale, bool) or upscale < 1:
            return [f"upscale must be an integer >= 1, got {upscale!r}"]
        return []

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any size, any number of channels (the output has the input's)."""
        return ArchSpec(scale=int(opt["upscale"]), in_channels=None, out_channels=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.upscale == 1 else F.interpolate(x, scale_factor=self.upscale, mode="nearest")
