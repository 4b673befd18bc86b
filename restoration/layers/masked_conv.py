"""A convolution whose centre tap is masked out: the first layer of a blind-spot network."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CentralMaskedConv2d"]


class CentralMaskedConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose kernel centre is fixed to zero, so ``out(p)`` never sees ``in(p)``.

    The mask is a persistent buffer named ``mask`` (shape of ``weight``) because official TBSN
    checkpoints store it; the multiplication happens inside :meth:`forward` (the official code
    overwrites ``weight.data`` in place instead). Both give the same output, but here the centre
    weight receives zero gradient and the stored weight is left untouched.

    Args: as ``nn.Conv2d``; the kernel size must be odd so that a centre exists.

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H', W')``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        kh, kw = self.kernel_size
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"CentralMaskedConv2d needs an odd kernel size, got {self.kernel_size}")
        mask = torch.ones_like(self.weight.detach())
        mask[:, :, kh // 2, kw // 2] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def check_mask(self, mask: torch.Tensor) -> bool:
        """Whether a stored ``mask`` (e.g. from a checkpoint) equals the one this layer uses."""
        return mask.shape == self.mask.shape and bool(torch.equal(mask.to(self.mask), self.mask))
