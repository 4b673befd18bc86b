"""SPAN's fused training form equals the official branch form, forward and backward.

``train_form='fused'`` (our default) trains every Conv3XC through one 3×3 conv whose weight and bias are fused
from the branch weights with autograd on each call; ``'branch'`` is the official arithmetic. Same parameters,
same function, same gradients: compared here in float64, where only summation order separates them.
"""

from __future__ import annotations

import pytest
import torch

from restoration import build_network
from restoration.archs import register_archs
from restoration.archs.span.span_arch import SPAN, Conv3XC

pytestmark = pytest.mark.usefixtures("one_torch_thread")

register_archs()


def _pair(**kwargs: object) -> tuple[SPAN, SPAN]:
    torch.manual_seed(0)
    fused = SPAN(**kwargs, train_form="fused").double().train()
    branch = SPAN(**kwargs, train_form="branch").double().train()
    branch.load_state_dict(fused.state_dict())
    for p in fused.parameters():  # the zero/one-ish defaults would hide a wrong bias or skip term
        with torch.no_grad():
            p.add_(torch.randn_like(p) * 0.05)
    branch.load_state_dict(fused.state_dict())
    return fused, branch


def _step(net: SPAN, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    x = x.clone().requires_grad_()
    net.zero_grad(set_to_none=True)
    out = net(x)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return out.detach(), x.grad, {k: p.grad for k, p in net.named_parameters()}


@pytest.mark.parametrize("kwargs, shape", [
    (dict(feature_channels=48, upscale=4), (2, 3, 9, 7)),   # the released width, an odd-sized input
    (dict(feature_channels=6, upscale=3, num_out_ch=1), (1, 3, 5, 12)),
])
def test_fused_training_form_equals_the_branch_forward_and_backward(kwargs: dict, shape: tuple) -> None:
    fused, branch = _pair(**kwargs)
    x = torch.rand(*shape, dtype=torch.float64)
    out_f, gx_f, grads_f = _step(fused, x)
    out_b, gx_b, grads_b = _step(branch, x)
    scale = out_b.abs().max()
    assert scale > 1  # a live network, not a zero map
    # measured: 1e-13 relative here; float32 rounding would be ~1e-6
    torch.testing.assert_close(out_f, out_b, rtol=0, atol=1e-11 * scale)
    torch.testing.assert_close(gx_f, gx_b, rtol=1e-9, atol=1e-11 * gx_b.abs().max())
    assert grads_f.keys() == grads_b.keys() and len(grads_f) == len(list(fused.parameters()))
    for key in grads_b:
        assert grads_f[key] is not None, key
        torch.testing.assert_close(grads_f[key], grads_b[key], rtol=1e-9, atol=1e-11 * grads_b[key].abs().max(),
                                   msg=lambda m, key=key: f"{key}: {m}")


def test_fused_form_is_the_default_and_keeps_the_official_keys() -> None:
    default = build_network({"type": "SPAN", "feature_channels": 4, "upscale": 2})
    branch = build_network({"type": "SPAN", "feature_channels": 4, "upscale": 2, "train_form": "branch"})
    assert {m.train_form for m in default.modules() if isinstance(m, Conv3XC)} == {"fused"}
    assert list(default.state_dict()) == list(branch.state_dict())
    assert all(".eval_conv." in k for k in set(default.state_dict()) - {k for k, _ in default.named_parameters()})


def test_unknown_train_form_is_an_options_error() -> None:
    with pytest.raises(ValueError, match="invalid SPAN options: train_form must be one of fused, branch, got 'fast'"):
        build_network({"type": "SPAN", "feature_channels": 4, "upscale": 2, "train_form": "fast"})


def test_fusion_stays_in_the_parameters_dtype_under_autocast() -> None:
    """Under bf16 autocast only the conv is cast: the fused weight is computed in float32 (a bf16 einsum of
    the branch weights would round the fusion itself), and the output stays within bf16 rounding of float32."""
    torch.manual_seed(0)
    conv = Conv3XC(8, 8).train()
    x = torch.randn(1, 8, 10, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        weight, bias = conv.fused()
        out = conv(x)
    assert weight.dtype == bias.dtype == torch.float32
    assert out.dtype == torch.bfloat16
    ref = conv(x)
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=0.02 * ref.abs().max().item())
