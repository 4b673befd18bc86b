"""RCAN (Zhang et al. 2018, "Image Super-Resolution Using Very Deep Residual Channel Attention Networks"), as
BasicSR has it.

The constructor arguments, their defaults and the module names are BasicSR's (``basicsr/archs/rcan_arch.py``), so
its checkpoints (``RCAN_BIX4-official.pth`` named by BasicSR's RCAN test file, and what ``train_RCAN_x2.yml``
trains; under ``params``) load with ``strict=True``: ``conv_first``, ``body.{g}.residual_group.{b}.rcab.{0,2}``
(the two 3×3 convs), ``body.{g}.residual_group.{b}.rcab.3.attention.{1,3}`` (the channel attention's 1×1 convs),
``body.{g}.conv``, ``conv_after_body``, ``upsample.{0,2,..}``, ``conv_last``. The yulunzhang/RCAN release
(EDSR-PyTorch names ``head``/``body``/``tail``/``sub_mean``) is a different key set.

The skeleton and the mean shift are EDSR's (:mod:`restoration.archs.edsr.edsr_arch`); the body is ``num_group``
residual groups of ``num_block`` residual channel-attention blocks (RCAB) -- residual in residual. BasicSR's
default is 16 blocks per group; its options and the paper use 20.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from restoration.archs.edsr.edsr_arch import MeanShiftSR, mean_shift_problems
from restoration.archs.spec import checked_spec
from restoration.layers.channel_attention import ChannelAttention
from restoration.layers.input_norm import DIV2K_RGB_MEAN
from restoration.layers.upsample import Upsample

__all__ = ["RCAN", "RCAB", "RCANGroup"]


class RCAB(nn.Module):
    """Residual channel-attention block: ``x + res_scale * CA(conv(relu(conv(x))))``; keys ``rcab.{0,2,3}``.

    Args:
        num_feat: Channels C.
        squeeze_factor: Channel-attention bottleneck C -> C // squeeze_factor.
        res_scale: Factor on the residual.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, squeeze_factor: int = 16, res_scale: float = 1) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.rcab = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(True),
                                  nn.Conv2d(num_feat, num_feat, 3, 1, 1), ChannelAttention(num_feat, squeeze_factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        if self.res_scale == 1:  # x * 1.0 == x exactly: skip the product and its backward (every release)
            return self.rcab(x) + x
        return self.rcab(x) * self.res_scale + x


class RCANGroup(nn.Module):
    """``x + conv(RCAB_1..RCAB_n(x))``: BasicSR's ``ResidualGroup`` of RCAN (keys ``residual_group.{b}``, ``conv``).

    (Not :class:`restoration.layers.residual_group.ResidualGroup`: that one runs on channels-last tokens.)

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, num_block: int, squeeze_factor: int = 16, res_scale: float = 1) -> None:
        super().__init__()
        self.residual_group = nn.Sequential(*(RCAB(num_feat, squeeze_factor, res_scale) for _ in range(num_block)))
        self.conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self.conv(self.residual_group(x)) + x


class RCAN(MeanShiftSR):
    """``conv_first`` -> ``num_group`` :class:`RCANGroup` + ``conv_after_body`` (long skip) -> sub-pixel
    ``upsample`` -> ``conv_last``, between a mean shift in and out.

    Args:
        num_in_ch: Channels of the input (3: the mean shift is RGB).
        num_out_ch: Channels of the output (3).
        num_feat: Trunk channels C.
        num_group: Residual groups (10 in every release).
        num_block: RCABs per group (the releases and BasicSR's options: 20).
        squeeze_factor: Channel-attention reduction (``num_feat // squeeze_factor`` >= 1).
        upscale: 2^n or 3.
        res_scale: Factor on each RCAB's residual.
        img_range: Features see ``(x - mean) * img_range``.
        rgb_mean: The mean subtracted from the input, in [0, 1] (DIV2K's by default).

    Shapes: (B, 3, H, W) in [0, 1] -> (B, 3, H·upscale, W·upscale); any H, W; no clamping.
    """

    def __init__(self, num_in_ch: int, num_out_ch: int, num_feat: int = 64, num_group: int = 10, num_block: int = 16,
                 squeeze_factor: int = 16, upscale: int = 4, res_scale: float = 1, img_range: float = 255.0,
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN) -> None:
        super().__init__()
        opt = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_group=num_group,
                   num_block=num_block, squeeze_factor=squeeze_factor, upscale=upscale, res_scale=res_scale,
                   img_range=img_range, rgb_mean=rgb_mean)
        self.spec = checked_spec(type(self), opt)
        self.img_range = img_range
        self.register_buffer("mean", torch.tensor(rgb_mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)  # not in BasicSR's checkpoints
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RCANGroup(num_feat, num_block, squeeze_factor, res_scale)
                                    for _ in range(num_group)))
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        problems = mean_shift_problems(opt, ("num_feat", "num_group", "num_block", "squeeze_factor"))
        feat, squeeze = opt["num_feat"], opt["squeeze_factor"]
        if isinstance(feat, int) and isinstance(squeeze, int) and 1 <= feat < squeeze:
            problems.append(f"squeeze_factor {squeeze} leaves no channel-attention channels "
                            f"(num_feat {feat} // {squeeze} = 0)")
        return problems

