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


#: The autograd function of each CPU kernel (window_attention_cpu): small windows / large windows.
KERNEL_FUNCTION = {"stored": "CPUStoredWindowAttentionBackward", "flash": "CPUWindowAttentionBackward"}


@pytest.fixture(params=sorted(KERNEL_FUNCTION))
def cpu_kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with each CPU kernel forced, whatever the window size (the rule is by window size)."""
    import restoration.layers.window_attention_cpu as wa

    monkeypatch.setattr(wa, "STORED_MAX_LOGITS", 1 << 30 if request.param == "stored" else 0)
    return request.param


def test_partition_and_reverse_round_trip() -> None:
    x = torch.randn(2, 8, 12, 5)
    w = window_partition(x, 4)
    assert w.shape == (12, 4, 4, 5)
    torch.testing.assert_close(w[1], x[0, 0:4, 4:8])  # row-major window order
    torch.testing.assert_close(w[6 + 5], x[1, 4:8, 8:12])
    assert torch.equal(window_reverse(w, 4, 8, 12), x)
    with pytest.raises(ValueError, match="not a multiple of the window size 4"):
        window_partition(torch.zeros(1, 6, 8, 1), 4)


@pytest.mark.parametrize("h, w, ws, shift", [(8, 12, 4, 2), (4, 4, 4, 2), (7, 21, 7, 3), (16, 8, 8, 1), (24, 16, 8, 4)])
def test_shifted_window_mask_matches_brute_force(h: int, w: int, ws: int, shift: int) -> None:
    mask = shifted_window_mask(h, w, ws, shift)
    nw = (h // ws) * (w // ws)
    assert mask.shape == (nw, ws * ws, ws * ws) and mask.dtype == torch.float32
    # brute force: two tokens of a rolled window may attend iff they came from the same image region
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    # position in the original image of each rolled position, and its region label
    src_y, src_x = (ys + shift) % h, (xs + shift) % w
    region = (src_y < ys).long() * 2 + (src_x < xs).long()  # wrapped around in y / x
    labels = window_partition(region[None, :, :, None].float(), ws).view(nw, ws * ws)
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
def test_attention_function_backends_agree(with_mask: bool, cpu_kernel: str) -> None:
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
def test_cpu_sdpa_path_equals_reference_every_combination(
    images: int, with_bias: bool, with_mask: bool, cpu_kernel: str
) -> None:
    # each CPU kernel (stored probabilities / flash forward per image with a recomputing backward) for
    # one image or several, with and without bias / mask; masked logits (-100) become exact zeros.
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
    assert type(res["sdpa"][0].grad_fn).__name__ == KERNEL_FUNCTION[cpu_kernel]
    for got, exp in zip(res["sdpa"], res["reference"]):
        assert _rel_err(got, exp) < RTOL


def test_cpu_sdpa_path_fully_masked_row_and_exact_zero_probabilities(cpu_kernel: str) -> None:
    # -100 entries become exact zeros (no subnormals) in every row that keeps an unmasked entry;
    # a fully masked row (softmax over logits - 100) must still equal the reference.
    from restoration.layers.window_attention_cpu import exact_zero_mask

    torch.manual_seed(2)
    nw, nh, n, d = 2, 2, 6, 4
    mask = torch.where(torch.rand(nw, n, n) < 0.5, -100.0, 0.0)
    mask[:, :, 0] = 0.0
    assert torch.equal(exact_zero_mask(mask), torch.where(mask < 0, -1.0e4, 0.0))
    mask[1, 3] = -100.0  # one fully masked row: left as it is, the others still become exact zeros
    expected = torch.where(mask < 0, -1.0e4, 0.0)
    expected[1, 3] = -100.0
    assert torch.equal(exact_zero_mask(mask), expected)
    q, k, v = (torch.randn(2 * nw, nh, n, d, requires_grad=True) for _ in range(3))
    bias = torch.randn(nh, n, n, requires_grad=True)
    res = {}
    for backend in ("reference", "sdpa"):
        out = window_attention(q, k, v, bias=bias, mask=mask, scale=0.5, backend=backend)
        res[backend] = (out,) + torch.autograd.grad(out.tanh().sum(), (q, k, v, bias))
    for got, exp in zip(res["sdpa"], res["reference"]):
        assert _rel_err(got, exp) < RTOL


@pytest.mark.parametrize("with_mask", [False, True])
def test_cpu_sdpa_backward_in_blocks_of_windows(
    monkeypatch: pytest.MonkeyPatch, with_mask: bool, cpu_kernel: str
) -> None:
    # the CPU kernels walk over blocks of windows; with a tiny block budget a block holds 2 of an
    # image's 5 windows (the last one 1), so block edges, image edges and the per-window mask offsets
    # are all exercised. Only q and bias require grad here: the other gradients must come back as None.
    import restoration.layers.window_attention_cpu as wa

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


def test_cpu_sdpa_mask_cache_follows_in_place_changes(cpu_kernel: str) -> None:
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


def _saved_bytes(backend: str, *inputs: torch.Tensor, **kwargs) -> int:
    """Bytes that window_attention(*inputs, backend) keeps for backward, beyond its inputs' storages."""
    inputs_ptrs = {t.untyped_storage().data_ptr() for t in inputs}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in inputs_ptrs:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        window_attention(*inputs[:3], bias=inputs[3], mask=inputs[4], scale=0.3, backend=backend, **kwargs)
    return sum(storages.values())


