"""Restormer's channel LayerNorm on (B, C, H, W) maps, with and without a bias (mean subtraction)."""

from __future__ import annotations

import torch
from torch import nn

from restoration.layers.channel_norm_functions import CenteredChannelNorm, ScaledChannelNorm, use_function

__all__ = ["BiasFreeLayerNorm2d", "WithBiasLayerNorm2d", "RestormerLayerNorm"]

_EPS = 1e-5


class BiasFreeLayerNorm2d(nn.Module):
    """``x / sqrt(var_c(x) + 1e-5) * weight``: normalises the scale over channels without centring.

    Purely per pixel, so it cannot move information between pixels (it keeps a blind spot blind).

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_function(x, self.weight):  # training: a two-pass variance and a hand-written backward
            return ScaledChannelNorm.apply(x, self.weight, _EPS)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return x / torch.sqrt(var + _EPS) * self.weight[:, None, None]


class WithBiasLayerNorm2d(nn.Module):
    """Standard LayerNorm over the channel axis of a (B, C, H, W) map (eps 1e-5)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_function(x, self.weight, self.bias):  # training: a two-pass variance and a hand-written backward
            return CenteredChannelNorm.apply(x, self.weight, self.bias, _EPS)
        mu = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(var + _EPS) * self.weight[:, None, None] + self.bias[:, None, None]


class RestormerLayerNorm(nn.Module):
    """Restormer's ``LayerNorm(dim, LayerNorm_type)`` wrapper; the norm lives in ``.body``.

    The extra ``body`` level reproduces the official key names (``norm1.body.weight``).

    Args:
        dim: Number of channels.
        layer_norm_type: ``'BiasFree'``; any other value gives the with-bias variant (as upstream).
    """

    def __init__(self, dim: int, layer_norm_type: str = "BiasFree") -> None:
        super().__init__()
        self.body = BiasFreeLayerNorm2d(dim) if layer_norm_type == "BiasFree" else WithBiasLayerNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
