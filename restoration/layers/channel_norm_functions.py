"""Hand-written backwards for the channel norms of :mod:`restoration.layers.layer_norm2d` (NAFNet, DAT, DSwinIR)
and :mod:`restoration.layers.bias_free_layernorm` (Restormer, TBSN).

Both norms work per pixel over the C channels of a (B, C, H, W) map, with ``mu = mean_c(x)``,
``var = mean_c((x - mu)^2)`` (biased; written out as BasicSR/NAFNet do, or ``Tensor.var`` as Restormer does:
``torch_var``) and ``r = 1 / sqrt(var + eps)``. With ``g = dL/dy * weight``:

* with a bias (centred): ``y = (x - mu) r weight + bias``, ``xhat = (x - mu) r``;
  ``dL/dx = r (g - mean_c(g) - xhat mean_c(g xhat))`` (NAFNet's own ``LayerNormFunction`` backward);
* bias-free (scaled, not centred): ``y = x r weight``;
  ``dL/dx = r g - r^3 (x - mu) mean_c(g x)`` (the centred variance still depends on every channel).

``dL/dweight`` sums ``dL/dy`` times the normalised map over (B, H, W); ``dL/dbias`` sums ``dL/dy``. Autograd
through the modules' plain forwards records six to nine elementwise ops per norm and replays as many in the
backward; these save one map and compute the gradient in four or five passes. The forwards are the modules'
own arithmetic (the same ops in the same order: bit-identical outputs, and the same dtypes under autocast);
the backwards are equal to autograd's up to float rounding (``tests/test_channel_norm_functions.py``). Not twice differentiable.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["CHANNEL_NORM_BACKENDS", "CenteredChannelNorm", "ScaledChannelNorm", "get_channel_norm_backend",
           "set_channel_norm_backend", "use_function"]

#: ``'reference'``: the modules' plain forward, differentiated by autograd; ``'function'``: these Functions;
#: ``'auto'`` (the default): the Functions whenever autograd will need a backward, else the plain forward
#: (the same ops, without saving anything).
CHANNEL_NORM_BACKENDS = ("auto", "reference", "function")
_default = ["auto"]


def get_channel_norm_backend() -> str:
    """The process-wide choice (initially ``'auto'``)."""
    return _default[0]


def set_channel_norm_backend(name: str) -> None:
    """Change the process-wide choice: one of :data:`CHANNEL_NORM_BACKENDS`."""
    if name not in CHANNEL_NORM_BACKENDS:
        raise ValueError(f"unknown channel norm backend {name!r}; one of {', '.join(CHANNEL_NORM_BACKENDS)}")
    _default[0] = name


def use_function(*tensors: torch.Tensor) -> bool:
    """Whether a norm of these tensors (input and parameters) runs through its Function now."""
    name = _default[0]
    if name == "auto":
        return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return name == "function"


def _per_channel(t: torch.Tensor) -> torch.Tensor:
    return t.view(1, -1, 1, 1)


def _std(x: torch.Tensor, mu: torch.Tensor, eps: float, torch_var: bool) -> torch.Tensor:
    """``sqrt(var_c(x) + eps)``, (B, 1, H, W), computed as the module's forward computes it."""
    var = x.var(dim=1, keepdim=True, unbiased=False) if torch_var else (x - mu).pow(2).mean(1, keepdim=True)
    return torch.sqrt(var + eps)


class CenteredChannelNorm(torch.autograd.Function):
    """``(x - mu) / sqrt(var + eps) * weight + bias`` over dim 1; ``x`` (B, C, H, W), weight/bias (C,)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                torch_var: bool) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        std = _std(x, mu, eps, torch_var)
        xhat = (x - mu) / std
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
        return grad_x, grad_w, grad_b, None, None


class ScaledChannelNorm(torch.autograd.Function):
    """``x / sqrt(var + eps) * weight`` over dim 1 (not centred; ``var`` is the centred variance)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, eps: float, torch_var: bool) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        std = _std(x, mu, eps, torch_var)
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
        return grad_x, grad_w, None, None
