"""The depthwise convolution's CPU backward equals F.conv2d's, and its switch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from restoration.layers import depthwise_conv as dc
from restoration.layers.depthwise_conv import depthwise_conv2d


@pytest.mark.parametrize("k,padding,dilation", [(3, 2, 2), (3, 1, 1), (5, 2, 1), (3, 0, 2), (3, 3, 1)])
@pytest.mark.parametrize("bias", [False, True])
def test_cpu_backward_equals_conv2d(k: int, padding: int, dilation: int, bias: bool) -> None:
    # float64: the two backward computations differ only in the order of their sums (checked to 1e-12)
    torch.manual_seed(0)
    x = torch.randn(2, 6, 11, 13, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 1, k, k, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True) if bias else None
    inputs = [t for t in (x, w, b) if t is not None]
    results = {}
    for backend in ("reference", "cpu"):
        out = depthwise_conv2d(x, w, b, padding=padding, dilation=dilation, backend=backend)
        weight = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(out.shape)
        results[backend] = (out, *torch.autograd.grad((out * weight).sum() + out.square().sum(), inputs))
    expected = F.conv2d(x, w, b, padding=padding, dilation=dilation, groups=6)
    assert torch.equal(results["reference"][0], expected)
    for got, exp in zip(results["cpu"], results["reference"]):
        torch.testing.assert_close(got, exp, rtol=1e-12, atol=1e-12)


def test_cpu_backend_passes_gradcheck() -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 3, 7, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: depthwise_conv2d(*t, padding=2, dilation=2, backend="cpu"), (x, w, b))


def test_auto_uses_the_cpu_backward_only_when_training_a_dilated_filter_on_the_cpu() -> None:
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    w = torch.randn(4, 1, 3, 3, requires_grad=True)
    assert type(depthwise_conv2d(x, w, padding=2, dilation=2).grad_fn).__name__ == "DepthwiseConvCPUBackward"
    # dilation 1: oneDNN's own backward is the faster one at most shapes (Restormer's MDTA)
    assert "DepthwiseConvCPU" not in type(depthwise_conv2d(x, w, padding=1).grad_fn).__name__
    with torch.no_grad():
        assert depthwise_conv2d(x, w, padding=2, dilation=2).grad_fn is None
    meta = depthwise_conv2d(x.to("meta"), w.to("meta"), padding=2, dilation=2)  # another device: F.conv2d's
    assert "DepthwiseConvCPU" not in type(meta.grad_fn).__name__
    try:
        dc.set_depthwise_backend("cpu")
        assert type(depthwise_conv2d(x, w, padding=1).grad_fn).__name__ == "DepthwiseConvCPUBackward"
        dc.set_depthwise_backend("reference")
        assert "DepthwiseConvCPU" not in type(depthwise_conv2d(x, w, padding=2, dilation=2).grad_fn).__name__
    finally:
        dc.set_depthwise_backend("auto")
    with pytest.raises(ValueError, match="unknown depthwise convolution backend 'fast'"):
        dc.set_depthwise_backend("fast")


def test_tbsn_training_step_is_the_same_with_either_backend() -> None:
    from restoration.archs.tbsn.tbsn_arch import TBSN

    torch.manual_seed(0)
    net = TBSN(dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1, channel_heads=[1, 2, 2], spatial_heads=[1, 1, 1],
               spatial_dim_head=8)
    x = torch.rand(1, 3, 32, 32) * 255
    grads = {}
    for backend in ("reference", "cpu"):
        dc.set_depthwise_backend(backend)
        try:
            net.zero_grad()
            net(x).abs().mean().backward()
        finally:
            dc.set_depthwise_backend("auto")
        grads[backend] = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    for got, exp in zip(grads["cpu"], grads["reference"]):
        torch.testing.assert_close(got, exp, rtol=1e-4, atol=1e-6)


def test_cpu_backward_under_bf16_autocast_follows_the_reference() -> None:
    # autocast runs the forward convolution in bf16 while the saved input and filter stay float32. Both backends'
    # gradients are compared with the float64 ones by relative norm (bf16 unit roundoff 3.9e-3): elementwise,
    # two bf16 computations summing in different orders differ by whole bf16 steps where values cancel (oneDNN's
    # bf16 kernels differ between CPUs).
    torch.manual_seed(2)
    x = torch.randn(2, 8, 12, 12, requires_grad=True)
    w = torch.randn(8, 1, 3, 3, requires_grad=True)
    grads = {}
    for backend in ("reference", "cpu"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = depthwise_conv2d(x, w, padding=2, dilation=2, backend=backend)
        assert out.dtype == torch.bfloat16
        grads[backend] = torch.autograd.grad(out.float().square().sum(), (x, w))
    x64, w64 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    exact = torch.autograd.grad(F.conv2d(x64, w64, padding=2, dilation=2, groups=8).square().sum(), (x64, w64))
    for backend, got in grads.items():
        for g, e, what in zip(got, exact, ("dx", "dw")):
            assert g.dtype == torch.float32
            assert float((g.double() - e).norm() / e.norm()) < 2e-2, (backend, what)
