"""NAFNet's simplified channel attention (SCA): ``x * conv1x1(avgpool(x))``, no squeeze, no sigmoid."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SimplifiedChannelAttention"]


class SimplifiedChannelAttention(nn.Sequential):
    """``x * W avgpool(x) + b`` per channel.

    A ``Sequential`` of ``[pool, conv]`` so the keys are NAFNet's ``sca.1.weight`` / ``sca.1.bias``, and so test-time
    local conversion (:mod:`restoration.layers.local_avg_pool`) can swap ``self[0]`` for a local pool.

    Args:
        channels: Channels C.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x * super().forward(x)
