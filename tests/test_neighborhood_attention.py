"""Neighbourhood attention: the reference op against a brute-force NATTEN transcription, and every
available backend against the reference (forward and backward)."""

from __future__ import annotations

import pytest
import torch

from restoration.layers.neighborhood_attention import (
    available_backends,
    neighborhood_attention_2d,
    neighborhood_indices_1d,
)


# ---- NATTEN 0.17.5 CPU-naive kernel window rules (natten_cpu_commons.h), transcribed line by line.
# They are written independently of our clamp formula, which is what makes this the proof.
def _natten_window_start(index: int, length: int, ks: int, dil: int) -> int:
    ns = ks // 2
    dilation_idx = index % dil
    index_pdp = index // dil
    length_pdp = (length + dil - 1) // dil
    num_padded = length_pdp * dil - length
    length_pdp -= 1 if dilation_idx >= dil - num_padded else 0
    start = max(index_pdp - ns, 0) + (index_pdp + ns >= length_pdp) * (length_pdp - index_pdp - ns - 1)
    return start * dil + dilation_idx


def _natten_pb_start(index: int, length: int, ks: int, dil: int) -> int:
    ns = ks // 2
    if dil <= 1:
        return ns + (index < ns) * (ns - index) + (index + ns >= length) * (length - index - 1 - ns)
    if index - ns * dil < 0:
        return ks - 1 - index // dil
    if index + ns * dil >= length:
        return (length - index - 1) // dil
    return ns


def _dense_natten_index(h, w, ks, dil):
    """The transcribed rules in dense form: a (HW, HW) float64 mask (0 for the query's neighbours,
    -inf elsewhere) and the bias-table row/column ``iy, ix`` of every (query, neighbour) pair."""
    mask = torch.full((h * w, h * w), float("-inf"), dtype=torch.float64)
    iy = torch.zeros(h * w, h * w, dtype=torch.long)
    ix = torch.zeros(h * w, h * w, dtype=torch.long)
    for i in range(h):
        ni, pi = _natten_window_start(i, h, ks, dil), _natten_pb_start(i, h, ks, dil)
        for j in range(w):
            nj, pj = _natten_window_start(j, w, ks, dil), _natten_pb_start(j, w, ks, dil)
            for a in range(ks):
                for bb in range(ks):
                    key = (ni + a * dil) * w + nj + bb * dil
                    mask[i * w + j, key] = 0.0
                    iy[i * w + j, key], ix[i * w + j, key] = pi + a, pj + bb
    return mask, iy, ix


def _dense_natten(q, k, v, ks, dil, rpb, scale):
    """Full (HW x HW) attention with a -inf mask and bias built from the transcribed rules."""
    b, n, h, w, c = q.shape
    mask, iy, ix = _dense_natten_index(h, w, ks, dil)
    bias = 0.0 if rpb is None else rpb.double()[:, iy, ix]  # only read where the mask is 0
    qf, kf, vf = (t.double().reshape(b, n, h * w, c) for t in (q, k, v))
    logits = qf @ kf.transpose(-1, -2) * scale + mask + bias
    return (logits.softmax(-1) @ vf).reshape(b, n, h, w, c)


CASES = [  # (H, W, kernel, dilation, bias)
    (5, 7, 3, 1, True),
    (7, 6, 3, 2, True),
    (9, 11, 5, 1, False),
    (11, 9, 3, 3, True),
    (10, 13, 5, 2, True),
    (8, 7, 7, 1, False),
]


def _inputs(h, w, ks, heads=2, c=4, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, heads, h, w, c, generator=g, dtype=torch.float64) for _ in range(3))
    rpb = torch.randn(heads, 2 * ks - 1, 2 * ks - 1, generator=g, dtype=torch.float64) if bias else None
    return q, k, v, rpb


@pytest.mark.parametrize("h,w,ks,dil,bias", CASES)
def test_reference_equals_bruteforce_natten_semantics(h, w, ks, dil, bias):
    q, k, v, rpb = _inputs(h, w, ks, bias=bias)
    out = neighborhood_attention_2d(q, k, v, ks, dil, rpb=rpb, scale=0.7, backend="reference")
    expected = _dense_natten(q, k, v, ks, dil, rpb, 0.7)
    assert torch.allclose(out, expected, atol=1e-10), (out - expected).abs().max()


def test_window_shifts_inward_at_border():
    keys, bias_idx = neighborhood_indices_1d(7, 3, 1)
    assert keys[0].tolist() == [0, 1, 2] and keys[6].tolist() == [4, 5, 6] and keys[3].tolist() == [2, 3, 4]
    assert bias_idx[0].tolist() == [2, 3, 4] and bias_idx[3].tolist() == [1, 2, 3]
    keys, _ = neighborhood_indices_1d(7, 3, 2)  # sub-grids {0,2,4,6} and {1,3,5}
    assert keys[0].tolist() == [0, 2, 4] and keys[5].tolist() == [1, 3, 5] and keys[6].tolist() == [2, 4, 6]


