"""RRDBNet: the generator of ESRGAN (Wang et al. 2018) and Real-ESRGAN (Wang et al. 2021).

The constructor arguments, their defaults and the module names are BasicSR's (``basicsr/archs/rrdbnet_arch.py``),
so the released checkpoints (``RealESRGAN_x4plus.pth``, ``RealESRNet_x4plus.pth``, ``RealESRGAN_x2plus.pth``,
``RealESRGAN_x4plus_anime_6B.pth``, BasicSR's ``ESRGAN_SRx4_DF2KOST_official``; all under ``params_ema`` or
``params``) load with ``strict=True``: ``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``,
``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``; no buffers.

The trunk always enlarges its feature map four times (two nearest ×2 + conv steps), so only scales 4, 2 and 1
exist: for 2 and 1 the input is first pixel-unshuffled by 2 / 4 (``F.pixel_unshuffle``, the channel order of
BasicSR's ``pixel_unshuffle``), which is why those inputs need sides that are multiples of 2 / 4. The older
xinntao/ESRGAN layout (``RRDB_trunk``, ``trunk_conv``, ``upconv1``, ``HRconv``) is a different key set.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec
from restoration.layers.upsample import nearest_conv_upsample

__all__ = ["RRDBNet", "RRDB", "ResidualDenseBlock", "UNSHUFFLE_FACTOR"]

#: Output scale -> pixel-unshuffle factor of the input (the trunk itself always upsamples ×4).
UNSHUFFLE_FACTOR: dict[int, int] = {4: 1, 2: 2, 1: 4}
_SLOPE = 0.2  # LeakyReLU negative slope everywhere in RRDBNet
_RESIDUAL_SCALE = 0.2  # ESRGAN's residual scaling of each dense block and of each RRDB
_INIT_SCALE = 0.1  # BasicSR scales the Kaiming-normal init of every dense-block conv by 0.1


class ResidualDenseBlock(nn.Module):
    """Five 3×3 convs on the growing concatenation ``[x, x1, .., x4]``; returns ``0.2 * x5 + x``.

    Args:
        num_feat: Channels F of the block's input and output.
        num_grow_ch: Channels G each of ``conv1``..``conv4`` adds.

    Shapes: (B, F, H, W) -> (B, F, H, W).
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        for i in range(1, 5):
            setattr(self, f"conv{i}", nn.Conv2d(num_feat + (i - 1) * num_grow_ch, num_grow_ch, 3, 1, 1))
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        for i in range(1, 6):  # BasicSR's default_init_weights(..., 0.1): a near-identity block at the start
            conv = getattr(self, f"conv{i}")
            nn.init.kaiming_normal_(conv.weight)
            with torch.no_grad():
                conv.weight.mul_(_INIT_SCALE)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, H, W) -> (B, F, H, W)."""
        feats = [x]
        for i in range(1, 5):  # in place on each fresh conv output, as the official LeakyReLU(inplace=True)
            feats.append(F.leaky_relu(getattr(self, f"conv{i}")(torch.cat(feats, 1)), _SLOPE, inplace=True))
        return self.conv5(torch.cat(feats, 1)) * _RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Residual in residual dense block: three :class:`ResidualDenseBlock`, returns ``0.2 * out + x``.

    Shapes: (B, F, H, W) -> (B, F, H, W).
    """

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, H, W) -> (B, F, H, W)."""
        return self.rdb3(self.rdb2(self.rdb1(x))) * _RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    """ESRGAN's generator: ``conv_first`` -> ``num_block`` RRDBs + ``conv_body`` (long skip) -> two
    (nearest ×2, conv, LeakyReLU) steps -> ``conv_hr``, LeakyReLU, ``conv_last``.

    Args:
        num_in_ch: Channels of the input image.
        num_out_ch: Channels of the output image.
        scale: 4, 2 or 1; for 2 and 1 the input is pixel-unshuffled by 2 / 4 first (Real-ESRGAN x2plus).
        num_feat: Trunk channels F.
        num_block: RRDBs in the trunk (Real-ESRGAN: 23; the anime model: 6).
        num_grow_ch: Growth channels G of each dense block.

    Shapes: (B, num_in_ch, H, W) in [0, 1] -> (B, num_out_ch, H·scale, W·scale); H and W multiples of
    4 / scale. No padding, no mean shift, no clamping (the output may leave [0, 1]).
    """

    def __init__(self, num_in_ch: int, num_out_ch: int, scale: int = 4, num_feat: int = 64, num_block: int = 23,
                 num_grow_ch: int = 32) -> None:
        super().__init__()
        opt = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, scale=scale, num_feat=num_feat, num_block=num_block,
                   num_grow_ch=num_grow_ch)
        self.spec = checked_spec(type(self), opt)
        self.scale = scale
        self.unshuffle = UNSHUFFLE_FACTOR[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle ** 2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        problems = [f"{key} must be >= 1, got {opt[key]!r}"
                    for key in ("num_in_ch", "num_out_ch", "num_feat", "num_block", "num_grow_ch")
                    if not isinstance(opt[key], int) or opt[key] < 1]
        if opt["scale"] not in UNSHUFFLE_FACTOR:
            problems.append(f"scale must be one of {sorted(UNSHUFFLE_FACTOR)} (the trunk upsamples x4; 2 and 1 "
                            f"pixel-unshuffle the input first), got {opt['scale']!r}")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Sides must be multiples of the unshuffle factor: 4 for scale 1, 2 for scale 2, 1 for scale 4."""
        multiple = UNSHUFFLE_FACTOR[int(opt["scale"])]
        return ArchSpec(scale=int(opt["scale"]), in_channels=int(opt["num_in_ch"]),
                        out_channels=int(opt["num_out_ch"]), size_multiple=multiple, min_size=multiple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H·scale, W·scale)."""
        if self.unshuffle > 1:
            if x.shape[-2] % self.unshuffle or x.shape[-1] % self.unshuffle:
                raise ValueError(f"RRDBNet scale {self.scale} needs H and W that are a multiple of {self.unshuffle} "
                                 f"(pixel-unshuffle), got {tuple(x.shape[-2:])}")
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = nearest_conv_upsample(feat, (self.conv_up1, self.conv_up2), _SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), _SLOPE, inplace=True))
