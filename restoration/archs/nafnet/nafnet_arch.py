"""NAFNet: Nonlinear Activation Free Network (Chen et al., ECCV 2022), and ``NAFNetLocal`` (its TLC test form).

Constructor arguments, defaults and module names are the official ones (megvii-research/NAFNet
``basicsr/models/archs/NAFNet_arch.py``), so the released files (``NAFNet-SIDD-width32/64.pth``,
``NAFNet-GoPro-width32/64.pth``, under ``params``) load with ``strict=True``: ``intro``, ``encoders.{i}.{j}``,
``downs.{i}``, ``middle_blks.{j}``, ``ups.{i}.0`` (1×1, no bias, before a pixel shuffle), ``decoders.{i}.{j}``,
``ending``; a block holds ``norm1/2``, ``conv1..5``, ``sca.1`` and the zero-initialised ``beta``, ``gamma``.

``NAFNetLocal`` is the same network and state dict with every simplified-channel-attention pool replaced by a
local box average (test-time local conversion, :mod:`restoration.layers.local_avg_pool`). The official GoPro
(deblurring) train and test option files both name ``NAFNetLocal`` (default ``train_size`` (1, 3, 256, 256),
``fast_imp`` false); the README's GoPro scores are measured with it. The SIDD files use plain ``NAFNet`` (their
256 px validation crops are below the kernel, where both are the same network).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec
from restoration.layers.layer_norm2d import LayerNorm2d
from restoration.layers.local_avg_pool import LocalAvgPool2d
from restoration.layers.simple_gate import SimpleGate
from restoration.layers.simplified_channel_attention import SimplifiedChannelAttention

__all__ = ["NAFNet", "NAFNetLocal", "NAFBlock", "tlc_kernel_sizes"]

_LN_EPS = 1e-6  # NAFNet's LayerNorm2d default
_TLC_BASE_RATIO = 1.5  # official NAFNetLocal: base_size = int(train side * 1.5)


class NAFBlock(nn.Module):
    """``y = x + beta * conv3(sca(sg(dw3x3(conv1(ln(x))))))``; ``out = y + gamma * conv5(sg(conv4(ln(y))))``.

    Args:
        c: Channels C (the depth-wise and FFN branches work on 2C, halved by the gate).
        drop_out_rate: Dropout after each branch (0 in every release: no module then).

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, c: int, drop_out_rate: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, 2 * c, 1)
        self.conv2 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.sca = SimplifiedChannelAttention(c)
        self.sg = SimpleGate()
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.norm1 = LayerNorm2d(c, eps=_LN_EPS)
        self.norm2 = LayerNorm2d(c, eps=_LN_EPS)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.sca(self.sg(self.conv2(self.conv1(self.norm1(inp)))))
        y = inp + self.dropout1(self.conv3(x)) * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + self.dropout2(x) * self.gamma


