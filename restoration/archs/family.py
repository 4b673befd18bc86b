"""An architecture family as one unit: its networks, how to recognise its checkpoints, what was released.

Each family lives in one folder, ``restoration/archs/<family>/``: the network module(s), a ``detect.py``
that reads constructor arguments from a state dict, a ``zoo.yaml`` of released files (optional), and the
package's ``FAMILY``, a :class:`Family` that ties them together. The network classes themselves carry
the rest of the contract: their option checks (``check_options``), size rules and value range
(``spec_from_options`` → :class:`~restoration.archs.spec.ArchSpec`) and test-time protocol (``predictor``).

A family is registered with one line in :data:`restoration.archs.FAMILY_MODULES` (or, from user code,
:func:`register_family`). Everything else that used to list families — the architecture registry, checkpoint
detection, the model zoo, the architecture sweep test — reads the descriptors. Descriptors name their
networks and detectors as ``"module:attribute"`` strings, so reading them imports no network and no torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any, Callable, Mapping

__all__ = ["Config", "Family", "TinyConfig", "load_attribute"]


@dataclasses.dataclass(frozen=True)
class Config:
    """A published configuration: its registry name, a human name and its complete distinguishing kwargs.

    Detection reads what the weights show and takes the rest (``img_range``, TBSN's ``scale``: arguments that
    leave no trace in a state dict) from the configuration it matches. ``free`` names the kwargs allowed to
    differ from it (``img_size`` only decides the shape of a stored attention mask).
    """

    arch: str
    name: str
    kwargs: Mapping[str, Any]
    free: tuple[str, ...] = ("img_size",)


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    """The smallest useful network of an architecture, for tests that sweep every registered one.

    Attributes:
        kwargs: Constructor arguments (a few thousand parameters at most).
        chw: One input image's ``(C, H, W)``, aligned to the spec's ``size_multiple`` / ``min_size``.
    """

    kwargs: Mapping[str, Any]
    chw: tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Family:
    """One architecture family.

    Attributes:
        name: The family's name (``"SwinIR"``), as messages and the zoo show it.
        archs: Registry name -> ``"module:Class"`` of each network of the family.
        detect: ``"module:function"`` of the detector, ``state_dict -> (registry name, kwargs)``, which raises
            :class:`~restoration.archs.layout.LayoutMismatch` for another family's keys; None: the family's
            checkpoints are not detected (baselines, discriminators).
        configs: The published configurations detection recognises (at least one for a detectable family).
        zoo: The released files, a YAML file in the family's folder (``"zoo.yaml"``) read by
            :mod:`restoration.zoo`; None: no released files.
        tiny: Registry name -> :class:`TinyConfig`, for every network in ``archs``.
        test_time_forms: Registry name of a training form -> the form the released files are tested with
            (NAFNet's ``NAFNetLocal``: same weights, test-time local statistics).
        adapt: ``"module:function"`` converting detected kwargs to another registry name of the family when the user
            names it with ``--arch`` (DSwinIR's two spellings of one layout); None: no conversion.
        package: The family's package (``"restoration.archs.swinir"``), where ``zoo`` is found; set on loading.
    """

    name: str
    archs: Mapping[str, str]
    detect: str | None = None
    configs: tuple[Config, ...] = ()
    zoo: str | None = None
    tiny: Mapping[str, TinyConfig] = dataclasses.field(default_factory=dict)
    test_time_forms: Mapping[str, str] = dataclasses.field(default_factory=dict)
    adapt: str | None = None
    package: str = ""

    def __post_init__(self) -> None:
        if self.detect is not None and not self.configs:
            raise ValueError(f"family {self.name}: a detectable family lists its published configurations")
        for config in self.configs:
            if config.arch not in self.archs:
                raise ValueError(f"family {self.name}: configuration {config.name!r} names {config.arch!r}, "
                                 f"not one of its networks {sorted(self.archs)}")
        missing = sorted(set(self.archs) - set(self.tiny))
        if missing:
            raise ValueError(f"family {self.name}: no tiny configuration for {missing}")

    def detector(self) -> Callable[[Mapping[str, Any]], tuple[str, dict[str, Any]]] | None:
        """The detector function (imported on first use), or None."""
        return load_attribute(self.detect) if self.detect else None

    def zoo_path(self) -> str | None:
        """The manifest file: ``zoo`` in the family's package folder (an absolute ``zoo`` as it is)."""
        if self.zoo is None or os.path.isabs(self.zoo):
            return self.zoo
        return os.path.join(os.path.dirname(importlib.import_module(self.package).__file__ or ""), self.zoo)

    def adapter(self) -> Callable[[Mapping[str, Any], str], tuple[str, dict[str, Any]]] | None:
        """The ``--arch`` converter (imported on first use), or None."""
        return load_attribute(self.adapt) if self.adapt else None


def load_attribute(path: str) -> Any:
    """``"package.module:name"`` -> that attribute (the module imported)."""
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"{path!r} is not 'module:attribute'")
    return getattr(importlib.import_module(module), name)
