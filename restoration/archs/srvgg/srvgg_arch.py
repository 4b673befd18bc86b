"""SRVGGNetCompact: Real-ESRGAN's compact VGG-style SR network (``realesr-general-x4v3``, ``realesr-animevideov3``).

The constructor arguments, defaults and module names are those of the official class (identical in
xinntao/Real-ESRGAN ``realesrgan/archs/srvgg_arch.py`` and BasicSR ``basicsr/archs/srvgg_arch.py``, where it is
registered as ``SRVGGNetCompact_basicsr``; :mod:`restoration.options.upstream` reads that name as this one), so
the released weights (under ``params``) load with ``strict=True``.

``body`` is ONE ``nn.ModuleList`` that holds the activations between the convolutions, so the conv keys are
``body.{2k}.weight/bias`` and a PReLU's per-channel slopes are ``body.{2k+1}.weight``; ReLU and LeakyReLU(0.1)
leave no key, so those two cannot be told apart from the weights.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec

__all__ = ["SRVGGNetCompact", "ACT_TYPES"]

#: act_type -> its module (PReLU: one learnable slope per channel, initialised at 0.25).
ACT_TYPES = ("relu", "prelu", "leakyrelu")
_LEAKY_SLOPE = 0.1  # the official 'leakyrelu'


def _activation(act_type: str, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "leakyrelu":
        return nn.LeakyReLU(negative_slope=_LEAKY_SLOPE)
    return nn.ReLU()


class SRVGGNetCompact(nn.Module):
    """``num_conv + 2`` 3×3 convolutions at the input resolution (an activation after all but the last),
    ``PixelShuffle(upscale)``, plus the nearest-upsampled input: the network learns the residual.

    Args:
        num_in_ch: Input channels.
        num_out_ch: Output channels; must equal ``num_in_ch`` (the nearest-upsampled input is added).
        num_feat: Feature channels.
        num_conv: Convolutions between the first and the last (x4v3: 32; animevideov3: 16).
        upscale: Output scale (any integer >= 1).
        act_type: ``"prelu"`` (the releases), ``"relu"`` or ``"leakyrelu"`` (slope 0.1).

    Shapes: (B, num_in_ch, H, W) in [0, 1] -> (B, num_out_ch, H·upscale, W·upscale), any H, W. No padding,
    no mean shift, no clamping.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_conv: int = 16,
                 upscale: int = 4, act_type: str = "prelu") -> None:
        super().__init__()
        opt = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_conv=num_conv,
                   upscale=upscale, act_type=act_type)
        self.spec = checked_spec(type(self), opt)
        self.upscale = upscale
        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)])
        for _ in range(num_conv):
            self.body.extend([nn.Conv2d(num_feat, num_feat, 3, 1, 1), _activation(act_type, num_feat)])
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        problems = [f"{key} must be >= 1, got {opt[key]!r}" for key in ("num_in_ch", "num_out_ch", "num_feat", "upscale")
                    if not isinstance(opt[key], int) or opt[key] < 1]
        if not isinstance(opt["num_conv"], int) or opt["num_conv"] < 0:
            problems.append(f"num_conv must be >= 0, got {opt['num_conv']!r}")
        if opt["num_in_ch"] != opt["num_out_ch"]:
            problems.append(f"num_out_ch {opt['num_out_ch']!r} must equal num_in_ch {opt['num_in_ch']!r} "
                            "(the nearest-upsampled input is added to the output)")
        if opt["act_type"] not in ACT_TYPES:
            problems.append(f"act_type must be one of {list(ACT_TYPES)}, got {opt['act_type']!r}")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any input size, [0, 1]."""
        return ArchSpec(scale=int(opt["upscale"]), in_channels=int(opt["num_in_ch"]),
                        out_channels=int(opt["num_out_ch"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H·upscale, W·upscale)."""
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