def test_errors_name_minimum_size_and_backends():
    q = torch.randn(1, 1, 5, 5, 4)
    with pytest.raises(ValueError, match="at least 6x6"):
        neighborhood_attention_2d(q, q, q, 3, 2)
    with pytest.raises(ValueError, match=r"available on this machine: \['auto', 'reference'"):
        neighborhood_attention_2d(q, q, q, 3, 1, backend="cudnn")
    with pytest.raises(ValueError, match="odd"):
        neighborhood_attention_2d(q, q, q, 4, 1)


OTHER_BACKENDS = [b for b in available_backends() if b != "reference"]


@pytest.mark.parametrize("backend", OTHER_BACKENDS or [pytest.param("none", marks=pytest.mark.skip)])
@pytest.mark.parametrize("h,w,ks,dil,bias", [CASES[0], CASES[1], CASES[4]])
def test_backend_matches_reference(backend, h, w, ks, dil, bias):
    if backend == "natten" and bias:
        bias = False  # fused natten has no bias; the bias path is covered by 'flex'
    q, k, v, rpb = _inputs(h, w, ks, c=8, bias=bias, seed=1)  # natten wants head_dim 2^n >= 8
    q, k, v = (t.float().requires_grad_() for t in (q, k, v))
    rpb = rpb.float().requires_grad_() if rpb is not None else None
    leaves = [t for t in (q, k, v, rpb) if t is not None]
    ref = neighborhood_attention_2d(q, k, v, ks, dil, rpb=rpb, backend="reference")
    grad_out = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, leaves, grad_out)
    if q.device.type == "cpu":
        # FlexAttention (and natten's CPU path, built on it) is forward-only on CPU
        with pytest.raises(ValueError, match="no backward pass on CPU"):
            neighborhood_attention_2d(q, k, v, ks, dil, rpb=rpb, backend=backend)
        with torch.no_grad():
            out = neighborhood_attention_2d(q, k, v, ks, dil, rpb=rpb, backend=backend)
        assert torch.allclose(out, ref, atol=1e-5)
        return
    out = neighborhood_attention_2d(q, k, v, ks, dil, rpb=rpb, backend=backend)
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()
    grads = torch.autograd.grad(out, leaves, grad_out)
    for g, rg in zip(grads, ref_grads):
        assert torch.allclose(g, rg, atol=1e-4), (g - rg).abs().max()


def test_reference_backward_matches_dense():
    q, k, v, rpb = _inputs(6, 7, 3, bias=True, seed=2)
    leaves = [t.requires_grad_() for t in (q, k, v, rpb)]
    out = neighborhood_attention_2d(q, k, v, 3, 2, rpb=rpb, scale=0.5, backend="reference")
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, leaves, g)
    dense = _dense_natten_diff(q, k, v, 3, 2, rpb, 0.5)
    dense_grads = torch.autograd.grad(dense, leaves, g)
    for a, b in zip(grads, dense_grads):
        assert torch.allclose(a, b, atol=1e-10)


def _dense_natten_diff(q, k, v, ks, dil, rpb, scale):
    """Differentiable dense variant (bias gathered with indices from the transcribed rules)."""
    b, n, h, w, c = q.shape
    mask, iy, ix = _dense_natten_index(h, w, ks, dil)
    logits = q.reshape(b, n, h * w, c) @ k.reshape(b, n, h * w, c).transpose(-1, -2) * scale
    logits = logits + mask + rpb[:, iy, ix]
    return (logits.softmax(-1) @ v.reshape(b, n, h * w, c)).reshape(b, n, h, w, c)


def test_dswinir_rejects_unknown_backend_at_construction_listing_available():
    import restoration
    from restoration.archs.dswinir.dswinir_arch import DSwinIR
    from restoration.archs.dswinir.msdeformable_nair_arch import MSDeformableNAIR

    listed = r"available on this machine: \['auto', 'reference'" + (", 'flex'" if "flex" in available_backends() else "")
    with pytest.raises(ValueError, match=r"DSwinIR: attn_backend 'cuda_flex' is not available for neighborhood "
                                         r"attention; " + listed):
        restoration.build_network({"type": "DSwinIR", "dim": 6, "num_blocks": [1, 1, 1, 1], "attn_backend": "cuda_flex"})
    from restoration.schema import bind_arguments  # check_options reads the complete bound arguments

    # the old name of the option still works and is checked the same way
    problems = MSDeformableNAIR.check_options(bind_arguments(MSDeformableNAIR, {"heads": [3, 6, 12, 24], "na_backend": "Flex"}))
    assert len(problems) == 1 and "attn_backend 'Flex' is not available" in problems[0], problems
    assert DSwinIR.check_options(bind_arguments(DSwinIR, {"na_backend": "reference"})) == []
    assert DSwinIR.check_options(bind_arguments(DSwinIR, {"attn_backend": "reference"})) == []