def test_cpu_kernels_keep_for_backward_at_most_what_the_reference_keeps(monkeypatch: pytest.MonkeyPatch) -> None:
    # the flash kernel (large windows) keeps nothing but its inputs (alive anyway), never the
    # (B*nW, nH, N, N) probabilities; the stored kernel (small windows) keeps them, as the reference
    # does, and not more than the reference in all.
    import restoration.layers.window_attention_cpu as wa

    b, nw, nh, n, d = 2, 4, 2, 64, 8
    q, k, v = (torch.randn(b * nw, nh, n, d, requires_grad=True) for _ in range(3))
    bias = torch.randn(nh, n, n, requires_grad=True)
    mask = torch.zeros(nw, n, n)
    attn_bytes = b * nw * nh * n * n * 4
    reference = _saved_bytes("reference", q, k, v, bias, mask)
    assert reference >= attn_bytes
    stored = _saved_bytes("sdpa", q, k, v, bias, mask)  # 64 x 64 logits per head: the stored kernel
    assert attn_bytes <= stored <= reference, (stored, reference)
    monkeypatch.setattr(wa, "STORED_MAX_LOGITS", n * n - 1)  # one token more than the rule allows: flash
    assert _saved_bytes("sdpa", q, k, v, bias, mask) == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_kernel_rule_by_window_size_dtype_and_grad(dtype: torch.dtype) -> None:
    # stored probabilities up to 8 x 8 windows in float32 (with grad: the autograd function; without:
    # a block-sized buffer, no graph); larger windows and low precision take the flash kernel
    def kernel(n: int, grad: bool) -> str:
        q = torch.randn(4, 2, n, 16, dtype=dtype, requires_grad=grad)
        with torch.set_grad_enabled(grad):
            out = window_attention(q, q, q, bias=None, mask=None, backend="sdpa")
        return type(out.grad_fn).__name__ if out.grad_fn is not None else "no graph"

    small = "CPUStoredWindowAttentionBackward" if dtype == torch.float32 else "CPUWindowAttentionBackward"
    assert kernel(64, True) == small
    assert kernel(65, True) == kernel(256, True) == "CPUWindowAttentionBackward"
    assert kernel(64, False) == kernel(256, False) == "no graph"