class NAFNet(nn.Module):
    """U-Net of NAFBlocks with a global residual: the output is ``input + ending(...)``.

    Args:
        img_channel: Image channels (input = output).
        width: Channels at full resolution; doubled at every level.
        middle_blk_num: Blocks at the lowest resolution.
        enc_blk_nums: Blocks per encoder level (each followed by a 2×2 stride-2 conv).
        dec_blk_nums: Blocks per decoder level (after a 1×1 conv + pixel shuffle and the encoder skip, added).

    Shapes: (B, C, H, W) in [0, 1] -> (B, C, H, W); any H, W: the input is zero-padded bottom/right to a multiple
    of ``2 ** len(enc_blk_nums)`` inside and the output cropped back, as in the official forward.
    """

    def __init__(self, img_channel: int = 3, width: int = 16, middle_blk_num: int = 1,
                 enc_blk_nums: Sequence[int] = (), dec_blk_nums: Sequence[int] = ()) -> None:
        super().__init__()
        opt = dict(img_channel=img_channel, width=width, middle_blk_num=middle_blk_num,
                   enc_blk_nums=list(enc_blk_nums), dec_blk_nums=list(dec_blk_nums))
        self.spec = checked_spec(NAFNet, opt)
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan) for _ in range(middle_blk_num)])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
        self.padder_size = 2 ** len(self.encoders)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        problems = [f"{key} must be >= 1, got {opt[key]!r}" for key in ("img_channel", "width")
                    if not isinstance(opt[key], int) or opt[key] < 1]
        if not isinstance(opt["middle_blk_num"], int) or opt["middle_blk_num"] < 0:
            problems.append(f"middle_blk_num must be >= 0, got {opt['middle_blk_num']!r}")
        for key in ("enc_blk_nums", "dec_blk_nums"):
            if any(not isinstance(n, int) or n < 0 for n in opt[key]):
                problems.append(f"{key} must be a list of block counts >= 0, got {opt[key]!r}")
        if len(opt["enc_blk_nums"]) != len(opt["dec_blk_nums"]):
            problems.append(f"dec_blk_nums {opt['dec_blk_nums']!r} must have as many levels as enc_blk_nums "
                            f"{opt['enc_blk_nums']!r} (each decoder adds one encoder's skip)")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any size (padded inside), [0, 1], scale 1."""
        channels = int(opt["img_channel"])
        return ArchSpec(scale=1, in_channels=channels, out_channels=channels)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        h, w = inp.shape[-2:]
        inp = F.pad(inp, (0, -w % self.padder_size, 0, -h % self.padder_size))
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        x = self.ending(x) + inp
        return x[:, :, :h, :w]


def tlc_kernel_sizes(train_size: Sequence[int], levels: int) -> list[tuple[int, int]]:
    """Local-pool kernel per U-Net level (0 = full resolution, ``levels`` = middle), as the official conversion
    fixes them: its forward on a ``train_size`` input gives each pool ``feature side * int(1.5 * side) // side``.

    Args:
        train_size: ``(N, C, H, W)`` of the training crops.
        levels: Number of encoder levels.
    """
    _, _, th, tw = train_size
    padder = 2 ** levels
    ph, pw = th + (-th % padder), tw + (-tw % padder)  # the official forward pads the conversion input too
    base_h, base_w = int(th * _TLC_BASE_RATIO), int(tw * _TLC_BASE_RATIO)
    return [((ph >> i) * base_h // th, (pw >> i) * base_w // tw) for i in range(levels + 1)]


class NAFNetLocal(NAFNet):
    """:class:`NAFNet` with TLC: each block's channel-attention pool averages a local window (the test-time
    protocol of the official GoPro results). Same parameters and state dict as ``NAFNet``.

    Args:
        train_size: ``(N, C, H, W)`` of the training crops; the kernel at each level is 1.5× its feature side.
        fast_imp: The official approximate strided variant; only ``False`` (the official option files' value).
        Others: as :class:`NAFNet`.
    """

    def __init__(self, img_channel: int = 3, width: int = 16, middle_blk_num: int = 1,
                 enc_blk_nums: Sequence[int] = (), dec_blk_nums: Sequence[int] = (),
                 train_size: Sequence[int] = (1, 3, 256, 256), fast_imp: bool = False) -> None:
        opt = dict(img_channel=img_channel, width=width, middle_blk_num=middle_blk_num,
                   enc_blk_nums=list(enc_blk_nums), dec_blk_nums=list(dec_blk_nums), train_size=list(train_size),
                   fast_imp=fast_imp)
        checked_spec(NAFNetLocal, opt)
        super().__init__(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)
        kernels = tlc_kernel_sizes(train_size, len(self.encoders))
        for level, stage in enumerate(self.encoders):
            _localise(stage, kernels[level])
        _localise(self.middle_blks, kernels[len(self.encoders)])
        for level, stage in zip(range(len(self.decoders) - 1, -1, -1), self.decoders):
            _localise(stage, kernels[level])

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """NAFNet's problems, plus ``train_size`` and ``fast_imp``."""
        problems = NAFNet.check_options(opt)
        size = list(opt["train_size"])
        if len(size) != 4 or any(not isinstance(s, int) or s < 1 for s in size):
            problems.append(f"train_size must be (N, C, H, W) positive integers, got {opt['train_size']!r}")
        if opt["fast_imp"]:
            problems.append("fast_imp: true (the official approximate strided pooling) is not implemented; "
                            "the official option files use false")
        return problems


def _localise(stage: nn.Sequential, kernel: tuple[int, int]) -> None:
    for block in stage:
        block.sca[0] = LocalAvgPool2d(kernel)
