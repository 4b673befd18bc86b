"""The channel norms' hand-written backwards equal autograd's; their forwards equal the modules' own.

Covers :class:`LayerNorm2d` (NAFNet, DAT, DSwinIR offsets; eps 1e-6, variance written out: the Function's forward
is the module's, bit for bit) and Restormer's with-bias / bias-free norms (eps 1e-5; the module calls
``Tensor.var``, the Function computes the variance in two passes: equal to float rounding), through the
process-wide switch of :mod:`restoration.layers.channel_norm_functions`.
"""

from __future__ import annotations

from typing import Callable, Iterator

import pytest
import torch
from torch import nn

from restoration.layers import channel_norm_functions as cnf
from restoration.layers.bias_free_layernorm import BiasFreeLayerNorm2d, WithBiasLayerNorm2d
from restoration.layers.layer_norm2d import LayerNorm2d

NORMS: dict[str, Callable[[int], nn.Module]] = {
    "LayerNorm2d": lambda c: LayerNorm2d(c),
    "LayerNorm2d eps 1e-5": lambda c: LayerNorm2d(c, eps=1e-5),
    "WithBias": WithBiasLayerNorm2d,
    "BiasFree": BiasFreeLayerNorm2d,
}


#: Whose module forward the Function reproduces op for op (the others: a two-pass variance for Tensor.var)
SAME_OPS = {"LayerNorm2d", "LayerNorm2d eps 1e-5"}


def _assert_forward_equal(kind: str, got: torch.Tensor, expected: torch.Tensor, tol: float | None = None) -> None:
    """Bit for bit where the Function runs the module's ops, else within ``tol`` of the output's scale (default:
    float rounding of the dtype; measured 2.4e-7 in float32, 1e-15 in float64)."""
    if kind in SAME_OPS:
        assert torch.equal(got, expected)
    else:
        tol = tol if tol is not None else 4e-15 if got.dtype == torch.float64 else 3e-6
        torch.testing.assert_close(got.float(), expected.float(), rtol=0, atol=tol * expected.abs().max().item())


@pytest.fixture
def backend() -> Iterator[Callable[[str], None]]:
    yield cnf.set_channel_norm_backend
    cnf.set_channel_norm_backend("auto")


def _norm(kind: str, channels: int, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    norm = NORMS[kind](channels).to(dtype)
    with torch.no_grad():  # away from ones / zeros, so a wrong weight or bias term shows
        for p in norm.parameters():
            p.copy_(torch.randn_like(p))
    return norm


def _grads(norm: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    out = norm(x)
    params = list(norm.parameters())
    return (out.detach(), *torch.autograd.grad((out * upstream).sum(), [x, *params]))


@pytest.mark.parametrize("kind", list(NORMS))
@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 48, 8, 8)])
def test_function_equals_autograd_in_float64(kind: str, shape: tuple, backend: Callable) -> None:
    norm = _norm(kind, shape[1], torch.float64)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, dtype=torch.float64, generator=gen) * 3 + 1  # an offset: centring matters
    upstream = torch.randn(*shape, dtype=torch.float64, generator=gen)
    backend("reference")
    expected = _grads(norm, x, upstream)
    backend("auto")  # training: the Function
    got = _grads(norm, x, upstream)
    assert type(norm(x.requires_grad_()).grad_fn).__name__.endswith("ChannelNormBackward")
    _assert_forward_equal(kind, got[0], expected[0])
    assert len(got) == len(expected) == 1 + 1 + len(list(norm.parameters()))
    for g, e in zip(got[1:], expected[1:]):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)
    assert all(e.abs().max() > 0.01 for e in expected[1:])


@pytest.mark.parametrize("kind", list(NORMS))
def test_float32_forward_and_backward_close(kind: str, backend: Callable) -> None:
    norm = _norm(kind, 32, torch.float32)
    x = torch.randn(2, 32, 16, 16) * 2 + 0.5
    upstream = torch.randn(2, 32, 16, 16)
    backend("reference")
    expected = _grads(norm, x, upstream)
    backend("auto")
    got = _grads(norm, x, upstream)
    _assert_forward_equal(kind, got[0], expected[0])
    for g, e in zip(got[1:], expected[1:]):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5 * e.abs().max().item())


def test_inference_does_not_go_through_the_function() -> None:
    norm = _norm("LayerNorm2d", 4, torch.float32)
    x = torch.randn(1, 4, 3, 3)
    assert norm(x).grad_fn is not None  # parameters need grad: training path
    assert type(norm(x).grad_fn).__name__ == "CenteredChannelNormBackward"
    with torch.no_grad():
        assert norm(x).grad_fn is None
    norm.requires_grad_(False)
    assert norm(x).grad_fn is None


def test_backend_switch(backend: Callable) -> None:
    norm = _norm("BiasFree", 4, torch.float32)
    x = torch.randn(1, 4, 3, 3)
    backend("reference")
    assert "ChannelNorm" not in type(norm(x).grad_fn).__name__
    backend("function")
    with torch.no_grad():
        assert norm(x).grad_fn is None  # a Function under no_grad records nothing either
    assert type(norm(x).grad_fn).__name__ == "ScaledChannelNormBackward"
    with pytest.raises(ValueError, match="unknown channel norm backend 'fast'"):
        cnf.set_channel_norm_backend("fast")


@pytest.mark.parametrize("kind", list(NORMS))
def test_bf16_autocast_gives_the_reference_dtypes_and_close_gradients(kind: str, backend: Callable) -> None:
    """A bf16 input (a convolution's output under autocast): the same output dtype as the plain forward, and
    float32 gradients for the parameters within bf16 rounding of the reference's."""
    norm = _norm(kind, 16, torch.float32)
    x = (torch.randn(2, 16, 8, 8) * 2).to(torch.bfloat16)
    upstream = torch.randn(2, 16, 8, 8)
    results = {}
    for name in ("reference", "auto"):
        backend(name)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            xx = x.clone().requires_grad_()
            out = norm(xx)
        grads = torch.autograd.grad((out.float() * upstream).sum(), [xx, *norm.parameters()])
        results[name] = (out, grads)
    (out_r, grads_r), (out_f, grads_f) = results["reference"], results["auto"]
    assert out_f.dtype == out_r.dtype
    # the plain forward's Tensor.var reduces the bfloat16 input in bfloat16 here; the two passes do too on the CPU
    _assert_forward_equal(kind, out_f, out_r, tol=2e-2)
    for g, e in zip(grads_f, grads_r):
        assert g.dtype == e.dtype
        torch.testing.assert_close(g.float(), e.float(), rtol=0.05, atol=0.05 * e.abs().max().item())