def test_one_attention_switch_per_op() -> None:
    """One option name (attn_backend) per network, one process-wide default per op, one list per op."""
    from restoration.layers import config
    from restoration.layers.masked_window_attention import MaskedWindowAttention

    assert config.available_backends("window") == ["auto", "reference", "sdpa"]
    assert config.available_backends("masked_window") == ["auto", "reference", "sdpa", "parity"]
    assert config.available_backends("neighborhood")[:2] == ["auto", "reference"]
    with pytest.raises(ValueError, match="attn_backend 'parity' is not available for window attention"):
        config.set_attn_backend("parity")
    layer = MaskedWindowAttention(8, 4, 0.5, 2, 4, False)  # attn_backend None: the op's default, read per call
    assert layer.resolved_impl() == "parity"  # 'auto' = parity for an even window
    try:
        config.set_attn_backend("reference", op="masked_window")
        assert layer.resolved_impl() == "reference"
        config.set_attn_backend("reference", op="neighborhood")
        q = torch.rand(1, 1, 8, 8, 4)
        assert torch.allclose(neighborhood_attention_2d(q, q, q, 3, backend=None),
                              neighborhood_attention_2d(q, q, q, 3, backend="reference"))
    finally:
        config.set_attn_backend("auto", op="masked_window")
        config.set_attn_backend("auto", op="neighborhood")


def test_auto_is_the_reference_in_deterministic_mode() -> None:
    from restoration.layers.config import resolve_backend
    from restoration.utils.torch_setup import torch_settings

    cuda = torch.device("cuda")  # selection only; nothing runs on it
    assert resolve_backend("neighborhood", "auto", cuda, has_bias=True) in ("flex", "reference")
    with torch_settings(deterministic=True):
        assert resolve_backend("neighborhood", "auto", cuda, has_bias=True) == "reference"
        assert resolve_backend("neighborhood", "auto", cuda, has_bias=False, head_dim=32) == "reference"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bias", [True, False])
def test_reference_backward_under_cuda_autocast_rules(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype,
                                                      bias: bool) -> None:
    # CUDA autocast runs softmax in float32, the CPU's keeps bf16/fp16: the saved attention weights are then
    # float32 while q, k, v are not, and a backward mixing them raised. Emulate CUDA's rule on the CPU and
    # compare forward and backward with a float64 run (tolerances: bf16 unit roundoff 3.9e-3, fp16 4.9e-4).
    real_softmax = torch.Tensor.softmax

    def cuda_rule_softmax(self: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # noqa: ANN002, ANN003
        return real_softmax(self.float() if torch.is_autocast_enabled("cpu") else self, *args, **kwargs)

    torch.manual_seed(3)
    b, heads, h, w, c, ks, dil = 2, 2, 9, 11, 8, 3, 2
    x = torch.randn(b, h, w, c * heads)
    proj = torch.nn.Linear(c * heads, 3 * c * heads)
    rpb = (0.3 * torch.randn(heads, 2 * ks - 1, 2 * ks - 1)).requires_grad_() if bias else None
    results = {}
    for name in ("autocast", "float64"):
        net = proj.double() if name == "float64" else proj.float()
        net.zero_grad()
        table = None if rpb is None else (rpb.double() if name == "float64" else rpb)
        xi = x.to(torch.float64 if name == "float64" else torch.float32).requires_grad_()
        with monkeypatch.context() as m, torch.autocast("cpu", dtype=dtype, enabled=name == "autocast"):
            m.setattr(torch.Tensor, "softmax", cuda_rule_softmax)
            qkv = net(xi).reshape(b, h, w, 3, heads, c).permute(3, 0, 4, 1, 2, 5)
            out = neighborhood_attention_2d(qkv[0], qkv[1], qkv[2], ks, dil, rpb=table, backend="reference")
            if name == "autocast":
                assert out.dtype == dtype  # the emulation is live: the weights were float32, the output is not
        # backward outside autocast, as in training (the CPU would otherwise run it under autocast too)
        grads = torch.autograd.grad(out.double().square().sum(), [xi, net.weight] + ([table] if bias else []))
        results[name] = [out.detach().double(), *(g.double() for g in grads)]
    tol = 3e-2 if dtype == torch.bfloat16 else 5e-3
    for got, exp, what in zip(results["autocast"], results["float64"], ("out", "dx", "dweight", "drpb")):
        assert float((got - exp).norm() / exp.norm()) < tol, what
