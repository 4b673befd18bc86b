"""Depthwise 2-D convolution (one ``k x k`` filter per channel) with one switch for its CPU backward.

``depthwise_conv2d`` computes ``F.conv2d(x, weight, bias, padding=..., dilation=..., groups=C)``. Its
backends compute the same function, forward and backward (``tests/test_depthwise_conv.py``):

* ``'reference'``: ``F.conv2d``, forward and backward.
* ``'cpu'``: the same forward; the backward of :mod:`restoration.layers.depthwise_conv_cpu` (the input
  gradient as a depthwise convolution with the flipped filter, the filter gradient as ``k^2`` per-channel
  sums of products), which oneDNN's depthwise backward takes several times longer for (docs/benchmarks.md).

``'auto'`` (the default) is ``'cpu'`` for a dilated filter (dilation > 1) on the CPU when autograd will need its
backward, else ``'reference'``: oneDNN's dilated depthwise backward is the slow one (2.4-3.5x at TBSN's shapes),
while at dilation 1 it is as fast or faster at most shapes (0.3-0.6x of its time at Restormer's 8²-32² levels,
1.2-1.9x slower only at 64² with one image; docs/benchmarks.md). :func:`set_depthwise_backend` changes the
process-wide default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from restoration.layers.config import OpSwitch
from restoration.layers.depthwise_conv_cpu import DepthwiseConvCPU

__all__ = ["DEPTHWISE_BACKENDS", "DEPTHWISE_SWITCH", "depthwise_conv2d", "get_depthwise_backend",
           "set_depthwise_backend"]

DEPTHWISE_BACKENDS = ("auto", "reference", "cpu")
#: The process-wide default (``DEPTHWISE_SWITCH.using(name)`` for a block).
DEPTHWISE_SWITCH = OpSwitch("depthwise convolution", DEPTHWISE_BACKENDS)


def get_depthwise_backend() -> str:
    """The process-wide default backend (initially ``'auto'``)."""
    return DEPTHWISE_SWITCH.value


def set_depthwise_backend(name: str) -> None:
    """Change the process-wide default: one of :data:`DEPTHWISE_BACKENDS`."""
    DEPTHWISE_SWITCH.set(name)


def depthwise_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: int = 0,
    dilation: int = 1,
    backend: str | None = None,
) -> torch.Tensor:
    """Depthwise convolution, stride 1.

    Args:
        x: ``(B, C, H, W)``.
        weight: ``(C, 1, k, k)``, one filter per channel.
        bias: ``(C,)`` or None.
        padding: Zero padding on every side.
        dilation: Spacing of the filter taps.
        backend: ``'auto'``, ``'reference'`` or ``'cpu'``; None: :func:`get_depthwise_backend`.

    Returns:
        ``(B, C, H + 2 padding - dilation (k - 1), ...)``.
    """
    name = DEPTHWISE_SWITCH.value if backend is None else backend
    DEPTHWISE_SWITCH.check(name)
    if name == "auto":
        needs_grad = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, weight, bias))
        name = "cpu" if x.device.type == "cpu" and needs_grad and dilation > 1 else "reference"
    if name == "cpu":
        return DepthwiseConvCPU.apply(x, weight, bias, padding, dilation)
    return F.conv2d(x, weight, bias, padding=padding, dilation=dilation, groups=x.shape[1])