def test_cpu_stored_kernel_inference_in_blocks_equals_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    # inference (no grad) goes through one block-sized buffer: with a tiny block budget, blocks of 2 of
    # an image's 5 windows, block by block, must still give the reference's output
    import restoration.layers.window_attention_cpu as wa

    images, nw, nh, n, d = 3, 5, 2, 16, 4
    monkeypatch.setattr(wa, "_CPU_CHUNK_BYTES", 2 * nh * n * n * 4)
    torch.manual_seed(5)
    q, k, v = (torch.randn(images * nw, nh, n, d) for _ in range(3))
    bias = torch.randn(nh, n, n)
    mask = torch.where(torch.rand(nw, n, n) < 0.4, -100.0, 0.0)
    mask[:, :, 0] = 0.0
    with torch.no_grad():
        got = window_attention(q, k, v, bias=bias, mask=mask, scale=0.4, backend="sdpa")
        exp = window_attention(q, k, v, bias=bias, mask=mask, scale=0.4, backend="reference")
    assert _rel_err(got, exp) < RTOL


def test_global_switch_and_unknown_backend() -> None:
    assert config.get_attn_backend() == "auto"
    # 'auto' is the measured default (docs/benchmarks.md): the CPU kernels on the CPU at every head dim
    # (they pick by window size themselves), the CUDA layout on every other device
    assert config.resolve_backend("window", None, torch.device("cpu"), head_dim=10) == "sdpa"
    assert config.resolve_backend("window", None, "cpu", head_dim=16) == "sdpa"
    assert config.resolve_backend("window", None, "cpu", head_dim=30) == "sdpa"
    assert config.resolve_backend("window", None, "cuda:1", head_dim=10) == "sdpa"
    assert config.resolve_backend("window", "auto") == "auto"  # layers built without a device resolve it per call
    q10 = torch.randn(2, 1, 4, 10, requires_grad=True)
    # the reference's last op is attn @ v (a matmul's view); the kernels are one autograd function each
    assert type(window_attention(q10, q10, q10).grad_fn).__name__ == "CPUStoredWindowAttentionBackward"
    try:
        config.set_attn_backend("reference")
        assert config.resolve_backend("window", None, "cpu", head_dim=10) == "reference"
        assert type(window_attention(q10, q10, q10).grad_fn).__name__ == "UnsafeViewBackward0"
    finally:
        config.set_attn_backend("auto")
    with pytest.raises(ValueError, match="unknown window attention backend 'flash'; choose one of reference, sdpa"):
        config.resolve_backend("window", "flash")


def _swinir() -> nn.Module:
    from restoration.archs.swinir.swinir_arch import SwinIR

    return SwinIR(img_size=8, embed_dim=12, depths=[2, 2], num_heads=[2, 3], window_size=4, mlp_ratio=2,
                  upscale=2, upsampler="pixelshuffle", resi_connection="3conv", drop_path_rate=0.0)


def _hat() -> nn.Module:
    from restoration.archs.hat.hat_arch import HAT

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
@pytest.mark.xfail(torch.__version__.startswith("2.11."), strict=False,
                   reason="torch 2.11's CPU Inductor emits C++ that does not compile for SwinIR (decltype in "
                          "blendv), with every attention backend; 2.5.1 and 2.14.1 pass")
def test_torch_compile_of_the_sdpa_path_equals_eager_without_graph_breaks() -> None:
    """``train.compile: true`` on a Swin network: the CPU fast path (custom autograd function, cached
    exact-zero mask) must trace without a graph break and compute the same step (about a minute)."""
    import torch._dynamo

    torch.manual_seed(0)
    net = _swinir()
    _set_backend(net, "sdpa")  # explicit: the path under test (4 x 4 windows: the stored-probabilities kernel)
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


# --- the 'sdpa' layout for CUDA's memory-efficient kernel (window_attention_cuda), run on the CPU ---

#: (heads, head dim, window, key window or None) of every shipped window-attention call:
#: SwinIR-light, SwinIR-M / HAT / HAT-L (head dim 30), HAT-S (24), HAT's OCAB (16^2 queries, 24^2 keys).
SHIPPED = {
    "swinir-light": (6, 10, 8, None),
    "swinir-m": (6, 30, 8, None),
    "hat": (6, 30, 16, None),
    "hat-s": (6, 24, 16, None),
    "hat-ocab": (6, 30, 16, 24),
}


