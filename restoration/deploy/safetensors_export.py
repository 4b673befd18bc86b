"""Write a network's weights as ``.safetensors`` (the official key layout; they load back with
:func:`restoration.utils.weights.load_weights`)."""

from __future__ import annotations

import os

from safetensors.torch import save_file
from torch import nn

__all__ = ["export_safetensors"]


def export_safetensors(net: nn.Module, path: str, metadata: dict[str, str] | None = None) -> str:
    """Write ``net``'s state dict (the official key layout; loads back with ``load_weights``) as ``.safetensors``.

    The metadata records the network options (``network_g``, JSON) and where the weights came from.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # own contiguous copies: safetensors refuses tensors that share storage (tied or viewed buffers)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    save_file(state, path, metadata={"format": "pt", **(metadata or {})})
    return path
