"""``SSIMLoss`` and ``MSSSIMLoss``: ``1 - SSIM`` and ``1 - MS-SSIM`` as training losses.

Both compute exactly the SSIM of :func:`restoration.metrics.psnr_ssim.calculate_ssim_pt` (11x11 Gaussian window,
sigma 1.5, valid region, ``K = (0.01, 0.03)``; the unrounded float version of the metric) and the MS-SSIM of
:mod:`restoration.metrics.ms_ssim`, on ``(B, C, H, W)`` tensors in [0, 1], differentiably:

* ``channels: rgb`` compares every input channel (RGB, or the one channel of a grey image) and averages;
* ``channels: y`` compares the unrounded MATLAB Y of RGB inputs (:func:`restoration.utils.color.rgb2ycbcr_pt`),
  the channel the SR tables report.

The loss is ``loss_weight * (1 - mean over the batch of the per-image value)``, computed in float32 (float64 stays
float64) with autocast off, whatever the input dtype. Inputs are not clamped: values outside [0, 1] are scored as
they are (clamping would cut their gradient).

Sizes: SSIM needs 11x11 pixels. MS-SSIM's coarsest scale must hold the window too, so ``scales: 5`` (the standard,
weights of Wang et al. 2003) needs sides of at least 161 pixels; a 128x128 training crop needs ``scales: 4`` (81+;
the first four weights rescaled to sum to 1) or ``scales: 3`` (41+). A smaller crop is refused with
:class:`~restoration.errors.LossInputError`, never scored on fewer scales behind the user's back.

traiNNer-redux's ``MSSIMLoss`` / ``MSSSIMLoss`` zero-pad the window (``padding = window_size // 2``) and clamp to
[0, 1], so their values differ from these near the borders; these equal the metrics.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from restoration.declare import refuse_bad_arguments
from restoration.errors import LossInputError, LossOptionError
from restoration.losses.precision import full_precision, upcast
from restoration.metrics.ms_ssim import MS_SSIM_WEIGHTS, ms_ssim_min_size, ms_ssim_pt
from restoration.utils.color import rgb2ycbcr_pt

__all__ = ["SSIMLoss", "MSSSIMLoss", "CHANNELS"]

#: The values of the ``channels`` option.
CHANNELS = ("rgb", "y")


def _channel_problems(channels: object) -> list[str]:
    if channels in CHANNELS:
        return []
    return [f"channels must be one of {list(CHANNELS)}, got {channels!r}"]


def select_channels(x: Tensor, channels: str, owner: str) -> Tensor:
    """``x`` ``(B, C, H, W)`` as it is (``'rgb'``) or its MATLAB Y ``(B, 1, H, W)`` in [0, 1] (``'y'``)."""
    if channels == "y":
        if x.shape[1] != 3:
            raise LossInputError(f"{owner} with channels: y needs RGB (B, 3, H, W) images, got {tuple(x.shape)}")
        return rgb2ycbcr_pt(x, y_only=True)
    return x


class MSSSIMLoss(nn.Module):
    """``loss_weight * (1 - MS-SSIM)`` (Wang et al. 2003) on ``(B, C, H, W)`` tensors in [0, 1].

    Args:
        loss_weight: Multiplier of the loss.
        channels: ``'rgb'`` (every channel) or ``'y'`` (MATLAB Y of RGB inputs).
        scales: Scales of the pyramid, 1 to 5; each halves the image, and sides of at least
            ``10 * 2^(scales-1) + 1`` pixels are needed (161 for 5).
    """

    label = "l_msssim"

    def __init__(self, loss_weight: float = 1.0, channels: str = "rgb", scales: int = 5) -> None:
        super().__init__()
        refuse_bad_arguments(MSSSIMLoss, {"loss_weight": loss_weight, "channels": channels, "scales": scales},
                             LossOptionError)
        self._setup(loss_weight, channels, scales)

    def _setup(self, loss_weight: float, channels: str, scales: int) -> None:
        """The members of checked arguments (shared with :class:`SSIMLoss`, which checks its own)."""
        self.loss_weight = float(loss_weight)
        self.channels = channels
        self.scales = int(scales)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems of the options (read by the option check before anything is built)."""
        problems = _channel_problems(opt["channels"])
        scales = opt["scales"]
        if not isinstance(scales, int) or isinstance(scales, bool) or not 1 <= scales <= len(MS_SSIM_WEIGHTS):
            problems.append(f"scales must be an integer from 1 to {len(MS_SSIM_WEIGHTS)}, got {scales!r}")
        return problems

    def similarity(self, pred: Tensor, target: Tensor) -> Tensor:
        """The per-image (MS-)SSIM, ``(B,)``, of the selected channels (float32 or float64)."""
        name = type(self).__name__
        if pred.shape != target.shape or pred.ndim != 4:
            raise LossInputError(f"{name}: pred {tuple(pred.shape)} and target {tuple(target.shape)} must be one "
                                 f"(B, C, H, W) shape")
        need = ms_ssim_min_size(self.scales)
        if min(pred.shape[2:]) < need:
            raise LossInputError(
                f"{name} with scales: {self.scales} needs images of at least {need}x{need} pixels, got "
                f"{tuple(pred.shape[2:])}" + (f"; use a larger gt_size or fewer scales (scales: "
                                              f"{self.scales - 1} needs {ms_ssim_min_size(self.scales - 1)})"
                                              if self.scales > 1 else ""))
        with full_precision(pred.device):
            x = select_channels(upcast(pred), self.channels, name)
            y = select_channels(upcast(target), self.channels, name).to(x.dtype)
            return ms_ssim_pt(x, y, data_range=1.0, scales=self.scales)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """``loss_weight * (1 - mean_b similarity)``, a 0-d tensor."""
        return self.loss_weight * (1.0 - self.similarity(pred, target).mean())

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, channels={self.channels!r}, scales={self.scales}"


class SSIMLoss(MSSSIMLoss):
    """``loss_weight * (1 - SSIM)`` on ``(B, C, H, W)`` tensors in [0, 1] (at least 11x11 pixels).

    Args:
        loss_weight: Multiplier of the loss.
        channels: ``'rgb'`` (every channel) or ``'y'`` (MATLAB Y of RGB inputs).
    """

    label = "l_ssim"

    def __init__(self, loss_weight: float = 1.0, channels: str = "rgb") -> None:
        nn.Module.__init__(self)
        refuse_bad_arguments(SSIMLoss, {"loss_weight": loss_weight, "channels": channels}, LossOptionError)
        self._setup(loss_weight, channels, scales=1)  # one scale: MS-SSIM is SSIM

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        return _channel_problems(opt["channels"])

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, channels={self.channels!r}"
