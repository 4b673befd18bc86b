"""Every attention backend against its reference on CUDA, forward and backward (part of the GPU proof).

* Swin window attention: ``'sdpa'`` (fused kernels on CUDA) vs ``'reference'``, plain and shifted
  windows, SwinIR and HAT head sizes, fp32 and bf16 autocast; whole SwinIR/HAT networks switched
  through :func:`restoration.layers.config.set_attn_backend`.
* TBSN's masked window attention: ``'sdpa'`` and ``'parity'`` vs ``'reference'``.
* Neighbourhood attention (DSwinIR): ``'flex'`` (compiled FlexAttention) and, where installed,
  ``'natten'`` vs ``'reference'``, on DSwinIR's three neighbourhoods per layer.

Errors are the norm of the difference relative to the norm of the reference, per tensor.
"""

from __future__ import annotations

import pytest
import torch

from restoration import build_network
from restoration.layers import config
from restoration.layers.masked_window_attention import MaskedWindowAttention
from restoration.layers.config import resolve_backend
from restoration.layers.neighborhood_attention import available_backends, neighborhood_attention_2d
from restoration.layers.window_attention import window_attention
from restoration.layers.window_partition import shifted_window_mask

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (GPU proof: pytest -m cuda, docs/gpu.md)"),
]

DEVICE = torch.device("cuda", 0)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# fp32: both sides accumulate in fp32 (only the summation order differs); bf16: 8-bit mantissas
TOLERANCE = {"fp32": 1e-4, "bf16": 2e-2}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12))


