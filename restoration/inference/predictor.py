"""How a network runs at test time: a *predictor*, declared by its architecture.

``predictor(lq)`` maps ``(B, C, h, w)`` in [0, 1] to ``(B, C', h*s, w*s)`` in [0, 1] and owns everything
between: padding to the size multiple, the network's value range, tiling, the ×8 self-ensemble, and any
protocol of the family's own (TBSN: pixel-shuffle down-sampling and random-replacing refinement). validation,
``test.py`` (its baselines included), ``restoration-infer`` and ``restoration.export`` all run a network
through its predictor, so none of them branches on an architecture's name.

* :class:`Predictor` is the plain protocol, :func:`restoration.inference.restore` with the network's spec, and
  the base class of every other.
* An architecture class names its protocol in a class attribute, ``predictor = MyPredictor``; one that names
  none gets :class:`Predictor`. :func:`predictor_class` reads it (through DDP and ``torch.compile`` wrappers)
  and :func:`predictor_for` builds it.
* A protocol's own test-time options are declared once, as :class:`~restoration.schema.Key` mappings in
  :attr:`Predictor.options`; a trainer that reads them from its option file puts the same mapping in its
  ``options`` (its ``train:`` keys). The generic settings (tiles, ensemble) are :class:`InferenceSettings`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Iterator, Mapping

import torch
from torch import Tensor, nn

from restoration.archs.spec import ArchSpec, arch_spec
from restoration.inference.contract_module import ContractModule
from restoration.inference.pipeline import restore, restore_rows
from restoration.schema import Key, check_declared

__all__ = ["InferenceSettings", "Predictor", "predictor_class", "predictor_for"]


@dataclasses.dataclass(frozen=True)
class InferenceSettings:
    """The test-time settings every protocol reads (what ``val:`` and the command lines set).

    Attributes:
        tile: Tile side in input pixels, or None for whole images.
        overlap: Overlap of neighbouring tiles in input pixels (ignored without ``tile``).
        tile_batch_size: Tiles per network call.
        self_ensemble: Average over the 8 flips/transposes.
        pad_mode: How the input is padded to the size multiple
            (:func:`~restoration.inference.padding.pad_to_multiple`).
        blend: Tile blending profile (:func:`~restoration.inference.tiling.tiled_forward`).
        out_device: Where a tiled output is assembled (default: the input's device).
    """

    tile: int | None = None
    overlap: int = 32
    tile_batch_size: int = 1
    self_ensemble: bool = False
    pad_mode: str = "reflect"
    blend: str = "hann"
    out_device: torch.device | str | None = None

    @classmethod
    def from_val_options(cls, val_opt: Mapping[str, Any]) -> InferenceSettings:
        """The settings of an option file's ``val:`` section: ``tile: {tile_size, tile_overlap (32),
        tile_batch (1)}`` and ``self_ensemble``."""
        tile = val_opt.get("tile") or {}
        return cls(tile=int(tile["tile_size"]) if tile else None, overlap=int(tile.get("tile_overlap", 32)),
                   tile_batch_size=int(tile.get("tile_batch", 1)), self_ensemble=bool(val_opt.get("self_ensemble")))


class Predictor:
    """The plain test-time protocol, and the base class of every family's own.

    ``predictor(lq)`` is :func:`restoration.inference.restore` with the network's spec and the settings:
    padding to ``size_multiple`` / ``min_size`` and back, the value range, tiles when ``settings.tile`` is
    set, the ×8 ensemble when ``settings.self_ensemble``. It runs under ``torch.no_grad``; autocast is the
    caller's.

    A family with another protocol subclasses it and overrides :meth:`__call__`, declares its own options in
    :attr:`options` (checked beyond their types by :meth:`check_options`), and says what it cannot do in
    :meth:`tiling_problem` / :attr:`supports_ensemble`.

    Args:
        net: The network (eval mode); a plain callable needs ``spec``.
        spec: Its :class:`~restoration.archs.spec.ArchSpec` (default: ``arch_spec(net)``).
        settings: Tiles and ensemble (default: whole images, no ensemble).
        options: Values of :attr:`options`; a missing key takes its default.

    Raises:
        ValueError: An unknown option or a bad value, or settings the protocol does not support (tiles of a
            network that cannot be tiled, the ensemble where :attr:`supports_ensemble` is False).
    """

    #: The protocol's own test-time options (beyond :class:`InferenceSettings`), declared once.
    options: ClassVar[Mapping[str, Key]] = {}
    #: Whether the ×8 self-ensemble may run around this protocol.
    supports_ensemble: ClassVar[bool] = True

    def __init__(self, net: Callable[[Tensor], Tensor], spec: ArchSpec | None = None,
                 settings: InferenceSettings | None = None, options: Mapping[str, Any] | None = None) -> None:
        if spec is None:
            if not isinstance(net, nn.Module):
                raise ValueError(f"{type(self).__name__}: a network that is not an nn.Module needs its spec")
            spec = arch_spec(net)
        self.net = net
        self.spec = spec
        self.settings = settings if settings is not None else InferenceSettings()
        given = dict(options or {})
        problems = check_declared(given, self.options)
        # None stays None (e.g. TBSN's refine_seed: null draws from the global generator), as a trainer's
        # declared options keep it
        self.values: dict[str, Any] = {key: given.get(key, rule.default) for key, rule in self.options.items()}
        if not problems:
            problems = self.check_options(self.values)
        if self.settings.tile is not None and self.tiling_problem() is not None:
            problems.append(f"{self.tiling_problem()}; use tile=None")
        if self.settings.self_ensemble and not self.supports_ensemble:
            problems.append("this protocol does not support the x8 self-ensemble")
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))

    @classmethod
    def check_options(cls, values: Mapping[str, Any]) -> list[str]:
        """Problems with the values of :attr:`options` beyond their types (ranges, combinations)."""
        return []

    def tiling_problem(self) -> str | None:
        """Why this protocol cannot run tile by tile (None when it can): here, a spec with ``tileable=False``."""
        if not self.spec.tileable:
            return "this network cannot be tiled (its spec says tileable=False: a learned absolute position embedding)"
        return None

    @property
    def supports_tiling(self) -> bool:
        """Whether ``settings.tile`` may be set (:meth:`tiling_problem` says why not)."""
        return self.tiling_problem() is None

    def with_settings(self, **changes: Any) -> Predictor:
        """The same protocol, network and options with some settings changed (``tile=256, overlap=16``)."""
        return type(self)(self.net, self.spec, dataclasses.replace(self.settings, **changes), self.values)

    @torch.no_grad()
    def __call__(self, lq: Tensor) -> Tensor:
        """Restore ``lq`` ``(B, C, h, w)`` in [0, 1] → ``(B, C', h*s, w*s)`` in [0, 1] (not clamped; the
        dtype of the network's output, float32 when tiled)."""
        s = self.settings
        return restore(self.net, lq, spec=self.spec, tile=s.tile, overlap=s.overlap, tile_batch_size=s.tile_batch_size,
                       self_ensemble=s.self_ensemble, pad_mode=s.pad_mode, blend=s.blend, out_device=s.out_device)

    def rows(self, lq: Tensor) -> Iterator[tuple[int, Tensor]]:
        """The tiled output a band of finished rows at a time (:func:`restoration.inference.restore_rows`):
        the rows of ``self(lq)`` bit for bit (with ``tile_batch_size=1``), memory bounded by the tile. A
        subclass with its own :meth:`__call__` gets its whole output as one band unless it overrides this.

        Needs ``settings.tile`` and no ensemble. Yields ``(y, band)``, ``band`` ``(B, C', rows, W*s)``.
        """
        s = self.settings
        if s.tile is None or s.self_ensemble:
            raise ValueError(f"{type(self).__name__}.rows() needs settings.tile and no self-ensemble")
        if type(self).__call__ is not Predictor.__call__:  # a protocol of its own: correct, not streamed
            yield 0, self(lq)
            return
        yield from restore_rows(self.net, lq, s.tile, s.overlap, spec=self.spec, tile_batch_size=s.tile_batch_size,
                                pad_mode=s.pad_mode, blend=s.blend, out_device=s.out_device)

    def export_module(self) -> nn.Module:
        """A module for a traced graph that takes any size: one pass of the network with its contract
        (:class:`~restoration.inference.contract_module.ContractModule`: padding, value range, crop).

        It computes what the plain :class:`Predictor` computes without tiles or ensemble (reflect padding
        only). A family's protocol keeps it unless its steps belong in a deployed graph: TBSN's random
        refinement masks do not, so its graph is this one pass.
        """
        if not isinstance(self.net, nn.Module):
            raise ValueError(f"{type(self).__name__}.export_module() needs an nn.Module network")
        return ContractModule(self.net, self.spec)


def predictor_class(net: nn.Module) -> type[Predictor]:
    """The predictor ``net``'s architecture declares (its class attribute ``predictor``), looking through
    ``DistributedDataParallel`` (``.module``) and ``torch.compile`` (``._orig_mod``); :class:`Predictor` when
    it declares none.

    Raises:
        TypeError: The class attribute ``predictor`` is not a :class:`Predictor` subclass.
    """
    module = net
    while (declared := getattr(type(module), "predictor", None)) is None:
        inner = next((m for m in (getattr(module, "module", None), getattr(module, "_orig_mod", None))
                      if isinstance(m, nn.Module)), None)
        if inner is None:
            return Predictor
        module = inner
    if not (isinstance(declared, type) and issubclass(declared, Predictor)):
        raise TypeError(f"{type(module).__name__}.predictor must be a Predictor subclass, got {declared!r}")
    return declared


def predictor_for(net: nn.Module, settings: InferenceSettings | None = None,
                  options: Mapping[str, Any] | None = None, spec: ArchSpec | None = None) -> Predictor:
    """``net``'s own predictor (:func:`predictor_class`) with ``settings`` and ``options``; see :class:`Predictor`."""
    return predictor_class(net)(net, spec, settings, options)
