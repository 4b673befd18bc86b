"""Registered datasets. Each entry is registered lazily: its module is imported on first use."""

from __future__ import annotations

from restoration.registry import DATASET_REGISTRY

__all__ = ["register_datasets"]

# name -> "module:attribute". Add one line per component.
_DATASETS: dict[str, str] = {
}


def register_datasets() -> None:
    """Fill :data:`DATASET_REGISTRY` (idempotent)."""
    DATASET_REGISTRY.register_table(_DATASETS)
