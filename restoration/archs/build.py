"""Build a network from a ``network_g``-style option dict."""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from restoration.archs import register_archs
from restoration.registry import ARCH_REGISTRY, build_from_registry

__all__ = ["build_network"]


def build_network(opt: Mapping[str, Any]) -> nn.Module:
    """Instantiate the architecture named by ``opt['type']`` with the remaining keys as kwargs.

    Args:
        opt: e.g. ``{"type": "SwinIR", "upscale": 2, "embed_dim": 60, ...}``; not modified.

    Returns:
        The network, on the CPU, in float32.
    """
    register_archs()
    return build_from_registry(ARCH_REGISTRY, dict(opt))
