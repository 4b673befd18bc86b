"""Hand-written backwards for the channel norms of :mod:`restoration.layers.layer_norm2d` (NAFNet, DAT, DSwinIR)
and :mod:`restoration.layers.bias_free_layernorm` (Restormer, TBSN, DSwinIR).

Both norms work per pixel over the C channels of a (B, C, H, W) map, with ``mu = mean_c(x)``,
``var = mean_c((x - mu)^2)`` (biased) and ``r = 1 / sqrt(var + eps)``. With ``g = dL/dy * weight``:

* with a bias (centred): ``y = (x - mu) r weight + bias``, ``xhat = (x - mu) r``;
  ``dL/dx = r (g - mean_c(g) - xhat mean_c(g xhat))`` (NAFNet's own ``LayerNormFunction`` backward);
* bias-free (scaled, not centred): ``y = x r weight``;
  ``dL/dx = r g - r^3 (x - mu) mean_c(g x)`` (the centred variance still depends on every channel).

``dL/dweight`` sums ``dL/dy`` times the normalised map over (B, H, W); ``dL/dbias`` sums ``dL/dy``. Autograd
through the modules' plain forwards records six to nine elementwise ops per norm and replays as many in the
backward; these save one map and compute the gradient in four or five passes.

Forwards: the variance in two passes, ``(x - mu)`` computed once and reused. For :class:`LayerNorm2d` these are
its own ops (bit-identical outputs). Restormer's norms call ``Tensor.var`` (the official ops, kept for inference),
a one-pass Welford reduction that is 4-8x slower across the channels of an NCHW map on the CPU (1.2 ms against
0.2 ms at 48 x 64², 34 ms against 4 ms at 8 x 48 x 128²); in training the two passes give the same variance within
float rounding (4e-7 at those shapes; the outputs agree to float32 rounding, and under CUDA's autocast rules the
two-pass variance is computed in float32 where ``Tensor.var`` stays in bfloat16). The backwards equal autograd's
up to float rounding (``tests/test_channel_norm_functions.py``). Not twice differentiable.
"""

from __future__ import annotations

from typing import Any

import torch

from restoration.layers.config import OpSwitch

__all__ = ["CHANNEL_NORM_BACKENDS", "CHANNEL_NORM_SWITCH", "CenteredChannelNorm", "ScaledChannelNorm",
           "get_channel_norm_backend", "set_channel_norm_backend", "use_function"]

#: ``'reference'``: the modules' plain forward, differentiated by autograd; ``'function'``: these Functions;
#: ``'auto'`` (the default): the Functions whenever autograd will need a backward, else the plain forward
#: (the official ops, saving nothing: inference reproduces the official outputs bit for bit).
CHANNEL_NORM_BACKENDS = ("auto", "reference", "function")
#: The process-wide choice (``CHANNEL_NORM_SWITCH.using(name)`` for a block).
CHANNEL_NORM_SWITCH = OpSwitch("channel norm", CHANNEL_NORM_BACKENDS)


def get_channel_norm_backend() -> str:
    """The process-wide choice (initially ``'auto'``)."""
    return CHANNEL_NORM_SWITCH.value


def set_channel_norm_backend(name: str) -> None:
    """Change the process-wide choice: one of :data:`CHANNEL_NORM_BACKENDS`."""
    CHANNEL_NORM_SWITCH.set(name)


def use_function(*tensors: torch.Tensor) -> bool:
    """Whether a norm of these tensors (input and parameters) runs through its Function now."""
    name = CHANNEL_NORM_SWITCH.value
    if name == "auto":
        return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return name == "function"


def _per_channel(t: torch.Tensor) -> torch.Tensor:
    return t.view(1, -1, 1, 1)


def _centred(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mu, x - mu, sqrt(var + eps))`` over dim 1, the variance in two passes (LayerNorm2d's own ops)."""
    mu = x.mean(1, keepdim=True)
    xc = x - mu
    return mu, xc, torch.sqrt(xc.pow(2).mean(1, keepdim=True) + eps)


class CenteredChannelNorm(torch.autograd.Function):
    """``(x - mu) / sqrt(var + eps) * weight + bias`` over dim 1; ``x`` (B, C, H, W), weight/bias (C,)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
        _, xc, std = _centred(x, eps)
        xhat = xc / std
        ctx.save_for_backward(xhat, std, weight)
        return xhat * _per_channel(weight) + _per_channel(bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        xhat, std, weight = (t.to(grad.dtype) for t in ctx.saved_tensors)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            g = grad * _per_channel(weight)
            mean_g = g.mean(1, keepdim=True)
            mean_gx = (g * xhat).mean(1, keepdim=True)
            grad_x = (g - mean_g - xhat * mean_gx) * std.reciprocal()  # one division per pixel, not per value
        if ctx.needs_input_grad[1]:
            grad_w = (grad * xhat).sum((0, 2, 3))
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


class ScaledChannelNorm(torch.autograd.Function):
    """``x / sqrt(var + eps) * weight`` over dim 1 (not centred; ``var`` is the centred variance)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        mu, _, std = _centred(x, eps)
        ctx.save_for_backward(x, mu, std, weight)
        return x / std * _per_channel(weight)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, mu, std, weight = (t.to(grad.dtype) for t in ctx.saved_tensors)
        grad_x = grad_w = None
        r = std.reciprocal()
        if ctx.needs_input_grad[0]:
            g = grad * _per_channel(weight)
            mean_gx = (g * x).mean(1, keepdim=True)
            grad_x = g * r - (x - mu) * (r.pow(3) * mean_gx)
        if ctx.needs_input_grad[1]:
            grad_w = (grad * x * r).sum((0, 2, 3))
        return grad_x, grad_w, None
