"""``ColorLoss`` (chroma) and ``LumaLoss``: a pixel criterion on the CbCr resp. Y channels of MATLAB's YCbCr.

The channels come from :func:`restoration.utils.color.rgb2ycbcr_pt` (BT.601 studio swing, the conversion the
metrics' ``test_y_channel`` uses), on ``(B, 3, H, W)`` RGB tensors in [0, 1]; channel values are in [0, 1]
(Y in [16/255, 235/255], Cb/Cr in [16/255, 240/255]). Keys follow traiNNer-redux:

* ``ColorLoss``: ``criterion(pool(CbCr(pred)), pool(CbCr(target)))`` with ``pool`` a ``scale x scale`` mean (stride
  ``scale``; floor of the size), so colour shifts are penalised and chroma detail is left to the other losses;
  ``scale: 1`` compares CbCr pixel by pixel.
* ``LumaLoss``: ``criterion(Y(pred), Y(target))``. traiNNer-redux compares full-range BT.601 luma
  (``0.299 R + 0.587 G + 0.114 B``); MATLAB's Y is that times 219/255 plus 16/255, so with ``l1`` this loss is
  219/255 of redux's.

``criterion`` is ``'l1'``, ``'l2'`` or ``'charbonnier'`` (:mod:`restoration.losses.criterion`). Computed in float32
(float64 stays float64) with autocast off.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from restoration.declare import refuse_bad_arguments
from restoration.errors import LossInputError, LossOptionError
from restoration.losses.criterion import build_criterion, criterion_problems
from restoration.losses.precision import full_precision, upcast
from restoration.utils.color import rgb2ycbcr_pt

__all__ = ["ColorLoss", "LumaLoss"]


def _ycbcr(x: Tensor, owner: str) -> Tensor:
    if x.ndim != 4 or x.shape[1] != 3:
        raise LossInputError(f"{owner} needs RGB (B, 3, H, W) images, got {tuple(x.shape)}")
    return rgb2ycbcr_pt(upcast(x))


class LumaLoss(nn.Module):
    """``loss_weight * criterion(Y(pred), Y(target))`` on RGB ``(B, 3, H, W)`` tensors in [0, 1].

    Args:
        loss_weight: Multiplier of the loss.
        criterion: ``'l1'``, ``'l2'`` or ``'charbonnier'``.
    """

    label = "l_luma"

    def __init__(self, loss_weight: float = 1.0, criterion: str = "l1") -> None:
        super().__init__()
        refuse_bad_arguments(LumaLoss, {"loss_weight": loss_weight, "criterion": criterion}, LossOptionError)
        self._setup(loss_weight, criterion)

    def _setup(self, loss_weight: float, criterion: str) -> None:
        """The members of checked arguments (shared with :class:`ColorLoss`, which checks its own)."""
        self.loss_weight = float(loss_weight)
        self.criterion_name = criterion
        self.criterion = build_criterion(criterion)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems of the options (read by the option check before anything is built)."""
        return criterion_problems(opt["criterion"])

    def channels(self, x: Tensor) -> Tensor:
        """The compared channels of ``x``: Y, ``(B, 1, H, W)``."""
        return _ycbcr(x, type(self).__name__)[:, :1]

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """The loss, a 0-d tensor."""
        if pred.shape != target.shape:
            raise LossInputError(f"{type(self).__name__}: pred {tuple(pred.shape)} and target "
                                 f"{tuple(target.shape)} differ")
        with full_precision(pred.device):
            a = self.channels(pred)
            return self.loss_weight * self.criterion(a, self.channels(target).to(a.dtype))

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, criterion={self.criterion_name!r}"


class ColorLoss(LumaLoss):
    """``loss_weight * criterion(pool(CbCr(pred)), pool(CbCr(target)))`` on RGB ``(B, 3, H, W)`` in [0, 1].

    Args:
        loss_weight: Multiplier of the loss.
        criterion: ``'l1'``, ``'l2'`` or ``'charbonnier'``.
        scale: Side of the mean pooling applied to Cb and Cr before comparing (1: none); at most the image side.
    """

    label = "l_color"

    def __init__(self, loss_weight: float = 1.0, criterion: str = "l1", scale: int = 4) -> None:
        nn.Module.__init__(self)
        refuse_bad_arguments(ColorLoss, {"loss_weight": loss_weight, "criterion": criterion, "scale": scale},
                             LossOptionError)
        self._setup(loss_weight, criterion)
        self.scale = int(scale)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        problems = criterion_problems(opt["criterion"])
        scale = opt["scale"]
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            problems.append(f"scale must be a positive integer, got {scale!r}")
        return problems

    def channels(self, x: Tensor) -> Tensor:
        """The compared channels of ``x``: Cb and Cr, mean-pooled, ``(B, 2, H // scale, W // scale)``."""
        chroma = _ycbcr(x, "ColorLoss")[:, 1:]
        if self.scale == 1:
            return chroma
        if min(chroma.shape[2:]) < self.scale:
            raise LossInputError(f"ColorLoss: scale {self.scale} is larger than the image {tuple(x.shape[2:])}")
        return F.avg_pool2d(chroma, self.scale)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale}"
