"""Channel attention (RCAN's squeeze-and-excitation) and HAT's channel-attention block (CAB)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ChannelAttention", "CAB"]


class ChannelAttention(nn.Module):
    """Rescale channels by ``sigmoid(W2 relu(W1 avgpool(x)))``.

    Keys: ``attention.1`` (C -> C/squeeze, 1x1) and ``attention.3`` (back to C).

    Args:
        num_feat: Channels C.
        squeeze_factor: Reduction of the bottleneck.
    """

    def __init__(self, num_feat: int, squeeze_factor: int = 16) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(num_feat, num_feat // squeeze_factor, 1, padding=0),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat // squeeze_factor, num_feat, 1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x * self.attention(x)


class CAB(nn.Module):
    """conv3x3 C -> C/compress, GELU, conv3x3 -> C, channel attention. Keys ``cab.{0,2,3}``.

    Args:
        num_feat: Channels C.
        compress_ratio: Bottleneck reduction of the convolutions.
        squeeze_factor: Reduction inside the channel attention.
    """

    def __init__(self, num_feat: int, compress_ratio: int = 3, squeeze_factor: int = 30) -> None:
        super().__init__()
        self.cab = nn.Sequential(
            nn.Conv2d(num_feat, num_feat // compress_ratio, 3, 1, 1),
            nn.GELU(),
            nn.Conv2d(num_feat // compress_ratio, num_feat, 3, 1, 1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self.cab(x)
