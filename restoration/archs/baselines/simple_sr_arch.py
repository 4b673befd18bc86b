"""SimpleSRNet: a small residual CNN for super-resolution, the smoke-test and quick-start baseline."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec
from restoration.layers.upsample import UpsampleOneStep

__all__ = ["SimpleSRNet"]


class _ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 with an identity skip."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


class SimpleSRNet(nn.Module):
    """conv -> ``num_block`` residual blocks -> conv + PixelShuffle, plus the bilinearly upscaled input.

    Because the output is a correction of the bilinear upscale, training starts near a sensible
    upscaler, so a few iterations already show a PSNR change.

    Args:
        num_in_ch: Input channels.
        num_out_ch: Output channels (must equal ``num_in_ch`` for the bilinear skip).
        num_feat: Feature channels.
        num_block: Residual blocks.
        upscale: Output scale (1 = restoration at the same size).
        img_range: Inputs are multiplied by this inside the network and divided on the way out.

    Shapes: (B, num_in_ch, H, W) in [0, 1] -> (B, num_out_ch, H·upscale, W·upscale), any H, W.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 32,
        num_block: int = 4,
        upscale: int = 2,
        img_range: float = 1.0,
    ) -> None:
        super().__init__()
        opt = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, upscale=upscale)
        self.spec = checked_spec(type(self), opt)
        self.upscale = upscale
        self.img_range = img_range
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(_ResBlock(num_feat) for _ in range(num_block)))
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = UpsampleOneStep(upscale, num_feat, num_out_ch)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        problems = []
        if opt["num_in_ch"] != opt["num_out_ch"]:
            problems.append(f"num_out_ch {opt['num_out_ch']} must equal num_in_ch {opt['num_in_ch']} (global skip)")
        if opt["upscale"] < 1:
            problems.append(f"upscale must be >= 1, got {opt['upscale']}")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any input size; ``img_range`` is undone inside, so the contract range stays [0, 1]."""
        return ArchSpec(scale=int(opt["upscale"]), in_channels=int(opt["num_in_ch"]), out_channels=int(opt["num_out_ch"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H·s, W·s)."""
        base = x if self.upscale == 1 else F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        feat = self.conv_first(x * self.img_range)
        feat = feat + self.conv_after_body(self.body(feat))
        return base + self.upsample(feat) / self.img_range
