"""``FFLoss``: focal frequency loss (Jiang, Dai, Wu & Loy, ICCV 2021, "Focal Frequency Loss for Image
Reconstruction and Synthesis").

Both images are cut into ``patch_factor x patch_factor`` patches, each patch and channel is transformed with the
orthonormal 2-D DFT ``F``, and the squared distance of the spectra is weighted by a "focal" matrix that grows
with the distance itself::

    d(u, v) = |F_pred(u, v) - F_target(u, v)|²
    w(u, v) = sqrt(d)^alpha          (log(1 + .) with log_matrix), divided by its maximum over (u, v) of each image,
                                     patch and channel (over the whole batch with batch_matrix), NaN -> 0,
                                     clamped to [0, 1], and detached (no gradient through the weights)
    loss    = loss_weight * mean(w * d)   over batch, patches, channels and frequencies

``ave_spectrum`` averages the spectra over the batch before comparing. Defaults are those of the official
implementation (EndlessSora/focal-frequency-loss): ``alpha=1, patch_factor=1``, everything else off.
traiNNer-redux's ``FFLoss`` differs in two defaults: it multiplies the loss by 50 and averages the spectrum
(``ave_spectrum: true``); its ``loss_weight: w`` is ``loss_weight: 50 w, ave_spectrum: true`` here.

Computed in float32 (float64 stays float64) with autocast off: ``torch.fft`` has no half-precision CPU kernels.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from restoration.declare import refuse_bad_arguments
from restoration.errors import LossInputError, LossOptionError
from restoration.losses.precision import full_precision, upcast

__all__ = ["FFLoss", "patch_spectra"]


def patch_spectra(x: Tensor, patch_factor: int) -> Tensor:
    """Orthonormal 2-D DFT of each patch.

    Args:
        x: ``(B, C, H, W)`` real, ``H`` and ``W`` divisible by ``patch_factor``.
        patch_factor: Patches per side.

    Returns:
        Complex ``(B, P, C, H / patch_factor, W / patch_factor)`` with ``P = patch_factor²``, patches in row-major
        order.
    """
    b, c, h, w = x.shape
    f = patch_factor
    patches = x.reshape(b, c, f, h // f, f, w // f).permute(0, 2, 4, 1, 3, 5).reshape(b, f * f, c, h // f, w // f)
    return torch.fft.fft2(patches, norm="ortho")


class FFLoss(nn.Module):
    """Focal frequency loss on ``(B, C, H, W)`` tensors (any range; the tests use [0, 1]).

    Args:
        loss_weight: Multiplier of the loss.
        alpha: Exponent of the spectrum weight matrix.
        patch_factor: Patches per side (``H`` and ``W`` must be divisible by it).
        ave_spectrum: Compare the batch-averaged spectra.
        log_matrix: Weight by ``log(1 + sqrt(d)^alpha)``.
        batch_matrix: Normalise the weights by their maximum over the whole batch.
    """

    label = "l_ff"

    def __init__(self, loss_weight: float = 1.0, alpha: float = 1.0, patch_factor: int = 1,
                 ave_spectrum: bool = False, log_matrix: bool = False, batch_matrix: bool = False) -> None:
        super().__init__()
        refuse_bad_arguments(FFLoss, {"loss_weight": loss_weight, "alpha": alpha, "patch_factor": patch_factor,
                                      "ave_spectrum": ave_spectrum, "log_matrix": log_matrix,
                                      "batch_matrix": batch_matrix}, LossOptionError)
        self.loss_weight = float(loss_weight)
        self.alpha = float(alpha)
        self.patch_factor = int(patch_factor)
        self.ave_spectrum = bool(ave_spectrum)
        self.log_matrix = bool(log_matrix)
        self.batch_matrix = bool(batch_matrix)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems of the options (read by the option check before anything is built)."""
        problems = []
        factor = opt["patch_factor"]
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
            problems.append(f"patch_factor must be a positive integer, got {factor!r}")
        alpha = opt["alpha"]
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or alpha <= 0:
            problems.append(f"alpha must be a positive number, got {alpha!r}")
        return problems

    def spectrum_weights(self, distance: Tensor) -> Tensor:
        """The focal weights ``(B', P, C, h, w)`` in [0, 1] of a squared spectral distance (no gradient)."""
        with torch.no_grad():
            w = distance.sqrt() ** self.alpha
            if self.log_matrix:
                w = torch.log1p(w)
            peak = w.amax() if self.batch_matrix else w.amax(dim=(-2, -1), keepdim=True)
            w = torch.where(peak > 0, w / peak, torch.zeros_like(w))  # identical spectra: weight 0, not NaN
            return w.clamp(0.0, 1.0)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """The loss (0-d) between ``pred`` and ``target``, ``(B, C, H, W)`` of one shape."""
        if pred.shape != target.shape or pred.ndim != 4:
            raise LossInputError(f"FFLoss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must be one "
                                 f"(B, C, H, W) shape")
        h, w = pred.shape[2:]
        if h % self.patch_factor or w % self.patch_factor:
            raise LossInputError(f"FFLoss: patch_factor {self.patch_factor} does not divide the image size "
                                 f"{(h, w)}; pick a patch_factor that divides gt_size")
        with full_precision(pred.device):
            p = upcast(pred)
            freq_p = patch_spectra(p, self.patch_factor)
            freq_t = patch_spectra(upcast(target).to(p.dtype), self.patch_factor)
            if self.ave_spectrum:
                freq_p, freq_t = freq_p.mean(0, keepdim=True), freq_t.mean(0, keepdim=True)
            distance = torch.view_as_real(freq_p - freq_t).pow(2).sum(-1)
            return self.loss_weight * (self.spectrum_weights(distance) * distance).mean()

    def extra_repr(self) -> str:
        return (f"loss_weight={self.loss_weight}, alpha={self.alpha}, patch_factor={self.patch_factor}, "
                f"ave_spectrum={self.ave_spectrum}, log_matrix={self.log_matrix}, batch_matrix={self.batch_matrix}")
