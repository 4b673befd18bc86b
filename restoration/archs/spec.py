"""The architecture contract: what the framework must know about a network to feed it correctly.

Padding, tiling, validation, test.py and inference used to probe networks for scattered attributes
(``size_multiple``, ``min_size``, a trainer option for TBSN's [0, 255] range). Here every architecture
states them once, as data (cf. spandrel's ``SizeRequirements`` / ``ModelBase``):

* each architecture class has a classmethod ``spec_from_options(opt) -> ArchSpec`` computed from its
  *complete* constructor arguments (the user's values bound to the signature, defaults applied), so
  option checking can read the contract without building the network;
* each built network stores the result as ``net.spec``; :func:`arch_spec` reads it (through DDP and
  ``torch.compile`` wrappers).

The framework's tensors are in [0, 1]; a network with ``value_range = 255`` is fed ``x * 255`` and its
output divided by 255 (:func:`restoration.inference.restore` with ``spec=`` does both).

How a network runs at test time beyond this contract is its class's ``predictor`` attribute, a
:class:`restoration.inference.predictor.Predictor` subclass (TBSN: pixel-shuffle down-sampling and refinement);
without one, the plain :func:`~restoration.inference.restore`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from torch import nn

__all__ = ["ArchSpec", "arch_spec", "checked_spec"]


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """What a network needs from its input and gives back.

    Attributes:
        scale: Output size / input size (1 for denoising, deblurring, JPEG).
        in_channels: Channels of the input ``(B, in_channels, H, W)``; None = any (e.g. ``Identity``).
        out_channels: Channels of the output ``(B, out_channels, H * scale, W * scale)``; None = as many as
            the input has.
        size_multiple: ``H`` and ``W`` must be multiples of this (1 = any size; networks that pad
            internally, like SwinIR, say 1).
        min_size: ``H`` and ``W`` must be at least this (a multiple of ``size_multiple``).
        value_range: The network works on ``[0, value_range]``: 1.0 for almost all; 255.0 for TBSN.
            Internal scalings (SwinIR's ``img_range``) are not counted: they are undone inside.
        tileable: Tiled inference gives the whole-image result up to border effects (False for a
            learned absolute position embedding, which only fits one input size).
    """

    scale: int = 1
    in_channels: int | None = 3
    out_channels: int | None = 3
    size_multiple: int = 1
    min_size: int = 1
    value_range: float = 1.0
    tileable: bool = True

    def __post_init__(self) -> None:
        for name in ("scale", "in_channels", "out_channels", "size_multiple", "min_size"):
            value = getattr(self, name)
            if value is None and name in ("in_channels", "out_channels"):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ArchSpec.{name} must be a positive integer, got {value!r}")
        if self.min_size % self.size_multiple:
            raise ValueError(f"ArchSpec.min_size {self.min_size} must be a multiple of size_multiple {self.size_multiple}")
        if not self.value_range > 0:
            raise ValueError(f"ArchSpec.value_range must be positive, got {self.value_range!r}")

    def padded_size(self, size: int) -> int:
        """The side a ``size``-pixel side is padded to: the next multiple of ``size_multiple``, >= ``min_size``."""
        return max(self.min_size, math.ceil(size / self.size_multiple) * self.size_multiple)

    def size_problem(self, size: int, what: str) -> str | None:
        """Why a tile or crop of ``size`` input pixels cannot be fed as is (None when it can).

        Args:
            size: Side length in input (LQ) pixels.
            what: How the message names it, e.g. ``"'val.tile.tile_size' 32"``.
        """
        if size < self.min_size:
            return f"{what} is smaller than the network's minimum input side {self.min_size}"
        if size % self.size_multiple:
            return f"{what} is not a multiple of the network's size_multiple {self.size_multiple}"
        return None


def arch_spec(net: nn.Module) -> ArchSpec:
    """The :class:`ArchSpec` of a built network, looking through DDP (``.module``) and ``torch.compile``.

    A network from outside this package that declares no ``spec`` gets the neutral contract (any size,
    [0, 1]) with its ``size_multiple`` / ``upscale`` attributes when it has them, so old-style research
    networks keep working; every registered architecture declares its own.
    """
    while not isinstance(getattr(net, "spec", None), ArchSpec):
        inner = next((m for m in (getattr(net, "module", None), getattr(net, "_orig_mod", None))
                      if isinstance(m, nn.Module)), None)  # DistributedDataParallel, OptimizedModule
        if inner is None:
            break
        net = inner
    spec = getattr(net, "spec", None)
    if isinstance(spec, ArchSpec):
        return spec
    multiple = int(getattr(net, "size_multiple", 1))
    return ArchSpec(scale=int(getattr(net, "upscale", 1)), size_multiple=multiple, min_size=multiple)


def checked_spec(arch: Any, opt: Mapping[str, Any], problems: list[str] | None = None) -> ArchSpec:
    """What every architecture's constructor does with its options: raise one ``ValueError`` naming the
    architecture and every problem (``arch.check_options(opt)``, or ``problems`` when the constructor
    filtered them), else return ``arch.spec_from_options(opt)``."""
    problems = arch.check_options(opt) if problems is None else problems
    if problems:
        raise ValueError(f"invalid {arch.__name__} options: " + "; ".join(problems))
    return arch.spec_from_options(opt)
