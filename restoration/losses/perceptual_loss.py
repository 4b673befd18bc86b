"""VGG perceptual (and style) loss with BasicSR's options, loading VGG weights only from a local file.

The VGG is torchvision's ``vgg19().features`` (or ``vgg16``), rebuilt here layer for layer so that torchvision's
state-dict keys (``features.<index>.weight``) load into it unchanged. Its weights come from ``vgg_weights_path``: the
file torchvision downloads as ``vgg19-dcbb9e9d.pth`` (ImageNet-trained), or, when that option is unset (as in BasicSR's
files), the copy in ``experiments/pretrained_models/`` or torch's hub cache. Nothing is ever downloaded: training
clusters are often offline, and a silent download at iteration 0 is a bad surprise; a missing file is an options
error before anything starts.

Layers are named as in BasicSR (``conv5_4``, ``relu5_4``, ``pool4`` ...) or, KAIR style, given by their integer index in
``features`` (``34`` is ``conv5_4``); a feature "at" a layer is that layer's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Union

import torch
from torch import nn

__all__ = ["PerceptualLoss", "VGGFeatureExtractor", "vgg_layer_names", "VGG_WEIGHT_FILES", "default_vgg_weights",
           "resolve_vgg_weights"]

# torchvision's configurations: ints are 3x3 conv widths (each followed by ReLU), "M" a 2x2 max-pool.
_VGG_CONFIGS: dict[str, list[Union[int, str]]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
# The state-dict files torchvision publishes for these networks (what `vgg_weights_path` should point to).
VGG_WEIGHT_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
# ImageNet statistics the VGG weights were trained with (inputs in [0, 1]).
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

LayerKey = Union[str, int]


def vgg_layer_names(vgg_type: str) -> list[str]:
    """Names of the layers of ``features`` in order: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ...``."""
    names: list[str] = []
    block, conv = 1, 1
    for item in _VGG_CONFIGS[vgg_type]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def _make_features(vgg_type: str, num_layers: int) -> nn.Sequential:
    """The first ``num_layers`` modules of torchvision's ``vgg*().features`` (same indices, same key names)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for item in _VGG_CONFIGS[vgg_type]:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_ch = int(item)
    return nn.Sequential(*layers[:num_layers])


def default_vgg_weights(vgg_type: str) -> list[Path]:
    """Where a torchvision VGG file is looked for when ``vgg_weights_path`` is not set, in order:
    ``experiments/pretrained_models/<file>`` and torch's hub cache (``$TORCH_HOME/hub/checkpoints/<file>``,
    where torchvision, and so BasicSR, stores it after its first download)."""
    name = VGG_WEIGHT_FILES[vgg_type]
    return [Path("experiments") / "pretrained_models" / name, Path(torch.hub.get_dir()) / "checkpoints" / name]


def resolve_vgg_weights(path: str | Path | None, vgg_type: str) -> tuple[Path | None, str]:
    """``(file, problem)``: the weights file to read (``path``, else the first of :func:`default_vgg_weights`
    that exists) or ``None`` with a one-line problem naming what was looked for."""
    expected = VGG_WEIGHT_FILES[vgg_type]
    if path is not None and str(path) != "":
        file = Path(path).expanduser()
        if file.is_file():
            return file, ""
        return None, (f"VGG weights file not found: {str(path)!r} (vgg_weights_path: a local copy of torchvision's "
                      f"{vgg_type} ImageNet state dict, {expected}; nothing is downloaded)")
    for candidate in default_vgg_weights(vgg_type):
        if candidate.is_file():
            return candidate, ""
    looked = " and ".join(str(c) for c in default_vgg_weights(vgg_type))
    return None, (f"VGG weights file not found: vgg_weights_path is not set and {expected} is not in {looked}; "
                  f"set vgg_weights_path to a local copy of torchvision's {vgg_type} ImageNet state dict (nothing "
                  "is downloaded)")


