"""``LDLLoss``: locally discriminative learning (Liang, Zeng & Zhang, CVPR 2022, "Details or Artifacts: A Locally
Discriminative Learning Approach to Realistic Image Super-Resolution").

The artefact map of the training output ``x`` against the ground truth ``y``, refined with the output ``x_ema`` of
the EMA generator (per pixel, channels summed)::

    r       = sum_c |y - x|,   r_ema = sum_c |y - x_ema|                      (B, 1, H, W)
    local   = var(r over the ksize x ksize window)                           unbiased, reflect-padded borders
    patch   = var(r over the whole image) ** (1/5)                           unbiased, one value per image
    M       = patch * local,   and M = 0 where r < r_ema                     (the EMA does better there: a detail)
    loss    = loss_weight * criterion(M * x, M * y)                          mean over (B, C, H, W)

as the official code computes it (csjliang/LDL: ``get_refined_artifact_map`` with ``ksize = 7``, an L1 criterion);
like it, ``M`` is not detached, so the gradient also flows through the map.

**The EMA output.** ``forward(pred, target, ema_output)`` needs ``ema_output``: ``net_g_ema(lq)`` under
``torch.no_grad()``, the same crop as ``pred``. ``SRModel`` and ``RealESRGANModel`` pass it to every loss that
declares ``needs_ema_output = True`` (and the option check requires ``train.ema_decay > 0``); called without it,
this loss raises :class:`~restoration.errors.LossInputError` rather than silently training without
the refinement. :func:`artifact_map` is usable on its own.

Computed in float32 (float64 stays float64) with autocast off.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from restoration.declare import refuse_bad_arguments
from restoration.errors import LossInputError, LossOptionError
from restoration.losses.criterion import build_criterion, criterion_problems
from restoration.losses.precision import full_precision, upcast

__all__ = ["LDLLoss", "artifact_map", "local_variance"]


def local_variance(residual: Tensor, ksize: int) -> Tensor:
    """Unbiased variance of ``residual`` ``(B, 1, H, W)`` in each ``ksize x ksize`` window, reflect-padded: same size.

    ``H`` and ``W`` must exceed ``ksize // 2`` (reflect padding).
    """
    pad = (ksize - 1) // 2
    padded = F.pad(residual, [pad, pad, pad, pad], mode="reflect")
    windows = padded.unfold(2, ksize, 1).unfold(3, ksize, 1)  # (B, 1, H, W, k, k)
    return windows.var(dim=(-2, -1), unbiased=True)


def artifact_map(output: Tensor, gt: Tensor, ema_output: Tensor, ksize: int = 7) -> Tensor:
    """LDL's refined artefact map (see the module docstring).

    Args:
        output: ``(B, C, H, W)`` of the generator being trained, in [0, 1].
        gt: Ground truth, same shape.
        ema_output: The EMA generator's output, same shape.
        ksize: Odd side of the local-variance window.

    Returns:
        ``(B, 1, H, W)`` non-negative weights, differentiable with respect to ``output``.
    """
    residual = (gt - output).abs().sum(dim=1, keepdim=True)
    residual_ema = (gt - ema_output).abs().sum(dim=1, keepdim=True)
    patch = residual.var(dim=(1, 2, 3), unbiased=True, keepdim=True) ** 0.2
    weights = patch * local_variance(residual, ksize)
    return weights.masked_fill(residual < residual_ema, 0.0)


class LDLLoss(nn.Module):
    """LDL artefact loss on ``(B, C, H, W)`` tensors in [0, 1]; needs the EMA generator's output.

    Args:
        loss_weight: Multiplier of the loss.
        criterion: ``'l1'`` (the paper's), ``'l2'`` or ``'charbonnier'``.
        ksize: Odd side of the local-variance window (the paper's 7).
    """

    label = "l_ldl"
    #: Read by a trainer: call this loss with ``ema_output=`` (the EMA generator's output of the same batch).
    needs_ema_output = True

    def __init__(self, loss_weight: float = 1.0, criterion: str = "l1", ksize: int = 7) -> None:
        super().__init__()
        refuse_bad_arguments(LDLLoss, {"loss_weight": loss_weight, "criterion": criterion, "ksize": ksize},
                             LossOptionError)
        self.loss_weight = float(loss_weight)
        self.criterion_name = criterion
        self.criterion = build_criterion(criterion)
        self.ksize = int(ksize)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems of the options (read by the option check before anything is built)."""
        problems = criterion_problems(opt["criterion"])
        ksize = opt["ksize"]
        if not isinstance(ksize, int) or isinstance(ksize, bool) or ksize < 3 or ksize % 2 == 0:
            problems.append(f"ksize must be an odd integer >= 3, got {ksize!r}")
        return problems

    def forward(self, pred: Tensor, target: Tensor, ema_output: Tensor | None = None) -> Tensor:
        """The loss (0-d); ``ema_output`` is required (see the module docstring)."""
        if ema_output is None:
            raise LossInputError(
                "LDLLoss needs the EMA generator's output (ema_output=), which this trainer does not pass to its "
                "losses; see docs/losses_metrics.md (LDL) for the trainer hook it needs")
        if not pred.shape == target.shape == ema_output.shape or pred.ndim != 4:
            raise LossInputError(f"LDLLoss: pred {tuple(pred.shape)}, target {tuple(target.shape)} and ema_output "
                                 f"{tuple(ema_output.shape)} must be one (B, C, H, W) shape")
        if min(pred.shape[2:]) <= self.ksize // 2:
            raise LossInputError(f"LDLLoss: images of {tuple(pred.shape[2:])} are too small for ksize {self.ksize}")
        with full_precision(pred.device):
            x = upcast(pred)
            y, ema = upcast(target).to(x.dtype), upcast(ema_output).to(x.dtype)
            weights = artifact_map(x, y, ema.detach(), self.ksize)
            return self.loss_weight * self.criterion(weights * x, weights * y)

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, criterion={self.criterion_name!r}, ksize={self.ksize}"
