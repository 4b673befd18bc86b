"""DISTS (Ding et al. 2020, "Image Quality Assessment: Unifying Structure and Texture Similarity"); lower is better.

A VGG16 whose four max-pools are replaced by L2 pooling (a 3x3 Hann window ``[1, 2, 1]ᵀ[1, 2, 1] / 16``,
stride 2: ``sqrt(conv(x²) + 1e-12)``) gives six representations of an image ``x`` in [0, 1]: ``x`` itself and
relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of ``(x - mean) / std`` (ImageNet's). Per channel ``c`` of
representation ``k`` (``μ``, ``σ²``, ``σ_xy`` over the spatial positions, population statistics)::

    S1 = (2 μx μy + c1) / (μx² + μy² + c1)           # texture: means      c1 = c2 = 1e-6
    S2 = (2 σxy + c2) / (σx² + σy² + c2)             # structure: correlation
    DISTS = 1 - Σ_k Σ_c (α_kc S1 + β_kc S2) / (Σ α + Σ β)

Both files are local and named in the options; nothing is downloaded:

* ``backbone_weights_path``: torchvision's ImageNet VGG16, ``vgg16-397923af.pth`` (``features.<i>.*`` keys; the
  classifier is ignored), the file LPIPS-vgg reads too;
* ``dists_weights_path``: the published ``α, β``, each ``(1, 1475, 1, 1)`` (1475 = 3 + 64 + 128 + 256 + 512 + 512),
  the ``weights.pt`` the ``dists-pytorch`` package ships (``DISTS_pytorch/weights.pt``, keys ``alpha``, ``beta``).

:class:`DISTSLoss` is the training loss (frozen network, gradients to the prediction, computed in float32 under
autocast); :func:`restoration.metrics.dists_metric.calculate_dists` is the metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restoration.errors import DISTSWeightsError
from restoration.losses.precision import full_precision

__all__ = ["DISTS", "DISTSLoss", "DISTSWeightsError", "dists_file_problems", "CHANNELS"]

# VGG16's features: conv widths, "M" a max-pool (here: L2 pooling). torchvision numbers conv, ReLU and pool alike.
_VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                                     512, 512, 512)
#: Channels of the six representations (the input, then relu1_2 ... relu5_3).
CHANNELS = (3, 64, 128, 256, 512, 512)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_C1 = _C2 = 1e-6
_WHERE = ("torchvision's vgg16-397923af.pth (https://download.pytorch.org/models/vgg16-397923af.pth)",
          "the dists-pytorch package's DISTS_pytorch/weights.pt (pip download dists-pytorch)")


def dists_file_problems(backbone_weights_path: Any, dists_weights_path: Any) -> list[str]:
    """What is wrong with the weight-file options, before anything is read (the option check's test)."""
    problems = []
    for key, path, hint in (("backbone_weights_path", backbone_weights_path, _WHERE[0]),
                            ("dists_weights_path", dists_weights_path, _WHERE[1])):
        if not path:
            problems.append(f"DISTS needs '{key}': a local copy of {hint}; nothing is downloaded "
                            "(docs/losses_metrics.md)")
        elif not Path(str(path)).expanduser().is_file():
            problems.append(f"DISTS {key} file not found: {str(path)!r} (expected {hint}; nothing is downloaded; "
                            "docs/losses_metrics.md)")
    return problems


def _read(path: str, what: str) -> dict[str, Tensor]:
    try:
        state = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, pickled code objects, ...
        raise DISTSWeightsError(f"cannot read the DISTS {what} file {path!r}: {exc}") from exc
    if not isinstance(state, Mapping):
        raise DISTSWeightsError(f"the DISTS {what} file {path!r} holds no state dict")
    return dict(state)


class L2Pooling(nn.Module):
    """``sqrt(hann3x3 * x² + 1e-12)``, depthwise, stride 2, padding 1: ``(B, C, H, W) -> (B, C, ⌈H/2⌉, ⌈W/2⌉)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0]) / 4  # np.hanning(5)[1:-1], normalised
        self.register_buffer("filter", (taps[:, None] * taps[None, :]).expand(channels, 1, 3, 3).clone())

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(x**2, self.filter.to(x.dtype), stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    """DISTS distance (frozen, eval mode). ``stage<k>.<torchvision index>`` hold VGG16's layers.

    Args:
        backbone_weights_path: torchvision's VGG16 state dict.
        dists_weights_path: File with ``alpha`` and ``beta``, each ``(1, 1475, 1, 1)``.

    Raises:
        DISTSWeightsError: A file is missing, unreadable or of another shape.
    """

    def __init__(self, backbone_weights_path: str | None, dists_weights_path: str | None) -> None:
        super().__init__()
        problems = dists_file_problems(backbone_weights_path, dists_weights_path)
        if problems:
            raise DISTSWeightsError("; ".join(problems))
        stages = [nn.Sequential() for _ in range(5)]
        stage, index, in_ch = 0, 0, 3
        for item in _VGG16_CFG:
            if item == "M":  # the pool opens the next stage
                stage += 1
                stages[stage].add_module(str(index), L2Pooling(in_ch))
                index += 1
            else:
                stages[stage].add_module(str(index), nn.Conv2d(in_ch, int(item), 3, padding=1))
                stages[stage].add_module(str(index + 1), nn.ReLU(inplace=False))
                index, in_ch = index + 2, int(item)
        for k, module in enumerate(stages, 1):
            setattr(self, f"stage{k}", module)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        self.register_buffer("alpha", torch.zeros(1, sum(CHANNELS), 1, 1))
        self.register_buffer("beta", torch.zeros(1, sum(CHANNELS), 1, 1))
        self._load_backbone(str(backbone_weights_path))
        self._load_alpha_beta(str(dists_weights_path))
        self.requires_grad_(False)
        self.eval()

    def _load_backbone(self, path: str) -> None:
        state = _read(path, "backbone")
        own = {}
        for name, tensor in self.named_parameters():  # stage3.10.weight <- features.10.weight
            key = "features." + name.split(".", 1)[1]
            if key not in state or state[key].shape != tensor.shape:
                raise DISTSWeightsError(f"the DISTS backbone file {path!r} has no {key} of shape "
                                        f"{tuple(tensor.shape)}: is it torchvision's vgg16-397923af.pth?")
            own[name] = state[key]
        self.load_state_dict(own, strict=False)

    def _load_alpha_beta(self, path: str) -> None:
        state = _read(path, "alpha/beta")
        for key in ("alpha", "beta"):
            value = state.get(key)
            if not isinstance(value, Tensor) or value.numel() != sum(CHANNELS):
                raise DISTSWeightsError(f"the DISTS weights file {path!r} needs '{key}' with {sum(CHANNELS)} "
                                        f"values (expected {_WHERE[1]})")
            getattr(self, key).copy_(value.reshape(1, -1, 1, 1))

    def train(self, mode: bool = True) -> "DISTS":
        """Stay in eval mode: DISTS is a fixed function."""
        return super().train(False)

    def representations(self, x: Tensor) -> list[Tensor]:
        """The six representations of ``x`` ``(B, 3, H, W)`` in [0, 1]: ``x``, relu1_2, ..., relu5_3."""
        h = (x - self.mean) / self.std
        outs = [x]
        for k in range(1, 6):
            h = getattr(self, f"stage{k}")(h)
            outs.append(h)
        return outs

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Distance ``(B,)`` of ``(B, 3, H, W)`` images in [0, 1] (0 for equal images)."""
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, CHANNELS, dim=1)
        betas = torch.split(self.beta / total, CHANNELS, dim=1)
        similarity = x.new_zeros(x.shape[0])
        for fx, fy, alpha, beta in zip(self.representations(x), self.representations(y), alphas, betas):
            mx, my = fx.mean((2, 3), keepdim=True), fy.mean((2, 3), keepdim=True)
            vx, vy = ((fx - mx) ** 2).mean((2, 3), keepdim=True), ((fy - my) ** 2).mean((2, 3), keepdim=True)
            cov = (fx * fy).mean((2, 3), keepdim=True) - mx * my
            s1 = (2 * mx * my + _C1) / (mx**2 + my**2 + _C1)
            s2 = (2 * cov + _C2) / (vx + vy + _C2)
            similarity = similarity + (alpha * s1 + beta * s2).sum(dim=(1, 2, 3))
        return 1 - similarity


class DISTSLoss(nn.Module):
    """``loss_weight * mean(DISTS(pred, target))`` for images in [0, 1]; gradients reach ``pred`` only.

    Computed in the network's dtype (float32 unless the module was cast) with autocast off: the variances and
    covariances of deep features lose their digits in half precision.

    Args:
        backbone_weights_path, dists_weights_path: As :class:`DISTS`.
        loss_weight: Multiplier.
    """

    label = "l_dists"

    def __init__(self, backbone_weights_path: str | None = None, dists_weights_path: str | None = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.dists = DISTS(backbone_weights_path, dists_weights_path)
        self.loss_weight = float(loss_weight)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Missing weight files are reported with the other option problems, before anything starts."""
        return dists_file_problems(opt["backbone_weights_path"], opt["dists_weights_path"])

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in [0, 1] each -> scalar."""
        with full_precision(pred.device):
            dtype = self.dists.alpha.dtype
            pred, target = pred.to(dtype), target.detach().to(dtype)
            return self.dists(pred, target).mean() * self.loss_weight
