"""``WeightedTVLoss``: anisotropic total variation of the output (BasicSR's name and semantics).

For ``pred`` ``(B, C, H, W)``::

    loss = loss_weight * (reduce(|pred[..., 1:, :] - pred[..., :-1, :]|) + reduce(|pred[..., :, 1:] - pred[..., :, :-1]|))

where ``reduce`` is the (weighted) mean or sum of :func:`restoration.losses.basic_loss.weight_reduce_loss`; an
optional ``weight`` map ``(B, 1 or C, H, W)`` is cut to each difference's size (its last row resp. column dropped).
It regularises the output alone: in ``train.losses`` it is called with the target like every loss, and ignores it.
Computed in float32 (float64 stays float64) with autocast off.
"""

from __future__ import annotations

from torch import Tensor, nn

from restoration.losses.basic_loss import weight_reduce_loss
from restoration.errors import LossOptionError
from restoration.losses.precision import full_precision, upcast

__all__ = ["WeightedTVLoss"]


class WeightedTVLoss(nn.Module):
    """Total variation (L1 of vertical and horizontal neighbour differences) of ``(B, C, H, W)`` tensors.

    Args:
        loss_weight: Multiplier of the loss.
        reduction: ``'mean'`` or ``'sum'`` of each direction's differences.
    """

    label = "l_tv"

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise LossOptionError(f"WeightedTVLoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.loss_weight = float(loss_weight)
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Tensor | None = None, weight: Tensor | None = None) -> Tensor:
        """The loss (0-d) of ``pred``; ``target`` is accepted for ``train.losses`` and not used."""
        del target  # TV regularises the output only
        with full_precision(pred.device):
            x = upcast(pred)
            w = None if weight is None else upcast(weight)
            vertical = weight_reduce_loss((x[:, :, 1:, :] - x[:, :, :-1, :]).abs(),
                                          None if w is None else w[:, :, :-1, :], self.reduction)
            horizontal = weight_reduce_loss((x[:, :, :, 1:] - x[:, :, :, :-1]).abs(),
                                            None if w is None else w[:, :, :, :-1], self.reduction)
            return self.loss_weight * (vertical + horizontal)

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, reduction={self.reduction!r}"
