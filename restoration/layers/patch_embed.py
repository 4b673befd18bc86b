"""Patch embedding of the SwinIR family: a feature map becomes a grid of (optionally normalised) tokens."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["PatchEmbed", "token_resolution"]


def token_resolution(img_size: int | Sequence[int], patch_size: int) -> tuple[int, int]:
    """Token grid (h, w) of an ``img_size`` (int or (h, w)) image cut into ``patch_size`` patches."""
    h, w = (img_size, img_size) if isinstance(img_size, (int, float)) else img_size[:2]
    return int(h) // patch_size, int(w) // patch_size


class PatchEmbed(nn.Module):
    """(B, C, H, W) feature map -> (B, H, W, C) tokens, optionally normalised (key ``patch_embed.norm``).

    SwinIR and HAT use single-pixel patches after a 3x3 convolution, so the official ``PatchEmbed``
    only flattens and normalises; tokens stay in a channels-last map here.
    """

    def __init__(self, embed_dim: int, norm_layer: type[nn.Module] | None) -> None:
        super().__init__()
        self.norm = norm_layer(embed_dim) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        return self.norm(x) if self.norm is not None else x
