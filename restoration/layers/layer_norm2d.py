"""BasicSR's ``LayerNorm2d``: LayerNorm over the channel axis of a (B, C, H, W) map."""

from __future__ import annotations

import torch
from torch import nn

from restoration.layers.channel_norm_functions import CenteredChannelNorm, use_function

__all__ = ["LayerNorm2d"]


class LayerNorm2d(nn.Module):
    """``(x - mean_c) / sqrt(var_c + eps) * weight + bias`` per pixel (biased variance).

    Same arithmetic and key names (``weight``, ``bias``) as ``basicsr.archs.arch_util.LayerNorm2d``,
    whose default ``eps`` is 1e-6 (DAT/DSwinIR offset networks); Restormer-style block norms use 1e-5.

    Args:
        channels: Number of channels ``C``.
        eps: Added to the variance.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.

    Training runs through :class:`~restoration.layers.channel_norm_functions.CenteredChannelNorm` (the same
    forward, a hand-written backward, as NAFNet's own ``LayerNormFunction``); see that module's switch.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_function(x, self.weight, self.bias):
            return CenteredChannelNorm.apply(x, self.weight, self.bias, self.eps)
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight[None, :, None, None] * y + self.bias[None, :, None, None]
