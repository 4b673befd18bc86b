"""Registered metrics. Each entry is registered lazily: its module is imported on first use."""

from __future__ import annotations

from restoration.registry import METRIC_REGISTRY

__all__ = ["register_metrics"]

# name -> "module:attribute". Add one line per component.
_METRICS: dict[str, str] = {
}


def register_metrics() -> None:
    """Fill :data:`METRIC_REGISTRY` (idempotent)."""
    METRIC_REGISTRY.register_table(_METRICS)
