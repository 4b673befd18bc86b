"""The bicubic baseline as a network, so test.py can evaluate it like any model (the first row of every SR table)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from restoration.archs.spec import ArchSpec
from restoration.utils.matlab_imresize import imresize_pt

__all__ = ["Bicubic"]


class Bicubic(nn.Module):
    """MATLAB-compatible bicubic upsampling by ``upscale`` (no parameters).

    Args:
        upscale: Integer upsampling factor.
        in_chans: Number of image channels (only checked; bicubic works per channel).
    """

    def __init__(self, upscale: int, in_chans: int = 3) -> None:
        super().__init__()
        if int(upscale) != upscale or upscale < 1:
            raise ValueError(f"upscale must be a positive integer, got {upscale!r}")
        self.upscale = int(upscale)
        self.in_chans = int(in_chans)
        self.spec = self.spec_from_options(dict(upscale=self.upscale, in_chans=self.in_chans))

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt`` (user values bound, defaults applied)."""
        problems = []
        upscale = opt["upscale"]
        if not isinstance(upscale, int) or isinstance(upscale, bool) or upscale < 1:
            problems.append(f"Bicubic: upscale must be a positive integer, got {upscale!r}")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any input size, per-channel resampling by ``upscale``."""
        return ArchSpec(scale=int(opt["upscale"]), in_channels=int(opt["in_chans"]), out_channels=int(opt["in_chans"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` in [0, 1] → ``(B, C, h * upscale, w * upscale)``, unclipped (bicubic overshoots)."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"Bicubic expects (B, {self.in_chans}, h, w) input, got {tuple(x.shape)}")
        return imresize_pt(x, scale=self.upscale)

    def extra_repr(self) -> str:
        return f"upscale={self.upscale}, in_chans={self.in_chans}"