def outputs_and_grads(fn, inputs: list[torch.Tensor], dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    """``[out, d(out . g)/d input for each input]`` with ``fn`` under autocast when ``dtype`` is not fp32."""
    with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        out = fn()
    g = torch.randn(out.shape, device=out.device, generator=torch.Generator(out.device).manual_seed(seed))
    return [out, *torch.autograd.grad(out, inputs, g.to(out.dtype))]


def assert_close_to_reference(got: list[torch.Tensor], ref: list[torch.Tensor], tol: float, what: str) -> None:
    errors = [rel_err(a, b) for a, b in zip(got, ref)]
    assert max(errors) <= tol, f"{what}: relative errors (output, grads) {['%.1e' % e for e in errors]} > {tol}"


# --------------------------------------------------------------------------------------- window attention
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("shifted", [False, True], ids=["plain", "shifted"])
@pytest.mark.parametrize("window,heads,head_dim", [(8, 6, 10), (8, 6, 30), (16, 6, 24)],
                         ids=["SwinIR-light", "SwinIR-M", "HAT-S"])
def test_window_attention_sdpa_matches_reference(window: int, heads: int, head_dim: int, shifted: bool, dtype: str) -> None:
    side, batch = 2 * window, 2
    n_win, n = (side // window) ** 2, window * window
    g = torch.Generator(DEVICE).manual_seed(0)
    q, k, v = (torch.randn(batch * n_win, heads, n, head_dim, device=DEVICE, generator=g).requires_grad_() for _ in range(3))
    bias = (0.5 * torch.randn(heads, n, n, device=DEVICE, generator=g)).requires_grad_()
    mask = shifted_window_mask(side, side, window, window // 2, DEVICE) if shifted else None
    inputs = [q, k, v, bias]
    results = {backend: outputs_and_grads(lambda: window_attention(q, k, v, bias=bias, mask=mask, backend=backend),
                                          inputs, DTYPES[dtype]) for backend in ("reference", "sdpa")}
    assert_close_to_reference(results["sdpa"], results["reference"], TOLERANCE[dtype], "sdpa vs reference")


NETWORKS = {
    "SwinIR": {"type": "SwinIR", "upscale": 2, "img_size": 16, "window_size": 8, "depths": [2, 2], "embed_dim": 24,
               "num_heads": [2, 2], "mlp_ratio": 2, "drop_path_rate": 0.0, "upsampler": "pixelshuffle"},
    "HAT": {"type": "HAT", "upscale": 2, "img_size": 16, "window_size": 8, "compress_ratio": 3, "squeeze_factor": 4,
            "depths": [2], "embed_dim": 24, "num_heads": [2], "mlp_ratio": 2, "drop_path_rate": 0.0},
}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("arch", list(NETWORKS))
def test_network_backend_switch_gives_the_same_training_step(arch: str, dtype: str) -> None:
    """``config.set_attn_backend`` switches a whole network; output and every parameter gradient agree."""
    torch.manual_seed(0)
    net = build_network(NETWORKS[arch]).to(DEVICE).train()
    x = torch.rand(2, 3, 24, 32, device=DEVICE)  # not a multiple of the window: padding paths too
    params = [p for p in net.parameters() if p.requires_grad]
    previous = config.get_attn_backend()
    results = {}
    try:
        for backend in ("reference", "sdpa"):
            config.set_attn_backend(backend)
            results[backend] = outputs_and_grads(lambda: net(x), params, DTYPES[dtype])
    finally:
        config.set_attn_backend(previous)
    # output and ALL parameter gradients as one vector: in bf16 a parameter whose gradient nearly
    # cancels (a bias) has a large relative error on its own under either backend
    sdpa, ref = ([r[0], torch.cat([t.float().flatten() for t in r[1:]])] for r in (results["sdpa"], results["reference"]))
    tol = {"fp32": 1e-4, "bf16": 3e-2}[dtype]
    assert_close_to_reference(sdpa, ref, tol, f"{arch} sdpa vs reference")


# ------------------------------------------------------------------------------ TBSN masked window attention
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("impl", ["sdpa", "parity"])
def test_tbsn_masked_attention_matches_reference(impl: str, dtype: str) -> None:
    torch.manual_seed(0)
    attn = MaskedWindowAttention(32, window_size=8, overlap_ratio=0.5, num_heads=2, dim_head=16, bias=False).to(DEVICE)
    x = torch.randn(2, 32, 32, 32, device=DEVICE, requires_grad=True)
    inputs = [x, *(p for p in attn.parameters() if p.requires_grad)]
    results = {}
    for name in ("reference", impl):
        attn.impl = name
        results[name] = outputs_and_grads(lambda: attn(x), inputs, DTYPES[dtype])
    assert_close_to_reference(results[impl], results["reference"], TOLERANCE[dtype], f"TBSN {impl} vs reference")


# --------------------------------------------------------------------------- neighbourhood attention (DSwinIR)
# DSwinIR's three head groups per layer: (k, d), (k, 2), (k + 2, d) with k = 3, d = 1
NEIGHBOURHOODS = [(3, 1), (3, 2), (5, 1)]


def _na_inputs(head_dim: int, with_bias: bool, kernel: int) -> list[torch.Tensor]:
    g = torch.Generator(DEVICE).manual_seed(0)
    q, k, v = (torch.randn(2, 2, 16, 20, head_dim, device=DEVICE, generator=g).requires_grad_() for _ in range(3))
    if not with_bias:
        return [q, k, v]
    return [q, k, v, (0.1 * torch.randn(2, 2 * kernel - 1, 2 * kernel - 1, device=DEVICE, generator=g)).requires_grad_()]


@pytest.mark.skipif("flex" not in available_backends(), reason="this torch has no FlexAttention")
@pytest.mark.parametrize("kernel,dilation", NEIGHBOURHOODS)
def test_neighborhood_attention_flex_matches_reference(kernel: int, dilation: int) -> None:
    inputs = _na_inputs(16, with_bias=True, kernel=kernel)
    q, k, v, rpb = inputs
    results = {backend: outputs_and_grads(
        lambda: neighborhood_attention_2d(q, k, v, kernel, dilation, rpb=rpb, backend=backend), inputs, torch.float32)
        for backend in ("reference", "flex")}
    assert_close_to_reference(results["flex"], results["reference"], 1e-4, f"flex k={kernel} d={dilation}")


@pytest.mark.skipif("natten" not in available_backends(), reason="natten (>= 0.20) is not installed")
@pytest.mark.parametrize("kernel,dilation", NEIGHBOURHOODS)
def test_neighborhood_attention_natten_matches_reference(kernel: int, dilation: int) -> None:
    inputs = _na_inputs(32, with_bias=False, kernel=kernel)  # natten's fused op takes no bias
    q, k, v = inputs
    results = {backend: outputs_and_grads(
        lambda: neighborhood_attention_2d(q, k, v, kernel, dilation, backend=backend), inputs, torch.float32)
        for backend in ("reference", "natten")}
    assert_close_to_reference(results["natten"], results["reference"], 1e-3, f"natten k={kernel} d={dilation}")


def test_auto_picks_a_fused_neighborhood_backend_on_cuda() -> None:
    """What DSwinIR (``na_backend: auto``) runs on a GPU: natten without a bias, else flex."""
    fused = [b for b in ("natten", "flex") if b in available_backends()]
    if not fused:
        pytest.skip("neither natten nor FlexAttention is available")
    assert resolve_backend("neighborhood", "auto", DEVICE, has_bias=True, head_dim=16, needs_grad=True) == "flex"
    expected = "natten" if "natten" in fused else "flex"
    assert resolve_backend("neighborhood", "auto", DEVICE, has_bias=False, head_dim=32, needs_grad=True) == expected
