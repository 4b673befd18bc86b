"""Pixel losses with BasicSR semantics: ``L1Loss``, ``MSELoss``, ``CharbonnierLoss``.

Every loss is built as ``Loss(loss_weight=1.0, reduction='mean', ...)`` and called ``loss(pred, target, weight=None)``
on ``(N, C, H, W)`` tensors. The element-wise loss is multiplied by the optional ``weight`` map (broadcastable to
``pred``; ``(N, 1, H, W)`` or ``(N, C, H, W)``), then reduced:

* ``'none'``: the weighted element-wise loss, shape ``(N, C, H, W)``;
* ``'sum'``: its sum;
* ``'mean'``: without ``weight``, the plain mean; with ``weight``, the weighted mean ``sum(w * l) / sum(w)``, where a
  one-channel weight map counts once per channel (BasicSR's ``weight_reduce_loss``).

The reduced value is finally multiplied by ``loss_weight``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["L1Loss", "MSELoss", "CharbonnierLoss", "weight_reduce_loss", "REDUCTIONS"]

REDUCTIONS = ("none", "mean", "sum")


def weight_reduce_loss(loss: torch.Tensor, weight: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Apply an optional element-wise ``weight`` to ``loss`` (``(N, C, H, W)``) and reduce it (see module docstring)."""
    if weight is not None:
        if weight.dim() != loss.dim() or weight.size(1) not in (1, loss.size(1)):
            raise ValueError(
                f"weight shape {tuple(weight.shape)} must be (N, 1, H, W) or (N, C, H, W) for a loss of shape "
                f"{tuple(loss.shape)}"
            )
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if weight is None:
        return loss.mean()
    # A single-channel weight map applies to every channel, so it counts C times in the normaliser.
    total_weight = weight.sum() if weight.size(1) > 1 else weight.sum() * loss.size(1)
    return loss.sum() / total_weight


class _PixelLoss(nn.Module):
    """Shared constructor/forward: subclasses define :meth:`elementwise`."""

    label = "l_pix"  # how train.losses logs it (BasicSR's name)

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"unsupported reduction {reduction!r} for {type(self).__name__}; use one of {REDUCTIONS}")
        self.loss_weight = float(loss_weight)
        self.reduction = reduction

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Loss between ``pred`` and ``target`` (``(N, C, H, W)``, same shape); see the module docstring."""
        if pred.shape != target.shape:
            raise ValueError(
                f"{type(self).__name__}: pred shape {tuple(pred.shape)} and target shape {tuple(target.shape)} differ"
            )
        return self.loss_weight * weight_reduce_loss(self.elementwise(pred, target), weight, self.reduction)

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, reduction={self.reduction!r}"


class L1Loss(_PixelLoss):
    """Mean absolute error ``|pred - target|``.

    Args:
        loss_weight: Multiplier of the reduced loss.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
    """

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).abs()


class MSELoss(_PixelLoss):
    """Mean squared error ``(pred - target)²``.

    Args:
        loss_weight: Multiplier of the reduced loss.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
    """

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target) ** 2


class CharbonnierLoss(_PixelLoss):
    """Charbonnier loss ``sqrt((pred - target)² + eps)``, a differentiable L1 (Lai et al., LapSRN).

    ``eps`` is added under the square root as in BasicSR, so the default 1e-12 gives a loss of 1e-6 at zero error.
    Papers that write ``sqrt(d² + ε²)`` with ε = 1e-3 (e.g. Restormer-style setups) need ``eps=1e-6`` here.

    Args:
        loss_weight: Multiplier of the reduced loss.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        eps: Added to the squared difference under the square root.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean", eps: float = 1e-12) -> None:
        super().__init__(loss_weight=loss_weight, reduction=reduction)
        self.eps = float(eps)

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((pred - target) ** 2 + self.eps)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, eps={self.eps}"
