"""Test-time local conversion (TLC; Chu et al., ECCV 2022): a local average in place of a global one.

A network trained on 256 px crops pools its statistics over 256 px; at test time on a 720 x 1280 frame a global
pool averages over far more. TLC replaces the global pool by a ``k x k`` box average (stride 1, valid), replicate-padded
back to the input size, with ``k`` fixed from the training size (NAFNet: 1.5x the training feature size). When the
kernel covers the whole map it IS the global average (the official code then calls ``adaptive_avg_pool2d``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LocalAvgPool2d"]


class LocalAvgPool2d(nn.Module):
    """Box average of ``kernel_size`` (clipped to the map), replicate-padded to the input size.

    Same result as megvii-research/NAFNet ``local_arch.AvgPool2d`` with ``fast_imp=False`` and ``auto_pad=True``
    (which computes the box sums through a 2-D cumulative sum; :func:`F.avg_pool2d` sums each window directly,
    so float rounding differs slightly and large images lose no precision to the running sum).

    Args:
        kernel_size: ``(kh, kw)`` box size.

    Shapes:
        ``(B, C, H, W) -> (B, C, 1, 1)`` when ``kh >= H`` and ``kw >= W``, else ``(B, C, H, W)``.
    """

    def __init__(self, kernel_size: tuple[int, int]) -> None:
        super().__init__()
        self.kernel_size = (int(kernel_size[0]), int(kernel_size[1]))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.kernel_size[0] >= h and self.kernel_size[1] >= w:
            return F.adaptive_avg_pool2d(x, 1)
        k1, k2 = min(h, self.kernel_size[0]), min(w, self.kernel_size[1])
        out = F.avg_pool2d(x, (k1, k2), stride=1)
        dh, dw = h - out.shape[-2], w - out.shape[-1]
        # the larger half of an odd remainder goes bottom / right, as in the official auto_pad
        return F.pad(out, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode="replicate")