def _load_features_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a torchvision VGG state dict (``features.N.*`` keys, classifier ignored) or a bare ``features`` one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code objects, ...
        raise ValueError(f"could not read VGG weights from {path}: {exc}") from exc
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    if any(k.startswith("features.") for k in state):
        return {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    return dict(state)


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG ``features`` returning the activations of selected layers.

    Args:
        layers: Layer names (``'conv5_4'``) or indices into ``features`` (``34``).
        vgg_weights_path: Local torchvision VGG state-dict file (e.g. ``vgg19-dcbb9e9d.pth``).
        vgg_type: ``'vgg19'`` or ``'vgg16'``.
        use_input_norm: Normalise inputs with the ImageNet mean/std (inputs in [0, 1]).
        range_norm: Map inputs from [-1, 1] to [0, 1] first.
    """

    def __init__(
        self,
        layers: list[LayerKey],
        vgg_weights_path: str | Path | None,
        vgg_type: str = "vgg19",
        use_input_norm: bool = True,
        range_norm: bool = False,
    ) -> None:
        super().__init__()
        if vgg_type not in _VGG_CONFIGS:
            raise ValueError(f"unsupported vgg_type {vgg_type!r}; use one of {sorted(_VGG_CONFIGS)}")
        names = vgg_layer_names(vgg_type)
        self.layer_indices: dict[LayerKey, int] = {key: self._index_of(key, names) for key in layers}
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        # Only the layers up to the deepest requested one are built, loaded and run. They are built on the meta
        # device (no memory, no random init) because every tensor is replaced by the file's.
        with torch.device("meta"):
            self.features = _make_features(vgg_type, max(self.layer_indices.values()) + 1)
        self._load(vgg_weights_path, vgg_type)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()
        # Non-persistent: these constants never belong in a checkpoint.
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _index_of(key: LayerKey, names: list[str]) -> int:
        if isinstance(key, str) and key.isdigit():
            key = int(key)  # YAML may give KAIR-style indices as strings
        if isinstance(key, int):
            if not 0 <= key < len(names):
                raise ValueError(f"VGG layer index {key} out of range 0..{len(names) - 1}")
            return key
        if key not in names:
            raise ValueError(f"unknown VGG layer {key!r}; valid names are {names}")
        return names.index(key)

    def _load(self, path_option: str | Path | None, vgg_type: str) -> None:
        expected = VGG_WEIGHT_FILES[vgg_type]
        hint = (
            f"set the perceptual loss option `vgg_weights_path` to a local copy of torchvision's {vgg_type} "
            f"ImageNet state dict ({expected}); it is never downloaded automatically"
        )
        path, problem = resolve_vgg_weights(path_option, vgg_type)
        if path is None:
            raise FileNotFoundError(problem)
        state = _load_features_state_dict(path)
        own_keys = set(self.features.state_dict())
        missing = sorted(own_keys - set(state))
        if missing:
            raise ValueError(f"{path} lacks VGG {vgg_type} feature weights {missing[:6]}...: {hint}")
        own = {k: state[k].to(torch.float32).contiguous() for k in own_keys}
        try:
            self.features.load_state_dict(own, strict=True, assign=True)
        except RuntimeError as exc:  # shape mismatch, e.g. a vgg16 file given for vgg19
            raise ValueError(f"{path} does not match VGG {vgg_type}: {exc}") from exc

    def train(self, mode: bool = True) -> "VGGFeatureExtractor":
        """Stay in eval mode: the extractor is a fixed function."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[LayerKey, torch.Tensor]:
        """``(N, 3, H, W)`` in [0, 1] ([-1, 1] with ``range_norm``) → ``{layer: activation}``."""
        if self.range_norm:
            x = (x + 1.0) / 2.0
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        wanted = {idx: key for key, idx in self.layer_indices.items()}
        out: dict[LayerKey, torch.Tensor] = {}
        for idx, layer in enumerate(self.features):
            x = layer(x)
            if idx in wanted:
                out[wanted[idx]] = x
        return out


def _gram(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``(N, C, C)`` of ``(N, C, H, W)`` features, normalised by ``C * H * W`` (as BasicSR)."""
    n, c, h, w = x.shape
    f = x.reshape(n, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


class PerceptualLoss(nn.Module):
    """Perceptual and style loss on VGG features (Johnson et al. 2016; BasicSR's ``PerceptualLoss``).

    ``forward`` returns the pair ``(percep_loss, style_loss)`` like BasicSR; an entry is ``None`` when its weight is 0.

    Args:
        layer_weights: ``{layer: weight}``; layer is a BasicSR name (``'conv5_4'``) or a ``features`` index (``34``).
        vgg_weights_path: Local torchvision VGG state-dict file (``vgg19-dcbb9e9d.pth``); when unset, the first
            of :func:`default_vgg_weights` that exists (BasicSR's option files name no file: torchvision's
            download lands in torch's hub cache), else an options error.
        vgg_type: ``'vgg19'`` (default) or ``'vgg16'``.
        use_input_norm: Normalise inputs with the ImageNet mean/std.
        range_norm: Inputs are in [-1, 1] rather than [0, 1].
        perceptual_weight: Multiplier of the feature loss (0 disables it).
        style_weight: Multiplier of the Gram-matrix loss (0 disables it).
        criterion: ``'l1'``, ``'l2'`` (mean absolute / squared difference) or ``'fro'`` (Frobenius norm).
    """

    label = "l_percep"

    def __init__(
        self,
        layer_weights: Mapping[LayerKey, float],
        vgg_weights_path: str | None = None,
        vgg_type: str = "vgg19",
        use_input_norm: bool = True,
        range_norm: bool = False,
        perceptual_weight: float = 1.0,
        style_weight: float = 0.0,
        criterion: str = "l1",
    ) -> None:
        super().__init__()
        if not layer_weights:
            raise ValueError("layer_weights must name at least one VGG layer, e.g. {'conv5_4': 1.0}")
        if criterion not in ("l1", "l2", "fro"):
            raise ValueError(f"unsupported criterion {criterion!r}; use 'l1', 'l2' or 'fro'")
        self.layer_weights = dict(layer_weights)
        self.perceptual_weight = float(perceptual_weight)
        self.style_weight = float(style_weight)
        self.criterion_type = criterion
        self.vgg = VGGFeatureExtractor(
            list(self.layer_weights),
            vgg_weights_path=vgg_weights_path,
            vgg_type=vgg_type,
            use_input_norm=use_input_norm,
            range_norm=range_norm,
        )

    @classmethod
    def check_options(cls, opt: Mapping[str, object]) -> list[str]:
        """A missing VGG file is an options error, before anything starts (not a traceback at iteration 0)."""
        vgg_type = opt["vgg_type"]
        if vgg_type not in VGG_WEIGHT_FILES:
            return [f"unsupported vgg_type {vgg_type!r}; use one of {sorted(VGG_WEIGHT_FILES)}"]
        path = opt["vgg_weights_path"]
        _, problem = resolve_vgg_weights(path if isinstance(path, (str, Path)) else None, str(vgg_type))
        return [problem] if problem else []

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.criterion_type == "l1":
            return (a - b).abs().mean()
        if self.criterion_type == "l2":
            return ((a - b) ** 2).mean()
        return torch.linalg.norm((a - b).flatten())  # Frobenius norm of the whole tensor

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Losses between the output ``x`` and ``gt``, ``(N, 3, H, W)``; gradients flow to ``x`` only."""
        x_feats = self.vgg(x)
        gt_feats = self.vgg(gt.detach())
        percep = None
        if self.perceptual_weight > 0:
            percep = sum(self._distance(x_feats[k], gt_feats[k]) * w for k, w in self.layer_weights.items())
            percep = percep * self.perceptual_weight
        style = None
        if self.style_weight > 0:
            style = sum(
                self._distance(_gram(x_feats[k]), _gram(gt_feats[k])) * w for k, w in self.layer_weights.items()
            )
            style = style * self.style_weight
        return percep, style
