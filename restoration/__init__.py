"""restoration: train and benchmark image-restoration networks from YAML option files.

Public API::

    from restoration import build_network, load_weights
    net = build_network({"type": "SwinIR", "upscale": 2, ...})
    load_weights(net, "SwinIR_x2.pth")            # picks params_ema / params, strips prefixes

Importing the package only fills the registries (lazily: no architecture module is imported yet).
"""

from __future__ import annotations

from restoration.archs import register_archs
from restoration.archs.build import build_network
from restoration.data import register_datasets
from restoration.losses import register_losses
from restoration.metrics import register_metrics
from restoration.models import register_models
from restoration.utils.weights import load_weights

__all__ = ["build_network", "load_weights", "register_all", "__version__"]
__version__ = "0.1.0"


def register_all() -> None:
    """Fill every registry (idempotent)."""
    register_archs()
    register_datasets()
    register_losses()
    register_metrics()
    register_models()


register_all()
