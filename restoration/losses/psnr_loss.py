"""NAFNet's ``PSNRLoss``: the negative PSNR of each image, averaged over the batch (minimised)."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PSNRLoss"]

_SCALE = 10.0 / math.log(10.0)  # 10·log10(mse) = _SCALE·ln(mse)
_EPS = 1e-8  # added to each image's MSE, as in the official loss
_Y_COEF = (65.481, 128.553, 24.966)  # BT.601 RGB [0, 1] -> Y [16, 235] (before the +16)


class PSNRLoss(nn.Module):
    """``loss_weight · mean_n 10·log10(mean_{c,h,w} (pred - target)² + 1e-8)`` — ``-PSNR`` in dB for data in [0, 1].

    Same value as megvii-research/NAFNet ``basicsr/models/losses/losses.py`` ``PSNRLoss``. Unlike an MSE, every
    image weighs by its log-error, so easy (clean) images are not drowned out by hard ones.

    Args:
        loss_weight: Multiplier of the loss.
        reduction: Only ``'mean'`` (over the batch), as in the official loss.
        toY: Compare the BT.601 luma ``(65.481 R + 128.553 G + 24.966 B + 16) / 255`` of 3-channel images instead.

    Shapes: ``pred``, ``target``: (N, C, H, W) in [0, 1] -> a scalar (negative for errors below 1).
    """

    label = "l_pix"

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean", toY: bool = False) -> None:  # noqa: N803
        super().__init__()
        if reduction != "mean":
            raise ValueError(f"PSNRLoss supports only reduction 'mean' (over the batch), got {reduction!r}")
        self.loss_weight = float(loss_weight)
        self.reduction = reduction
        self.to_y = bool(toY)
        self.register_buffer("y_coef", torch.tensor(_Y_COEF).view(1, 3, 1, 1), persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss of (N, C, H, W) ``pred`` against ``target``; an element-wise ``weight`` is refused."""
        if weight is not None:
            raise ValueError("PSNRLoss takes no weight map")
        if pred.dim() != 4 or pred.shape != target.shape:
            raise ValueError(f"PSNRLoss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must be the same "
                             "(N, C, H, W)")
        if self.to_y:
            coef = self.y_coef.to(pred.dtype)
            pred = ((pred * coef).sum(1, keepdim=True) + 16.0) / 255.0
            target = ((target * coef).sum(1, keepdim=True) + 16.0) / 255.0
        mse = (pred - target).pow(2).mean(dim=(1, 2, 3))
        return self.loss_weight * _SCALE * torch.log(mse + _EPS).mean()

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, toY={self.to_y}"
