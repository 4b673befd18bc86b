"""Any checkpoint spandrel recognises, for inference: the optional extra ``[zoo]``.

``restoration-infer`` first asks our families (:func:`restoration.archs.detect.detect_architecture`); they always
win, since they are parity-proven against their official code and can be trained here. Only a checkpoint none of
them claims (:class:`~restoration.errors.UnrecognisedCheckpointError`) is handed to spandrel (MIT,
``pip install 'restoration[zoo]'``), which recognises about fifty more architectures from their keys. Its model is
wrapped as :class:`SpandrelNetwork`, an ``nn.Module`` with an :class:`~restoration.archs.spec.ArchSpec`, so it runs
through our predictor like any network of ours: our padding, tiles, ×8 ensemble, 16-bit and alpha handling,
``--precision`` and ``--outscale`` apply. Such a network is not parity-proven here: the log says so.

What spandrel's descriptor says is honoured:

* ``scale``, ``input_channels``, ``output_channels`` -> the spec; the model takes and gives [0, 1]
  (``value_range`` 1);
* ``size_requirements`` -> ``size_multiple`` = ``multiple_of``, ``min_size`` = ``minimum`` (at least one
  multiple); a ``square`` requirement is met by spandrel's own call, which pads to a square and crops back;
* ``tiling`` ``discouraged`` / ``internal`` -> ``--tile auto`` becomes whole images (logged); an explicit
  ``--tile N`` still tiles, with a warning;
* ``supports_half`` / ``supports_bfloat16`` -> ``--precision fp16`` / ``bf16`` only where it says so, else
  :class:`~restoration.errors.InferArgumentError`.

spandrel_extra_arches is not used (not all of its architectures are MIT-compatible).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import Tensor, nn

from restoration.archs.detect import Detection
from restoration.archs.spec import ArchSpec
from restoration.errors import DetectionError, InferArgumentError, InferError, UnrecognisedCheckpointError
from restoration.utils.logger import get_logger
from restoration.utils.weights import read_state_dict

__all__ = ["ZOO_HINT", "SpandrelNetwork", "SpandrelChoice", "load_spandrel", "spandrel_spec"]

#: What a user without spandrel is told when none of our families claims a checkpoint.
ZOO_HINT = "pip install 'restoration[zoo]'"

#: ``--precision`` -> the descriptor's attribute that must be True for it.
_PRECISION_SUPPORT = {"fp16": "supports_half", "bf16": "supports_bfloat16"}


def spandrel_spec(descriptor: Any) -> ArchSpec:
    """Our contract for a spandrel ``ImageModelDescriptor``: its scale, channels and size requirements, [0, 1]."""
    req = descriptor.size_requirements
    multiple = int(req.multiple_of)
    return ArchSpec(scale=int(descriptor.scale), in_channels=int(descriptor.input_channels),
                    out_channels=int(descriptor.output_channels), size_multiple=multiple,
                    min_size=max(multiple, int(req.minimum)), value_range=1.0, tileable=True)


class SpandrelNetwork(nn.Module):
    """A model spandrel loaded, as a network of ours: ``forward(x)`` is the descriptor's call.

    ``x`` ``(B, in_channels, h, w)`` in [0, 1] -> ``(B, out_channels, h*scale, w*scale)`` clamped to [0, 1], what
    spandrel's ``ImageModelDescriptor.__call__`` returns (its architecture-specific call, its padding for a
    ``square`` requirement; our predictor has already padded to ``multiple_of`` / ``minimum``).

    Attributes:
        model: spandrel's ``nn.Module`` (a submodule, so ``.to()`` / ``.eval()`` reach it).
        spec: :func:`spandrel_spec` of the descriptor.
        architecture: spandrel's name of the architecture (``"SAFMN"``).
    """

    def __init__(self, descriptor: Any) -> None:
        super().__init__()
        self.model = descriptor.model
        self.spec = spandrel_spec(descriptor)
        self.architecture: str = descriptor.architecture.name
        self.descriptor = descriptor

    def forward(self, x: Tensor) -> Tensor:
        # spandrel runs under inference_mode; the clone is an ordinary tensor our tiling may write into
        return self.descriptor(x).clone()

    def describe(self) -> str:
        """``"SAFMN ×2 (SR, 3→3 channels, input sides multiples of 8, tiling supported, fp16 no, bf16 yes)"``."""
        d, spec = self.descriptor, self.spec
        sizes = []
        if spec.size_multiple > 1:
            sizes.append(f"multiples of {spec.size_multiple}")
        if spec.min_size > spec.size_multiple:
            sizes.append(f"at least {spec.min_size}")
        if d.size_requirements.square:
            sizes.append("square (spandrel pads)")
        return (f"{self.architecture} ×{spec.scale} ({d.purpose}, {spec.in_channels}→{spec.out_channels} channels"
                + (f", input sides {' and '.join(sizes)}" if sizes else "")
                + f", tiling {_tiling(d)}, fp16 {'yes' if d.supports_half else 'no'}, "
                  f"bf16 {'yes' if d.supports_bfloat16 else 'no'})")


@dataclasses.dataclass(frozen=True)
class SpandrelChoice:
    """What ``restoration-infer`` runs when spandrel loaded the checkpoint.

    Attributes:
        net: The network (eval mode, on the CPU).
        detection: For the command's log line (``SAFMN (spandrel 0.4.2); not parity-proven here ...``); it is
            never built.
        tile: The ``--tile`` setting to use: the user's, or ``"0"`` for ``auto`` where spandrel discourages tiles.
    """

    net: SpandrelNetwork
    detection: Detection
    tile: str


def _tiling(descriptor: Any) -> str:
    """``"supported"``, ``"discouraged"`` or ``"internal"`` (spandrel's ``ModelTiling``)."""
    return str(descriptor.tiling.name).lower()


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """``exc``'s message on one line (torch's ``load_state_dict`` errors list one mismatch a line), shortened."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def load_spandrel(weights: str, param_key: str | None, not_ours: UnrecognisedCheckpointError, tile: str = "auto",
                  precision: str = "fp32") -> SpandrelChoice:
    """The network spandrel recognises in ``weights``, which none of our families claimed.

    Args:
        weights: The checkpoint (read as our families read it: ``--param-key``, ``params_ema`` first, prefixes
            stripped).
        param_key: The user's ``--param-key``.
        not_ours: Our detection's error, re-raised (with :data:`ZOO_HINT` when spandrel is not installed) when
            spandrel does not recognise the checkpoint either.
        tile: The user's ``--tile`` (``"auto"``, ``"0"`` or a side).
        precision: The user's ``--precision`` (``fp32``, ``fp16``, ``bf16``).

    Raises:
        UnrecognisedCheckpointError: spandrel is not installed (the message ends with the hint to install it) or
            does not recognise the keys either.
        DetectionError: spandrel took the keys for one of its architectures but could not load them.
        InferError: spandrel's model is not an image-to-image model (inpainting needs a mask).
        InferArgumentError: ``precision`` is one spandrel says the architecture does not support.
    """
    try:
        import spandrel  # optional dependency
    except ImportError:
        raise UnrecognisedCheckpointError(f"{not_ours}; {ZOO_HINT} restores the ~50 architectures spandrel "
                                          "recognises") from None
    sd = read_state_dict(weights, param_key)
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(sd)
    except spandrel.UnsupportedModelError:
        raise UnrecognisedCheckpointError(f"{not_ours}; spandrel {spandrel.__version__} does not recognise it "
                                          "either") from None
    except (KeyError, ValueError, RuntimeError, TypeError, AssertionError, IndexError) as exc:
        # an architecture's detector matched, its loader then failed (a truncated or edited file)
        raise DetectionError(f"{weights}: none of our architectures claims it and spandrel "
                             f"{spandrel.__version__} cannot load it: {type(exc).__name__}: {_one_line(exc)}") from exc
    name = descriptor.architecture.name
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise InferError(f"{weights}: spandrel recognises a {name} ({descriptor.purpose}), which needs more than "
                         "an image (a mask): restoration-infer restores images only")
    if precision in _PRECISION_SUPPORT and not getattr(descriptor, _PRECISION_SUPPORT[precision]):
        usable = ["fp32"] + [p for p, attr in _PRECISION_SUPPORT.items() if getattr(descriptor, attr)]
        raise InferArgumentError(f"--precision {precision}: spandrel says {name} does not support it; use "
                                 + " or ".join(usable))
    net = SpandrelNetwork(descriptor).eval()
    logger = get_logger()
    logger.info(f"spandrel: {net.describe()}, loaded by spandrel {spandrel.__version__} because none of our "
                "families claims the keys; not parity-proven here (our families are)")
    how = _tiling(descriptor)
    if how != "supported":
        if tile == "auto":
            logger.info(f"spandrel: tiling is {how} for {name}: whole images (--tile N forces tiles)")
            tile = "0"
        elif tile != "0":
            logger.warning(f"spandrel: tiling is {how} for {name}; tiles of {tile} as --tile says")
    detection = Detection(name, {}, source=f"spandrel {spandrel.__version__}", notice="not parity-proven here")
    return SpandrelChoice(net, detection, tile)
