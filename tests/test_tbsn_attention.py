"""M-WSA fast paths (SDPA with the folded mask; parity-class decomposition) equal the reference, forward and backward."""

from __future__ import annotations

import pytest
import torch

from restoration.layers.masked_window_attention import MaskedWindowAttention


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: see tests/conftest.py


@pytest.mark.parametrize("impl", ["sdpa", "parity"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("ws,ratio", [(8, 0.5), (4, 1.0), (4, 0.5)])
def test_fast_path_equals_reference(impl: str, dtype: torch.dtype, tol: float, ws: int, ratio: float) -> None:
    torch.manual_seed(0)
    attn = MaskedWindowAttention(dim=6, window_size=ws, overlap_ratio=ratio, num_heads=2, dim_head=4, bias=True)
    attn = attn.to(dtype)
    x = torch.randn(2, 6, 2 * ws, 3 * ws, dtype=dtype)
    results = {}
    for name in ("reference", impl):
        attn.impl = name
        attn.zero_grad()
        xi = x.clone().requires_grad_(True)
        out = attn(xi)
        weight = torch.linspace(-1, 1, out.numel(), dtype=dtype).reshape(out.shape)
        (out * weight).sum().backward()
        grads = {n: p.grad.clone() for n, p in attn.named_parameters() if p.requires_grad}
        results[name] = (out.detach(), xi.grad, grads)
    ref, fast = results["reference"], results[impl]
    scale = ref[0].abs().max().item()
    assert (ref[0] - fast[0]).abs().max().item() <= tol * max(scale, 1.0)
    assert (ref[1] - fast[1]).abs().max().item() <= tol * max(ref[1].abs().max().item(), 1.0)
    assert set(ref[2]) == set(fast[2]) and {"rel_pos_emb.rel_height", "rel_pos_emb.rel_width"} <= set(ref[2])
    for name in ref[2]:
        g_ref, g_fast = ref[2][name], fast[2][name]
        assert g_ref.abs().max() > 0, name
        assert (g_ref - g_fast).abs().max().item() <= tol * max(g_ref.abs().max().item(), 1.0), name
    # The fixed mask is not trained.
    assert attn.fixed_pos_emb.attention_mask.grad is None


def test_unknown_impl_is_rejected() -> None:
    attn = MaskedWindowAttention(dim=4, window_size=4, overlap_ratio=1.0, num_heads=1, dim_head=4, bias=False)
    with pytest.raises(ValueError, match="unknown attention impl 'flash'"):
        attn.impl = "flash"
    odd = MaskedWindowAttention(dim=4, window_size=3, overlap_ratio=0.7, num_heads=1, dim_head=4, bias=False,
                                impl="reference")
    with pytest.raises(ValueError, match="'parity' needs an even window_size, got 3"):
        odd.impl = "parity"
