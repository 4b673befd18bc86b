"""The input normalisation of SwinIR/HAT-style networks: ``(x - mean) * img_range`` in, the inverse out."""

from __future__ import annotations

import torch

__all__ = ["DIV2K_RGB_MEAN", "input_mean"]

#: DIV2K mean used by every official SwinIR/HAT checkpoint.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def input_mean(in_chans: int) -> torch.Tensor:
    """The mean subtracted from inputs: (1, 3, 1, 1) DIV2K mean for RGB, a (1, 1, 1, 1) zero otherwise."""
    return torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1) if in_chans == 3 else torch.zeros(1, 1, 1, 1)
