"""Upsamplers of reconstruction heads: sub-pixel (PixelShuffle) for SwinIR/HAT/EDSR, nearest + conv for ESRGAN.

Index layout of the ``nn.Sequential`` children matches the official modules (``upsample.0``,
``upsample.2``, ...), so checkpoints load by name. The nearest + conv head is a function over the caller's
convolutions, because its official owners keep them as top-level attributes (``conv_up1``, ``conv_up2``).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Upsample", "UpsampleOneStep", "SUPPORTED_SCALES", "nearest_conv_upsample"]

#: Scales :class:`Upsample` can build: powers of two and 3.
SUPPORTED_SCALES = "2^n and 3"


def _is_power_of_two(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


class Upsample(nn.Sequential):
    """(conv3x3 C->4C, PixelShuffle(2)) per factor 2, or (conv3x3 C->9C, PixelShuffle(3)) for 3.

    Args:
        scale: 2^n or 3.
        num_feat: Channels C (kept).

    Shapes: (B, C, H, W) -> (B, C, sH, sW).
    """

    def __init__(self, scale: int, num_feat: int) -> None:
        layers: list[nn.Module] = []
        if _is_power_of_two(scale):
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"scale {scale} is not supported; supported scales: {SUPPORTED_SCALES}")
        super().__init__(*layers)


class UpsampleOneStep(nn.Sequential):
    """One conv3x3 C -> out·s² and one PixelShuffle(s): the light-weight head of SwinIR.

    Args:
        scale: Any integer factor s >= 1.
        num_feat: Input channels C.
        num_out_ch: Output channels.

    Shapes: (B, C, H, W) -> (B, num_out_ch, sH, sW).
    """

    def __init__(self, scale: int, num_feat: int, num_out_ch: int) -> None:
        super().__init__(nn.Conv2d(num_feat, scale * scale * num_out_ch, 3, 1, 1), nn.PixelShuffle(scale))


def nearest_conv_upsample(feat: torch.Tensor, convs: Iterable[nn.Module], negative_slope: float = 0.2) -> torch.Tensor:
    """Per conv: nearest-neighbour ×2, the conv, LeakyReLU (ESRGAN/RRDBNet's head and SwinIR's ``nearest+conv``).

    Interpolating before the conv avoids the checkerboard artefacts of sub-pixel heads in GAN training.

    Args:
        feat: ``(B, C, H, W)`` features.
        convs: Size-preserving convolutions ``C -> C``, one per ×2 step (``conv_up1``, ``conv_up2``).
        negative_slope: Of the LeakyReLU after each conv.

    Returns:
        ``(B, C, H·2^n, W·2^n)`` for ``n`` convs.
    """
    for conv in convs:
        feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), negative_slope, inplace=True)
    return feat
