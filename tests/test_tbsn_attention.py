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
    with pytest.raises(ValueError, match="unknown masked_window attention backend 'flash'"):
        attn.impl = "flash"
    odd = MaskedWindowAttention(dim=4, window_size=3, overlap_ratio=0.7, num_heads=1, dim_head=4, bias=False,
                                impl="reference")
    with pytest.raises(ValueError, match="'parity' needs an even window_size, got 3"):
        odd.impl = "parity"


@pytest.mark.parametrize("impl", ["sdpa", "parity"])
@pytest.mark.parametrize("dim_head", [16, 10])
def test_sdpa_inputs_meet_the_memory_efficient_kernel_rules(
    monkeypatch: pytest.MonkeyPatch, impl: str, dim_head: int
) -> None:
    # TBSN's shipped dim_head (16) and a padded one (10): every SDPA call gets 4-D inputs (windows in
    # the batch axis, heads in the heads axis), head dims a multiple of 8, an aligned mask in q's dtype; the
    # result still equals the reference
    import torch.nn.functional as F

    from restoration.layers.window_attention_cuda import mem_efficient_violations

    calls: list[list[str]] = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):  # noqa: ANN001, ANN003
        calls.append(mem_efficient_violations(q, k, v, attn_mask) + [f"{q.shape[1]} heads" if q.shape[1] != 3 else ""])
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    torch.manual_seed(0)
    attn = MaskedWindowAttention(dim=6, window_size=8, overlap_ratio=0.5, num_heads=3, dim_head=dim_head, bias=True)
    x = torch.randn(2, 6, 16, 16)
    attn.impl = "reference"
    ref = attn(x)
    attn.impl = impl
    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    out = attn(x)
    assert len(calls) == (4 if impl == "parity" else 1)
    assert all(c == [""] for c in calls), calls
    assert (out - ref).abs().max() < 1e-5 * ref.abs().max()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("impl", ["sdpa", "parity"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 3e-2)])
def test_cuda_fast_path_equals_reference_on_the_memory_efficient_kernel(
    impl: str, dtype: torch.dtype, tol: float
) -> None:
    # TBSN's shipped head (dim_head 16, ws 8, overlap 0.5) on CUDA: forward and backward against the float64
    # reference, and the profiler shows the memory-efficient kernel, not the math path
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    attn = MaskedWindowAttention(dim=32, window_size=8, overlap_ratio=0.5, num_heads=2, dim_head=16, bias=True).cuda()
    x = torch.randn(2, 32, 32, 32, device="cuda")
    results = {}
    for name, dt in (("reference", torch.float64), (impl, dtype)):
        attn.impl = name
        net = attn.to(dt)
        net.zero_grad()
        xi = x.to(dt).requires_grad_(True)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            out = net(xi)
            out.float().square().sum().backward()
        grads = [p.grad.double() for p in net.parameters() if p.requires_grad]
        results[name] = [out.double(), xi.grad.double()] + grads
        names = {e.key for e in prof.key_averages()}
    assert "aten::_scaled_dot_product_efficient_attention" in names, sorted(names)
    assert not any("attention_math" in n for n in names), sorted(names)
    for got, exp in zip(results[impl], results["reference"]):
        assert float((got - exp).norm() / exp.norm()) < tol
