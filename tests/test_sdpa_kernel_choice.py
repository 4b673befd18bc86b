"""Which SDPA kernel our attention calls leave torch to choose, proven on the CPU.

On a GPU, ``F.scaled_dot_product_attention`` runs the first *enabled* kernel whose input rules pass, in
torch's priority order (each ``can_use_*`` of torch's ``sdp_utils`` starts by checking that its kernel is
enabled). On an H100 torch 2.11 puts cuDNN attention first, and cuDNN has no gradient for the additive
mask, which carries SwinIR's, HAT's and TBSN's learned bias. So a training call must reach SDPA with cuDNN
and flash disabled and the memory-efficient kernel enabled, on inputs that meet its rules
(:func:`mem_efficient_violations`): then torch's choice is the memory-efficient kernel. Meta tensors run
the very code a GPU runs (no CPU-only branch) without a GPU.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import restoration.layers.window_attention_cuda as wac
from restoration.layers.masked_window_attention import MaskedWindowAttention
from restoration.layers.window_partition import shifted_window_mask
from restoration.utils.torch_setup import torch_settings


def _flags() -> dict[str, bool]:
    cuda = torch.backends.cuda
    return {"cudnn": cuda.cudnn_sdp_enabled(), "flash": cuda.flash_sdp_enabled(),
            "efficient": cuda.mem_efficient_sdp_enabled(), "math": cuda.math_sdp_enabled()}


@pytest.fixture
def sdpa_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every SDPA call: the enabled kernels at that moment and the memory-efficient rules it breaks."""
    calls: list[dict] = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):  # noqa: ANN001, ANN003
        calls.append({**_flags(), "violations": wac.mem_efficient_violations(q, k, v, attn_mask),
                      "mask_grad": attn_mask is not None and attn_mask.requires_grad})
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    return calls


