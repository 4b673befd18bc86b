"""The plain residual block without batch norm (EDSR's ``ResBlock``, BasicSR's ``ResidualBlockNoBN``)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualBlockNoBN"]


class ResidualBlockNoBN(nn.Module):
    """``x + res_scale * conv2(relu(conv1(x)))`` with 3×3 convolutions; keys ``conv1.*``, ``conv2.*``.

    EDSR dropped batch norm from SRResNet's block (it flattens the range of features) and scales the residual
    (0.1 in its 256-channel model) to keep a deep trunk stable. PyTorch's default initialisation, as EDSR
    (BasicSR builds it with ``pytorch_init=True``).

    Args:
        num_feat: Channels C.
        res_scale: Factor on the residual branch.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        branch = self.conv2(self.relu(self.conv1(x)))
        if self.res_scale == 1:  # x * 1.0 == x exactly: skip the product and its backward (EDSR-M)
            return x + branch
        return x + branch * self.res_scale