def _problem(config: str, images: int, shifted: bool, windows_side: int = 2, dtype: torch.dtype = torch.float32):
    """q, k, v (B*nW, nH, N|M, d) as views of one qkv projection (as the networks make them), a learned
    bias (nH, N, M) and the real shift mask of a (2 ws)^2 map (or None)."""
    nh, d, ws, kws = SHIPPED[config]
    n, m = ws * ws, (kws or ws) ** 2
    nw = windows_side**2
    torch.manual_seed(5)
    q = torch.randn(images * nw, n, nh, d, dtype=dtype).transpose(1, 2).requires_grad_()
    kv = torch.randn(images * nw, m, 2, nh, d, dtype=dtype).permute(2, 0, 3, 1, 4).requires_grad_()
    bias = (0.5 * torch.randn(nh, n, m)).requires_grad_()
    mask = shifted_window_mask(windows_side * ws, windows_side * ws, ws, ws // 2) if shifted else None
    return q, kv, bias, mask


@pytest.mark.parametrize("config", sorted(SHIPPED))
@pytest.mark.parametrize("shifted", [False, True])
def test_cuda_layout_equals_reference_forward_and_backward(config: str, shifted: bool) -> None:
    # The very code that runs on CUDA, run here on the CPU (where SDPA takes its math kernel): padding the
    # head dim, windows in the heads axis, the stride-0 mask, the slice back. float32, relative norm error
    # < 1e-5: both sides round each logit, softmax and product once (~1e-7 each) and sum at most 576 terms.
    from restoration.layers.window_attention_cuda import sdpa_window_attention

    if shifted and SHIPPED[config][3]:
        pytest.skip("OCAB is never shifted")
    q, kv, bias, mask = _problem(config, images=3, shifted=shifted)
    res = {}
    for name in ("reference", "cuda-layout"):
        k, v = kv.unbind(0)
        if name == "reference":
            out = window_attention(q, k, v, bias=bias, mask=mask, scale=0.37, backend="reference")
        else:
            out = sdpa_window_attention(q, k, v, bias, mask, scale=0.37)
        weight = torch.linspace(-1, 1, out.numel()).view(out.shape)
        res[name] = (out,) + torch.autograd.grad((out * weight).sum() + out.square().sum(), (q, kv, bias))
    assert res["cuda-layout"][0].shape == q.shape
    for got, exp, what in zip(res["cuda-layout"], res["reference"], ("out", "dq", "dkv", "dbias")):
        assert _rel_err(got, exp) < RTOL, what
    if mask is not None:  # the mask was applied: without it the output is far off
        k, v = kv.unbind(0)
        unmasked = sdpa_window_attention(q, k, v, bias, None, scale=0.37)
        assert _rel_err(unmasked, res["reference"][0]) > 0.05


class _LargestAllocation(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the element count of the largest storage any op's output lives in (views such as an
    expand share their input's storage: they allocate nothing)."""

    largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.untyped_storage().nbytes() // t.element_size())
        return out


@pytest.mark.parametrize("config", sorted(SHIPPED))
@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_layout_meets_the_memory_efficient_kernel_rules(config: str, shifted: bool, dtype: torch.dtype) -> None:
    # What the kernel is handed for every shipped config (float32 bias, as under autocast for bf16):
    # 4-D, head dim a multiple of 8, mask in q's dtype with aligned rows, stride 0 over the images,
    # and no (B*nW, nH, N, M) tensor ever allocated to build it.
    from restoration.layers.window_attention_cuda import mem_efficient_violations, sdpa_inputs

    if shifted and SHIPPED[config][3]:
        pytest.skip("OCAB is never shifted")
    images = 4
    q, kv, bias, mask = _problem(config, images, shifted, dtype=dtype)
    k, v = kv.unbind(0)
    nh, n, m = bias.shape
    with _LargestAllocation() as spy:
        qs, ks, vs, attn_mask = sdpa_inputs(q, k, v, bias, mask)
    assert mem_efficient_violations(qs, ks, vs, attn_mask) == []
    assert qs.dim() == 4 and qs.shape[-1] % 8 == 0 and attn_mask.dtype == dtype
    if shifted:  # windows share the heads axis; the per-window mask is broadcast over the images
        assert qs.shape[:2] == (images, 4 * nh) and attn_mask.stride(0) == 0
    else:
        assert qs.shape[:2] == (images * 4, nh) and attn_mask.stride(0) == 0
    full = q.shape[0] * nh * n * m
    assert spy.largest < full, (spy.largest, full)


def test_memory_efficient_rules_reject_what_the_old_path_passed() -> None:
    # the predicate is not vacuous: the former folded-mask inputs (head dim 10, per-image mask copy in
    # float32 under bf16, 3-D TBSN calls, unaligned mask rows) each break a rule
    from restoration.layers.window_attention_cuda import mem_efficient_violations

    q = torch.randn(8, 6, 64, 10)
    assert any("head dims 10" in r for r in mem_efficient_violations(q, q, q, None))
    q16 = torch.randn(8, 6, 64, 16, dtype=torch.bfloat16)
    assert any("mask dtype" in r for r in mem_efficient_violations(q16, q16, q16, torch.zeros(8, 6, 64, 64)))
    assert mem_efficient_violations(q16[0], q16[0], q16[0], None)[0].startswith("q, k, v must be 4-D")
    unaligned = torch.zeros(1, 6, 9, 9, dtype=torch.bfloat16)
    q9 = torch.randn(2, 6, 9, 16, dtype=torch.bfloat16)
    assert any("mask strides" in r for r in mem_efficient_violations(q9, q9, q9, unaligned))
    assert mem_efficient_violations(q16, q16, q16, torch.zeros(1, 6, 64, 64, dtype=torch.bfloat16)) == []


def test_cuda_layout_chunks_more_windows_than_the_grid_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    # more windows x heads than the kernel's heads axis takes: attended in chunks of whole windows
    import restoration.layers.window_attention_cuda as wac

    monkeypatch.setattr(wac, "MAX_HEADS", 13)  # 2 heads: 6 windows (12 heads) per chunk, 16 windows
    torch.manual_seed(6)
    q, k, v = (torch.randn(2 * 16, 2, 16, 4, requires_grad=True) for _ in range(3))
    bias = torch.randn(2, 16, 16, requires_grad=True)
    mask = torch.where(torch.rand(16, 16, 16) < 0.3, -100.0, 0.0)
    res = {}
    for name in ("reference", "chunked"):
        if name == "reference":
            out = window_attention(q, k, v, bias=bias, mask=mask, scale=0.5, backend="reference")
        else:
            out = wac.sdpa_window_attention(q, k, v, bias, mask, scale=0.5)
        res[name] = (out,) + torch.autograd.grad(out.sin().sum(), (q, k, v, bias))
    for got, exp in zip(res["chunked"], res["reference"]):
        assert _rel_err(got, exp) < RTOL


def _cuda_reference_errors(config: str, shifted: bool, dtype: torch.dtype) -> dict[str, float]:
    """Relative errors of window_attention(backend='sdpa') on CUDA in ``dtype`` (bias float32, as under
    autocast) against the float64 reference on the same rounded inputs: output and dq, dk, dv, dbias."""
    q, kv, bias, mask = _problem(config, images=3, shifted=shifted)
    dev = torch.device("cuda")
    q, kv = q.detach().to(dev, dtype), kv.detach().to(dev, dtype)
    bias, mask = bias.detach().to(dev), None if mask is None else mask.to(dev)
    results = {}
    for name, dt in (("truth", torch.float64), ("sdpa", dtype)):
        qi = q.to(dt).requires_grad_()
        kvi = kv.to(dt).requires_grad_()
        bi = bias.to(torch.float64 if dt == torch.float64 else torch.float32).requires_grad_()
        k, v = kvi.unbind(0)
        out = window_attention(qi, k, v, bias=bi, mask=mask, scale=0.37,
                               backend="reference" if name == "truth" else "sdpa")
        g = torch.autograd.grad(out.float().square().sum(), (qi, kvi, bi))
        results[name] = [t.double() for t in (out,) + g]
    return {w: _rel_err(a, b) for w, a, b in zip(("out", "dq", "dkv", "dbias"), results["sdpa"], results["truth"])}


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("config", ["swinir-light", "swinir-m", "hat-ocab"])
@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 2e-2)])
def test_cuda_sdpa_equals_reference_and_uses_the_memory_efficient_kernel(
    config: str, shifted: bool, dtype: torch.dtype, tol: float
) -> None:
    # tolerances: fp32 kernels accumulate in fp32 (~1e-6 here; 1e-4 leaves room for TF32-class GEMMs);
    # bf16 rounds inputs, probabilities and outputs to 8 bits of mantissa (unit roundoff 3.9e-3)
    from torch.backends.cuda import SDPAParams, can_use_efficient_attention
    from torch.profiler import ProfilerActivity, profile

    from restoration.layers.window_attention_cuda import sdpa_inputs

    if shifted and SHIPPED[config][3]:
        pytest.skip("OCAB is never shifted")
    errors = _cuda_reference_errors(config, shifted, dtype)
    assert max(errors.values()) < tol, errors
    q, kv, bias, mask = _problem(config, images=3, shifted=shifted)
    q, kv = q.detach().cuda().to(dtype).requires_grad_(), kv.detach().cuda().to(dtype).requires_grad_()
    bias, mask = bias.detach().cuda().requires_grad_(), None if mask is None else mask.cuda()
    k, v = kv.unbind(0)
    qs, ks, vs, attn_mask = sdpa_inputs(q, k, v, bias, mask)
    assert can_use_efficient_attention(SDPAParams(qs, ks, vs, attn_mask, 0.0, False, False), debug=True)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        window_attention(q, k, v, bias=bias, mask=mask, scale=0.37, backend="sdpa").sum().backward()
    names = {e.key for e in prof.key_averages()}
    assert "aten::_scaled_dot_product_efficient_attention" in names, sorted(names)
    assert not any("attention_math" in n for n in names), sorted(names)


