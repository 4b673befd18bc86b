"""Network architectures, one folder per family (:mod:`restoration.archs.family`).

A family is added with one line in :data:`FAMILY_MODULES` (its package, whose ``FAMILY`` describes it) or, from
user code, with :func:`register_family`. Descriptors are read lazily and import no network: a network's module
is imported when the registry first builds it.
"""

from __future__ import annotations

import dataclasses
import importlib

from restoration.archs.family import Family
from restoration.registry import ARCH_REGISTRY

__all__ = ["FAMILY_MODULES", "families", "family_of", "register_archs", "register_family"]

#: The package of each family, in the order checkpoint detection tries them (HAT before SwinIR: HAT's keys
#: contain SwinIR's). One line per family.
FAMILY_MODULES: tuple[str, ...] = (
    "restoration.archs.hat",
    "restoration.archs.swinir",
    "restoration.archs.dswinir",
    "restoration.archs.tbsn",
    "restoration.archs.rrdbnet",
    "restoration.archs.srvgg",
    "restoration.archs.span",
    "restoration.archs.nafnet",
    "restoration.archs.edsr",
    "restoration.archs.rcan",
    "restoration.archs.restormer",
    "restoration.archs.dat",
    "restoration.archs.baselines",
    "restoration.archs.discriminators",
)

_FAMILIES: dict[str, Family] = {}  # name -> descriptor, in detection order
_LOADED = False


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    loaded = {}
    for module in FAMILY_MODULES:
        family: Family = importlib.import_module(module).FAMILY
        loaded[family.name] = _with_package(family, module)
    _FAMILIES.update({**loaded, **_FAMILIES})  # families registered by user code keep their place after ours
    _LOADED = True


def _with_package(family: Family, package: str) -> Family:
    return family if family.package else dataclasses.replace(family, package=package)


def families() -> list[Family]:
    """Every registered family, in detection order."""
    _load()
    return list(_FAMILIES.values())


def family_of(arch: str) -> Family | None:
    """The family whose networks include registry name ``arch`` (None: none does)."""
    return next((f for f in families() if arch in f.archs), None)


def register_family(family: Family, package: str = "") -> None:
    """Register a family defined outside the package (detected after ours); its networks join the registry.

    Raises:
        ValueError: A family of that name, or a network of one of its names, is registered already.
    """
    _load()
    if family.name in _FAMILIES:
        raise ValueError(f"a family named {family.name!r} is registered already")
    taken = sorted(a for a in family.archs if family_of(a) is not None)
    if taken:
        raise ValueError(f"family {family.name}: networks {taken} belong to another family")
    _FAMILIES[family.name] = _with_package(family, package)
    ARCH_REGISTRY.register_table(dict(family.archs))


def register_archs() -> None:
    """Fill :data:`ARCH_REGISTRY` with every family's networks (idempotent)."""
    for family in families():
        ARCH_REGISTRY.register_table(dict(family.archs))
