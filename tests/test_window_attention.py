"""Window-attention layers: partition/mask/index helpers and the backend switch.

Every backend must compute the same function as the reference, forward AND backward (house rule;
a fast path that silently drops the bias or the mask is the failure this guards against).
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn

from restoration.layers import config
from restoration.layers.relative_position import overlap_relative_position_index, relative_position_index
from restoration.layers.window_attention import window_attention
from restoration.layers.window_partition import (
    overlapping_windows,
    shifted_window_mask,
    window_partition,
    window_reverse,
)

RTOL = 1e-5  # float32, relative to the tensor's norm


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm().clamp_min(1e-30))


def test_partition_and_reverse_round_trip() -> None:
    x = torch.randn(2, 8, 12, 5)
    w = window_partition(x, 4)
    assert w.shape == (12, 4, 4, 5)
    torch.testing.assert_close(w[1], x[0, 0:4, 4:8])  # row-major window order
    torch.testing.assert_close(w[6 + 5], x[1, 4:8, 8:12])
    assert torch.equal(window_reverse(w, 4, 8, 12), x)
    with pytest.raises(ValueError, match="not a multiple of the window size 4"):
        window_partition(torch.zeros(1, 6, 8, 1), 4)


def test_shifted_window_mask_matches_brute_force() -> None:
    h, w, ws, shift = 8, 12, 4, 2
    mask = shifted_window_mask(h, w, ws, shift)
    assert mask.shape == (6, 16, 16)
    # brute force: two tokens of a rolled window may attend iff they came from the same image region
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    # position in the original image of each rolled position, and its region label
    src_y, src_x = (ys + shift) % h, (xs + shift) % w
    region = (src_y < ys).long() * 2 + (src_x < xs).long()  # wrapped around in y / x
    labels = window_partition(region[None, :, :, None].float(), ws).view(6, 16)
    expected = torch.where(labels[:, :, None] == labels[:, None, :], 0.0, -100.0)
    assert torch.equal(mask, expected)


def test_relative_position_index_matches_brute_force() -> None:
    ws = 3
    idx = relative_position_index(ws)
    pos = [(i // ws, i % ws) for i in range(ws * ws)]
    for i, (yi, xi) in enumerate(pos):
        for j, (yj, xj) in enumerate(pos):
            assert idx[i, j] == (yi - yj + ws - 1) * (2 * ws - 1) + (xi - xj + ws - 1)
    # the overlapping index is a bijection onto the (ws+ows-1)^2 table modulo its size (negative wrap)
    oidx = overlap_relative_position_index(4, 6)
    assert oidx.shape == (16, 36)
    offsets = {(ky - qy, kx - qx) for qy in range(4) for qx in range(4) for ky in range(6) for kx in range(6)}
    assert len(offsets) == len(set((oidx % 81).flatten().tolist())) == 9 * 9


def test_overlapping_windows_centre_on_query_windows() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    kv = overlapping_windows(x, 4, 6)  # pad 1
    assert kv.shape == (2 * 4, 36, 3)
    win = kv[3].view(6, 6, 3)  # image 0, window (1, 1): rows 3..8 (8 is padding), cols 3..8
    torch.testing.assert_close(win[:5, :5], x[0, :, 3:8, 3:8].permute(1, 2, 0))
    assert torch.equal(win[5], torch.zeros(6, 3)) and torch.equal(win[:, 5], torch.zeros(6, 3))


@pytest.mark.parametrize("with_mask", [False, True])
def test_attention_function_backends_agree(with_mask: bool) -> None:
    torch.manual_seed(0)
    b, nw, nh, n, m, d = 2, 3, 2, 16, 36, 8
    q = torch.randn(b * nw, nh, n, d, requires_grad=True)
    k = torch.randn(b * nw, nh, m, d, requires_grad=True)
    v = torch.randn(b * nw, nh, m, d, requires_grad=True)
    bias = torch.randn(nh, n, m, requires_grad=True)
    mask = torch.where(torch.rand(nw, n, m) < 0.3, -100.0, 0.0) if with_mask else None
    outs, grads = {}, {}
    for backend in ("reference", "sdpa"):
        out = window_attention(q, k, v, bias=bias, mask=mask, scale=0.3, backend=backend)
        g = torch.autograd.grad(out.sin().sum(), (q, k, v, bias))
        outs[backend], grads[backend] = out, g
    assert _rel_err(outs["sdpa"], outs["reference"]) < RTOL
    for gs, gr in zip(grads["sdpa"], grads["reference"]):
        assert _rel_err(gs, gr) < RTOL
    # the mask really matters: masked pairs get (almost) no weight
    if with_mask:
        unmasked = window_attention(q, k, v, bias=bias, mask=None, scale=0.3, backend="reference")
        assert _rel_err(unmasked, outs["reference"]) > 0.1


@pytest.mark.parametrize("images", [1, 3])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_cpu_sdpa_path_equals_reference_every_combination(images: int, with_bias: bool, with_mask: bool) -> None:
    # the CPU fast path (flash forward per image, hand-written backward) for one image or several, with
    # and without bias / mask; masked logits (-100) go through the subnormal-avoiding exp floor.
    torch.manual_seed(1)
    nw, nh, n, d = 4, 3, 9, 5
    q, k, v = (torch.randn(images * nw, nh, n, d, requires_grad=True) for _ in range(3))
    bias = torch.randn(nh, n, n, requires_grad=True) if with_bias else None
    mask = torch.where(torch.rand(nw, n, n) < 0.4, -100.0, 0.0) if with_mask else None
    wrt = (q, k, v) + ((bias,) if with_bias else ())
    res = {}
    for backend in ("reference", "sdpa"):
        out = window_attention(q, k, v, bias=bias, mask=mask, scale=0.7, backend=backend)
        res[backend] = (out,) + torch.autograd.grad(out.cos().sum(), wrt)
    assert "_CPUWindowAttention" in type(res["sdpa"][0].grad_fn).__name__
    for got, exp in zip(res["sdpa"], res["reference"]):
        assert _rel_err(got, exp) < RTOL


def test_cpu_sdpa_path_fully_masked_row_and_exact_zero_probabilities() -> None:
    # -100 entries become exact zeros (no subnormals) in every row that keeps an unmasked entry;
    # a fully masked row (softmax over logits - 100) must still equal the reference.
    from restoration.layers.window_attention import _exact_zero_mask

    torch.manual_seed(2)
    nw, nh, n, d = 2, 2, 6, 4
    mask = torch.where(torch.rand(nw, n, n) < 0.5, -100.0, 0.0)
    mask[:, :, 0] = 0.0
    assert torch.equal(_exact_zero_mask(mask), torch.where(mask < 0, -1.0e4, 0.0))
    mask[1, 3] = -100.0  # one fully masked row: left as it is, the others still become exact zeros
    expected = torch.where(mask < 0, -1.0e4, 0.0)
    expected[1, 3] = -100.0
    assert torch.equal(_exact_zero_mask(mask), expected)
    q, k, v = (torch.randn(2 * nw, nh, n, d, requires_grad=True) for _ in range(3))
    bias = torch.randn(nh, n, n, requires_grad=True)
    res = {}
    for backend in ("reference", "sdpa"):
        out = window_attention(q, k, v, bias=bias, mask=mask, scale=0.5, backend=backend)
        res[backend] = (out,) + torch.autograd.grad(out.tanh().sum(), (q, k, v, bias))
    for got, exp in zip(res["sdpa"], res["reference"]):
        assert _rel_err(got, exp) < RTOL


@pytest.mark.parametrize("with_mask", [False, True])
def test_cpu_sdpa_backward_in_blocks_of_windows(monkeypatch: pytest.MonkeyPatch, with_mask: bool) -> None:
    # the CPU backward walks over blocks of windows; with a tiny block budget a block holds 2 of an
    # image's 5 windows (the last one 1), so block edges, image edges and the per-window mask offsets
    # are all exercised. Only q and bias require grad here: the other gradients must come back as None.
    import restoration.layers.window_attention as wa

    images, nw, nh, n, d = 3, 5, 2, 9, 4
    monkeypatch.setattr(wa, "_CPU_CHUNK_BYTES", 2 * nh * n * n * 4)
    torch.manual_seed(3)
    q = torch.randn(images * nw, nh, n, d, requires_grad=True)
    k, v = torch.randn(images * nw, nh, n, d), torch.randn(images * nw, nh, n, d)
    bias = torch.randn(nh, n, n, requires_grad=True)
    mask = torch.where(torch.rand(nw, n, n) < 0.4, -100.0, 0.0) if with_mask else None
    if mask is not None:
        mask[:, :, 0] = 0.0  # every row keeps a key: the exact-zero conversion applies
    res = {}
    for backend in ("reference", "sdpa"):
        out = window_attention(q, k, v, bias=bias, mask=mask, scale=0.6, backend=backend)
        res[backend] = (out,) + torch.autograd.grad(out.sin().sum(), (q, bias))
    for got, exp in zip(res["sdpa"], res["reference"]):
        assert _rel_err(got, exp) < RTOL


def test_cpu_sdpa_mask_cache_follows_in_place_changes() -> None:
    # the exact-zero copy of the last mask is cached; changing the mask in place must not reuse it
    torch.manual_seed(4)
    nw, nh, n, d = 2, 1, 6, 3
    q, k, v = (torch.randn(nw, nh, n, d) for _ in range(3))
    mask = torch.zeros(nw, n, n)
    mask[:, :, 3:] = -100.0
    for _ in range(2):
        got = window_attention(q, k, v, mask=mask, backend="sdpa")
        exp = window_attention(q, k, v, mask=mask, backend="reference")
        assert _rel_err(got, exp) < RTOL
        mask[:, :, 3:] = 0.0
        mask[:, :, :2] = -100.0


def test_cpu_sdpa_path_stores_no_attention_matrix() -> None:
    # memory-lean: the fast path keeps nothing for backward but its inputs (alive anyway), never the
    # (B*nW, nH, N, N) probabilities that the reference keeps.
    b, nw, nh, n, d = 2, 4, 2, 64, 8
    q, k, v = (torch.randn(b * nw, nh, n, d, requires_grad=True) for _ in range(3))
    bias = torch.randn(nh, n, n, requires_grad=True)
    mask = torch.zeros(nw, n, n)
    inputs = {t.untyped_storage().data_ptr() for t in (q, k, v, bias, mask)}
    saved = {}
    for backend in ("reference", "sdpa"):
        storages: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            if t.untyped_storage().data_ptr() not in inputs:
                storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            window_attention(q, k, v, bias=bias, mask=mask, scale=0.3, backend=backend)
        saved[backend] = sum(storages.values())
    attn_bytes = b * nw * nh * n * n * 4
    assert saved["reference"] >= attn_bytes
    assert saved["sdpa"] == 0, saved


def test_global_switch_and_unknown_backend() -> None:
    assert config.get_attn_backend() == "sdpa"
    try:
        config.set_attn_backend("reference")
        assert config.resolve_attn_backend(None) == "reference"
    finally:
        config.set_attn_backend("sdpa")
    with pytest.raises(ValueError, match="unknown attention backend 'flash'; choose one of reference, sdpa"):
        config.resolve_attn_backend("flash")


def _swinir() -> nn.Module:
    from restoration.archs.swinir_arch import SwinIR

    return SwinIR(img_size=8, embed_dim=12, depths=[2, 2], num_heads=[2, 3], window_size=4, mlp_ratio=2,
                  upscale=2, upsampler="pixelshuffle", resi_connection="3conv", drop_path_rate=0.0)


def _hat() -> nn.Module:
    from restoration.archs.hat_arch import HAT

    return HAT(img_size=8, embed_dim=12, depths=[2], num_heads=[3], window_size=4, compress_ratio=3,
               squeeze_factor=4, conv_scale=0.5, mlp_ratio=2, upscale=2, drop_path_rate=0.0)


ARCHS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    # 7x10 is not a multiple of the window (4): SwinIR pads internally; blocks alternate unshifted/shifted
    "SwinIR": (_swinir, (2, 3, 7, 10)),
    # HAT does not pad (size_multiple = window): a non-square 8x12 input, shifted HAB + OCAB with zero-padded keys
    "HAT": (_hat, (2, 3, 8, 12)),
}


def _set_backend(net: nn.Module, backend: str) -> None:
    for m in net.modules():
        if hasattr(m, "attn_backend"):
            m.attn_backend = backend


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_network_backends_agree_forward_and_backward(arch: str) -> None:
    make, shape = ARCHS[arch]
    torch.manual_seed(0)
    net = make().train()
    with torch.no_grad():  # large position biases so that a dropped bias could not pass unnoticed
        for name, p in net.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(std=0.5)
    x = torch.rand(shape)
    results = {}
    for backend in ("reference", "sdpa"):
        _set_backend(net, backend)
        net.zero_grad()
        xi = x.clone().requires_grad_(True)
        out = net(xi)
        out.square().mean().backward()
        results[backend] = (out.detach(), xi.grad, {n: p.grad.clone() for n, p in net.named_parameters()})
    ref, fast = results["reference"], results["sdpa"]
    assert _rel_err(fast[0], ref[0]) < RTOL
    assert _rel_err(fast[1], ref[1]) < RTOL
    assert ref[2].keys() == fast[2].keys()
    errs = {n: _rel_err(fast[2][n], ref[2][n]) for n in ref[2]}
    worst = max(errs, key=errs.get)
    print(f"{arch}: out {_rel_err(fast[0], ref[0]):.1e}, input grad {_rel_err(fast[1], ref[1]):.1e}, "
          f"worst param grad {worst} {errs[worst]:.1e}")
    assert errs[worst] < RTOL, f"{worst}: {errs[worst]:.2e}"
    assert any(getattr(m, "shift_size", 0) for m in net.modules()), "the tiny config must contain shifted blocks"


@pytest.mark.slow
def test_torch_compile_of_the_sdpa_path_equals_eager_without_graph_breaks() -> None:
    """``train.compile: true`` on a Swin network: the CPU fast path (custom autograd function, cached
    exact-zero mask) must trace without a graph break and compute the same step (about a minute)."""
    import torch._dynamo

    torch.manual_seed(0)
    net = _swinir()
    x = torch.rand(2, 3, 8, 8)
    out = net(x)
    out.abs().mean().backward()
    eager_grads = {k: p.grad.clone() for k, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled_out = torch.compile(net)(x)
    compiled_out.abs().mean().backward()
    assert not torch._dynamo.utils.counters["graph_break"], dict(torch._dynamo.utils.counters["graph_break"])
    assert _rel_err(compiled_out, out) < RTOL
    for k, p in net.named_parameters():
        assert _rel_err(p.grad, eager_grads[k]) < RTOL, k