@pytest.mark.parametrize("n", [16, 256])  # the stored kernel, the flash kernel
def test_cpu_kernels_refuse_a_second_derivative(n: int) -> None:
    # their backward is hand-written: a gradient of it (create_graph, e.g. a gradient penalty) must raise,
    # not come back silently wrong; the reference is differentiable twice
    q = torch.randn(2, 1, n, 4, requires_grad=True)
    w = torch.randn(2, 1, n, 4, requires_grad=True)  # so that the incoming gradient itself has a graph
    for backend in ("reference", "sdpa"):
        (grad,) = torch.autograd.grad((window_attention(q, q, q, backend=backend) * w).sum(), q, create_graph=True)
        if backend == "reference":
            grad.square().sum().backward()
            assert q.grad is not None and w.grad is not None
        else:
            with pytest.raises(RuntimeError, match="once_differentiable"):
                grad.square().sum().backward()


def test_cpu_stored_kernel_passes_gradcheck_in_float64() -> None:
    # the hand-written backward against finite differences (q, k, v and the bias; a shift-style mask
    # whose rows all keep a key), with two images so that the per-window mask offsets are exercised
    from restoration.layers.window_attention_cpu import CPUStoredWindowAttention

    torch.manual_seed(6)
    images, nw, nh, n, d = 2, 2, 2, 4, 3
    q, k, v = (torch.randn(images * nw, nh, n, d, dtype=torch.float64, requires_grad=True) for _ in range(3))
    bias = torch.randn(nh, n, n, dtype=torch.float64, requires_grad=True)
    mask = torch.where(torch.rand(nw, n, n) < 0.4, -100.0, 0.0).double()
    mask[:, :, 0] = 0.0
    assert torch.autograd.gradcheck(lambda *t: CPUStoredWindowAttention.apply(*t, mask, 0.45), (q, k, v, bias))
