"""The one rule for "is this option value of the declared type?", used by every option check."""

from __future__ import annotations

from typing import Any

__all__ = ["type_ok", "type_name"]

_NoneType = type(None)


def _as_tuple(types: Any) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def type_ok(value: Any, types: type | tuple[type, ...]) -> bool:
    """Whether ``value`` is one of ``types``. YAML-aware: ``true`` is never a number (bool is an int
    subclass in Python, but ``gt_size: true`` is a mistake), and an int is accepted where a float is."""
    types = _as_tuple(types)
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def type_name(types: type | tuple[type, ...]) -> str:
    """``int or float``; ``null`` for ``NoneType``."""
    return " or ".join("null" if t is _NoneType else t.__name__ for t in _as_tuple(types))