def _window_problem(dtype: torch.dtype, shifted: bool, device: str = "meta") -> tuple[torch.Tensor, ...]:
    """SwinIR-light's window (8 x 8, 6 heads of 10 channels), 2 images of 2 x 2 windows."""
    nh, d, ws = 6, 10, 8
    q, k, v = (torch.randn(2 * 4, nh, ws * ws, d, dtype=dtype, device=device, requires_grad=True) for _ in range(3))
    bias = torch.randn(nh, ws * ws, ws * ws, device=device, requires_grad=True)  # float32, as under autocast
    mask = shifted_window_mask(2 * ws, 2 * ws, ws, ws // 2).to(device) if shifted else None
    return q, k, v, bias, mask


def _run_window(dtype: torch.dtype, shifted: bool) -> None:
    q, k, v, bias, mask = _window_problem(dtype, shifted)
    wac.sdpa_window_attention(q, k, v, bias, mask, scale=0.3).sum().backward()


def _run_tbsn(dtype: torch.dtype, impl: str) -> None:
    attn = MaskedWindowAttention(dim=32, window_size=8, overlap_ratio=0.5, num_heads=2, dim_head=16, bias=True,
                                 impl=impl).to(device="meta", dtype=dtype)
    attn(torch.randn(2, 32, 16, 16, device="meta", dtype=dtype, requires_grad=True)).sum().backward()


CASES = {
    "swinir-window": lambda dt: _run_window(dt, shifted=False),
    "swinir-shifted-window": lambda dt: _run_window(dt, shifted=True),
    "tbsn-sdpa": lambda dt: _run_tbsn(dt, "sdpa"),
    "tbsn-parity": lambda dt: _run_tbsn(dt, "parity"),
}


def test_cudnn_attention_has_no_gradient_for_the_mask() -> None:
    # the premise, on the installed torch: cuDNN's SDPA refuses a mask that needs a gradient (torch 2.11
    # raises in backward, later versions already in forward); the memory-efficient kernel differentiates it
    op = getattr(torch.ops.aten, "_scaled_dot_product_cudnn_attention", None)
    if op is None:
        pytest.skip("this torch has no cuDNN attention op")
    q, k, v = (torch.randn(2, 4, 64, 16, device="meta", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    bias = torch.randn(1, 4, 64, 64, device="meta", dtype=torch.bfloat16, requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'attn_bias'"):
        out = op(q, k, v, bias.expand(2, -1, -1, -1), False, 0.0, False, False, scale=0.25)
        out[0].sum().backward()
    out = torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, bias.expand(2, -1, -1, -1), True, 0.0,
                                                               False, scale=0.25)
    out[0].sum().backward()
    assert bias.grad is not None and bias.grad.shape == bias.shape


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_training_calls_leave_torch_only_the_memory_efficient_kernel(
    sdpa_calls: list[dict], case: str, dtype: torch.dtype
) -> None:
    before = _flags()
    CASES[case](dtype)
    assert sdpa_calls, "no SDPA call was made"
    for call in sdpa_calls:
        assert call["mask_grad"], call  # the hazard is present: the mask carries the learned bias
        assert call["violations"] == [], call  # the memory-efficient kernel can run it ...
        # ... and it is the first enabled kernel in torch's order: cuDNN and flash are off for the call
        assert (call["cudnn"], call["flash"], call["efficient"], call["math"]) == (False, False, True, True), call
    assert _flags() == before  # the process-wide switches are put back


@pytest.mark.parametrize("case", sorted(CASES))
def test_inference_calls_keep_torch_s_own_choice(sdpa_calls: list[dict], case: str) -> None:
    # no gradient needed: cuDNN attention is faster for inference and its forward takes the mask
    with torch.no_grad():
        if case.startswith("tbsn"):
            attn = MaskedWindowAttention(dim=32, window_size=8, overlap_ratio=0.5, num_heads=2, dim_head=16,
                                         bias=True, impl=case.split("-")[1]).to(device="meta", dtype=torch.bfloat16)
            attn(torch.randn(2, 32, 16, 16, device="meta", dtype=torch.bfloat16))
        else:
            q, k, v, bias, mask = _window_problem(torch.bfloat16, "shifted" in case)
            wac.sdpa_window_attention(q, k, v, bias, mask, scale=0.3)
    assert sdpa_calls and all(c["cudnn"] and c["flash"] and c["efficient"] for c in sdpa_calls), sdpa_calls


def test_deterministic_mode_keeps_the_fused_kernels_off(sdpa_calls: list[dict]) -> None:
    # train.deterministic disables every fused kernel; the restriction must not switch one back on
    with torch_settings(deterministic=True):
        _run_window(torch.bfloat16, shifted=True)
    assert sdpa_calls and all(
        (c["cudnn"], c["flash"], c["efficient"], c["math"]) == (False, False, False, True) for c in sdpa_calls
    ), sdpa_calls


def test_the_cpu_keeps_its_own_kernels(sdpa_calls: list[dict]) -> None:
    # the CPU differentiates the mask in every kernel: its calls (and outputs) stay as they were
    q, k, v, bias, mask = _window_problem(torch.float32, shifted=True, device="cpu")
    wac.sdpa_window_attention(q, k, v, bias, mask, scale=0.3).sum().backward()
    assert sdpa_calls and all(c["flash"] and c["efficient"] for c in sdpa_calls)


def test_restricted_call_compiles_without_graph_breaks_and_equals_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel restriction inside a compiled network (train.compile: true): Dynamo must trace the context
    # and the flag reads in one graph. The CPU stands in for the GPU by forcing the restriction on.
    monkeypatch.setattr(wac, "restricts_kernels", lambda q, m: m is not None and m.requires_grad)
    torch.manual_seed(0)
    q, k, v, bias, mask = _window_problem(torch.float32, shifted=True, device="cpu")

    def forward(q, k, v, bias):  # noqa: ANN001, ANN202
        return wac.sdpa_window_attention(q, k, v, bias, mask, scale=0.3)

    torch._dynamo.reset()
    # Dynamo traces sdpa_kernel from torch 2.6 on; torch 2.5 breaks the graph there (still equal to eager)
    fullgraph = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 6)
    compiled = torch.compile(forward, fullgraph=fullgraph, backend="aot_eager")
    results = []
    for fn in (compiled, forward):
        out = fn(q, k, v, bias)
        results.append((out, *torch.autograd.grad(out.square().sum(), (q, k, v, bias))))
    for got, exp in zip(*results):
        torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-6)
