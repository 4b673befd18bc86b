"""The network with its contract inside, as one module: what an exported (ONNX) graph holds.

:func:`restoration.inference.restore` pads, scales and crops around the network in Python; a traced graph
that takes any size needs the same steps as operations of the graph. :class:`ContractModule` is that:
reflect padding (bottom/right) to the spec's ``size_multiple``, the network's value range, the crop back.
It is the graph of :meth:`restoration.inference.predictor.Predictor.export_module`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from restoration.archs.spec import ArchSpec

__all__ = ["ContractModule"]


class ContractModule(nn.Module):
    """The network with its contract (padding, value range, crop) inside, for a graph that takes any size.

    Args:
        net: The network (eval mode).
        spec: Its :class:`~restoration.archs.spec.ArchSpec`.

    Shapes:
        ``(B, C, H, W)`` in [0, 1] -> ``(B, C', H * scale, W * scale)`` in [0, 1]; reflect padding needs
        ``H, W`` larger than the pad (at least ``size_multiple``).
    """

    def __init__(self, net: nn.Module, spec: ArchSpec) -> None:
        super().__init__()
        self.net = net
        self.scale = spec.scale
        self.size_multiple = spec.size_multiple
        self.value_range = float(spec.value_range)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2], x.shape[-1]
        m = self.size_multiple
        if m > 1:
            # ceil(h / m) * m - h (not (-h) % m): the padded side is then visibly m * k to torch.export, which
            # proves every "multiple of the window" check in the network instead of guarding on it
            pad_h = (h + m - 1) // m * m - h
            pad_w = (w + m - 1) // m * m - w
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")  # what restore() does (pad_to_multiple)
        if self.value_range != 1.0:
            return (self.net(x * self.value_range) / self.value_range)[..., : h * self.scale, : w * self.scale]
        return self.net(x)[..., : h * self.scale, : w * self.scale]
