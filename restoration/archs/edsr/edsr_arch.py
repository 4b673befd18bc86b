"""EDSR (Lim et al. 2017, "Enhanced Deep Residual Networks for Single Image Super-Resolution"), as BasicSR has it.

The constructor arguments, their defaults and the module names are BasicSR's (``basicsr/archs/edsr_arch.py``), so
its converted official checkpoints (``EDSR_{M,L}x{2,3,4}_f{64,256}b{16,32}_DIV2K_official-*.pth``, under
``params``) load with ``strict=True``: ``conv_first``, ``body.{i}.conv{1,2}``, ``conv_after_body``,
``upsample.{0,2,..}``, ``conv_last``. EDSR-M is 64 channels / 16 blocks / ``res_scale`` 1, EDSR-L 256 / 32 / 0.1.

The input in [0, 1] is shifted by the DIV2K RGB mean and scaled to [0, 255]-like values (``(x - mean) *
img_range``) and the output is mapped back, inside the network. The mean is a non-persistent buffer: BasicSR keeps
it as a plain attribute, so it is not in the checkpoints; ``res_scale``, ``img_range`` and ``rgb_mean`` leave no
trace in the weights (detection takes them from the release).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec
from restoration.layers.input_norm import DIV2K_RGB_MEAN
from restoration.layers.residual_block import ResidualBlockNoBN
from restoration.layers.upsample import SUPPORTED_SCALES, Upsample

__all__ = ["EDSR", "MeanShiftSR", "mean_shift_problems", "upscale_supported"]


def upscale_supported(upscale: Any) -> bool:
    """Whether BasicSR's sub-pixel :class:`~restoration.layers.upsample.Upsample` builds ``upscale`` (2^n or 3)."""
    return isinstance(upscale, int) and not isinstance(upscale, bool) and upscale >= 2 and (
        upscale == 3 or upscale & (upscale - 1) == 0)


def mean_shift_problems(opt: Mapping[str, Any], counts: Sequence[str]) -> list[str]:
    """Option problems shared by EDSR and RCAN (``counts`` name the positive integer options).

    The official forward subtracts a (1, 3, 1, 1) mean from the input and adds it to the output, so both
    images have exactly three channels.
    """
    problems = [f"{key} must be >= 1, got {opt[key]!r}" for key in counts
                if not isinstance(opt[key], int) or isinstance(opt[key], bool) or opt[key] < 1]
    mean = opt["rgb_mean"]
    if not isinstance(mean, (list, tuple)) or len(mean) != 3:
        problems.append(f"rgb_mean must be 3 values (R, G, B), got {mean!r}")
    for key in ("num_in_ch", "num_out_ch"):
        if opt[key] != 3:
            problems.append(f"{key} must be 3: the RGB mean is subtracted from the input and added to the output, "
                            f"got {opt[key]!r}")
    if not upscale_supported(opt["upscale"]):
        problems.append(f"upscale must be {SUPPORTED_SCALES} (sub-pixel Upsample), got {opt['upscale']!r}")
    if not isinstance(opt["img_range"], (int, float)) or not opt["img_range"] > 0:
        problems.append(f"img_range must be a positive number, got {opt['img_range']!r}")
    return problems


class MeanShiftSR(nn.Module):
    """BasicSR's EDSR/RCAN frame: mean shift and ``img_range``, ``conv_first``, a ``body`` with a long skip
    through ``conv_after_body``, ``upsample``, ``conv_last``, the mean added back. Subclasses build those
    modules (their names are the checkpoints' keys) and the ``mean`` buffer ``(1, 3, 1, 1)``."""

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any input size; ``img_range`` is undone inside, so the network works on [0, 1]."""
        return ArchSpec(scale=int(opt["upscale"]), in_channels=int(opt["num_in_ch"]),
                        out_channels=int(opt["num_out_ch"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, H·upscale, W·upscale)."""
        mean = self.mean.to(x.dtype)
        feat = self.conv_first((x - mean) * self.img_range)
        feat = self.conv_after_body(self.body(feat)) + feat
        return self.conv_last(self.upsample(feat)) / self.img_range + mean


class EDSR(MeanShiftSR):
    """``conv_first`` -> ``num_block`` residual blocks + ``conv_after_body`` (long skip) -> sub-pixel
    ``upsample`` -> ``conv_last``, between a mean shift in and out.

    Args:
        num_in_ch: Channels of the input (3: the mean shift is RGB).
        num_out_ch: Channels of the output (3).
        num_feat: Trunk channels (EDSR-M 64, EDSR-L 256).
        num_block: Residual blocks (EDSR-M 16, EDSR-L 32).
        upscale: 2^n or 3.
        res_scale: Factor on each block's residual (EDSR-M 1, EDSR-L 0.1).
        img_range: Features see ``(x - mean) * img_range``.
        rgb_mean: The mean subtracted from the input, in [0, 1] (DIV2K's by default).

    Shapes: (B, 3, H, W) in [0, 1] -> (B, 3, H·upscale, W·upscale); any H, W; no clamping.
    """

    def __init__(self, num_in_ch: int, num_out_ch: int, num_feat: int = 64, num_block: int = 16, upscale: int = 4,
                 res_scale: float = 1, img_range: float = 255.0,
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN) -> None:
        super().__init__()
        opt = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_block=num_block,
                   upscale=upscale, res_scale=res_scale, img_range=img_range, rgb_mean=rgb_mean)
        self.spec = checked_spec(type(self), opt)
        self.img_range = img_range
        self.register_buffer("mean", torch.tensor(rgb_mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)  # not in BasicSR's checkpoints
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(num_feat, res_scale) for _ in range(num_block)))
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        return mean_shift_problems(opt, ("num_feat", "num_block"))

