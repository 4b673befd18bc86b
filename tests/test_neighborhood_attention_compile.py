"""The compiled ``flex`` neighbourhood-attention path: bounded compiles over a whole DSwinIR network,
cached block masks equal to ``create_block_mask``'s, and a warned reference fallback (never a silent
dense one) when flex cannot serve a shape.

On the CPU the compiled path runs with torch.compile's ``eager`` backend (Dynamo traces, guards and
recompiles exactly as on CUDA; only Inductor's code generation is skipped), injected through
:func:`restoration.layers.neighborhood_attention_flex.flex_attention_fn`. The ``cuda`` tests repeat
the checks with Inductor on a GPU.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import restoration
import restoration.layers.neighborhood_attention_flex as naf
from restoration.layers.ms_dswin import MSDeformableNeighborhoodAttention
from restoration.layers.neighborhood_attention import available_backends, neighborhood_attention_2d

pytestmark = pytest.mark.skipif("flex" not in available_backends(), reason="flex needs torch >= 2.6")


# The torch warning that means flex ran uncompiled, i.e. materialised the HW x HW score matrix.
_DENSE_WARNING = "without torch.compile"
_SHAPE_WARNING = "flex neighbourhood attention cannot serve"


@pytest.fixture
def fresh_dynamo():
    """Dynamo caches (and the recompile count) live on flex_attention's code object: start empty."""
    torch._dynamo.reset()
    naf.clear_caches()
    yield
    torch._dynamo.reset()
    naf.clear_caches()


class _CountingBackend:
    """torch.compile backend that counts the graphs Dynamo hands over, then runs ``inner``."""

    def __init__(self, inner=None):
        self.graphs = 0
        self.inner = inner

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        return gm.forward if self.inner is None else self.inner(gm, example_inputs)


@pytest.fixture
def compiled_flex(monkeypatch, fresh_dynamo):
    """Route the flex backend through ``torch.compile(flex_attention)`` with a counting backend."""

    def use(inner=None) -> _CountingBackend:
        backend = _CountingBackend(inner)
        compiled = naf.compiled_flex_attention(backend)  # the production compile options
        monkeypatch.setattr(naf, "flex_attention_fn", lambda device: compiled)
        return backend

    return use


def _set_na_backend(net: torch.nn.Module, backend: str) -> None:
    for m in net.modules():
        if isinstance(m, MSDeformableNeighborhoodAttention):
            m.backend = backend


def _limit_name() -> str:
    """Dynamo's recompile-limit setting: its name since torch 2.7, and before."""
    return "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"


def _recompile_limit() -> int:
    return getattr(torch._dynamo.config, _limit_name())


def test_default_dswinir_flex_compiles_a_bounded_number_of_graphs(compiled_flex):
    """Every (size, heads, kernel, dilation) of the default DSwinIR (dim 48, heads [3, 6, 12, 24],
    kernel 3, dilation 1 -> neighbourhoods (3, 1), (3, 2), (5, 1) at 4 sizes: 12 geometries, 2 head
    dims) plus two new input sizes. Before tensor-only mask/score mods this compiled 8 graphs, hit
    ``recompile_limit`` in the first forward and ran the rest uncompiled (dense)."""
    backend = compiled_flex()
    # one block per level is enough: the blocks of a level share its geometry
    net = restoration.build_network({"type": "DSwinIR", "num_blocks": [1, 1, 1, 1],
                                     "num_refinement_blocks": 0, "na_backend": "flex"}).eval()
    torch.manual_seed(0)
    inputs = [torch.rand(1, 3, h, w) for h, w in ((48, 48), (48, 56), (56, 48))]
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        outs = [net(inputs[0])]
        assert len(naf._GEOMETRIES) == 12  # more geometries than the recompile limit (8)
        first = backend.graphs
        outs += [net(x) for x in inputs[1:]]
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if _DENSE_WARNING in m or _SHAPE_WARNING in m], messages
    # torch 2.14: batch*heads 1 vs >= 2, one vs several 128-blocks (Dynamo specialises sizes 0/1),
    # head dim 16 vs 32 (encoder vs decoder level 1)
    assert first <= 4 < _recompile_limit(), first
    assert backend.graphs == first  # new input sizes reuse the graphs
    assert len(naf._GEOMETRIES) == naf.GEOMETRY_CACHE_SIZE  # 36 geometries seen, the cache is bounded
    _set_na_backend(net, "reference")
    with torch.no_grad():
        for x, out in zip(inputs, outs):
            ref = net(x)
            assert torch.allclose(out, ref, atol=1e-4), (out - ref).abs().max()


CASES = [(5, 7, 3, 1, True), (7, 6, 3, 2, True), (9, 11, 5, 1, False), (11, 9, 3, 3, True),
         (10, 13, 5, 2, True), (8, 7, 7, 1, False), (16, 20, 7, 2, True)]  # (H, W, kernel, dilation, bias)


def test_compiled_flex_equals_reference_with_one_graph_for_all_geometries(compiled_flex):
    backend = compiled_flex()
    g = torch.Generator().manual_seed(0)
    for h, w, ks, dil, bias in CASES:
        q, k, v = (torch.randn(2, 3, h, w, 16, generator=g) for _ in range(3))
        rpb = torch.randn(3, 2 * ks - 1, 2 * ks - 1, generator=g) if bias else None
        out = neighborhood_attention_2d(q, k, v, ks, dil, rpb=rpb, backend="flex")
        ref = neighborhood_attention_2d(q, k, v, ks, dil, rpb=rpb, backend="reference")
        assert torch.allclose(out, ref, atol=1e-5), (h, w, ks, dil, (out - ref).abs().max())
    # 7 geometries, 3 graphs: with / without score_mod, one vs several 128-blocks (Dynamo specialises 1)
    assert backend.graphs <= 3, backend.graphs


def test_recompile_limit_hit_warns_once_and_uses_reference(compiled_flex, monkeypatch):
    backend = compiled_flex()
    monkeypatch.setattr(naf, "FLEX_RECOMPILE_LIMIT", 1)  # flex raises Dynamo's limit to at least this
    q1 = torch.randn(1, 1, 8, 8, 16)  # batch*heads 1: Dynamo specialises it
    q2 = torch.randn(1, 2, 8, 8, 16)  # batch*heads 2: needs a second graph
    with torch._dynamo.config.patch(**{_limit_name(): 1}), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        neighborhood_attention_2d(q1, q1, q1, 3, backend="flex")
        outs = [neighborhood_attention_2d(q2, q2, q2, 3, backend="flex") for _ in range(2)]
    messages = [str(w.message) for w in caught]
    refused = [m for m in messages if _SHAPE_WARNING in m]
    assert len(refused) == 1 and "q (1, 2, 8, 8, 16)" in refused[0] and "'reference'" in refused[0], messages
    assert not [m for m in messages if _DENSE_WARNING in m], messages
    assert backend.graphs == 1
    ref = neighborhood_attention_2d(q2, q2, q2, 3, backend="reference")
    assert all(torch.equal(out, ref) for out in outs)


def test_flex_calls_raise_a_low_recompile_limit(compiled_flex):
    backend = compiled_flex()
    q1, q2 = torch.randn(1, 1, 8, 8, 16), torch.randn(1, 2, 8, 8, 16)
    with torch._dynamo.config.patch(**{_limit_name(): 1}), warnings.catch_warnings():
        warnings.simplefilter("error")  # neither a refusal nor an uncompiled flex
        for q in (q1, q2):
            neighborhood_attention_2d(q, q, q, 3, backend="flex")
        assert _recompile_limit() == 1  # restored after each call
    assert backend.graphs == 2


def test_compile_failure_warns_and_uses_reference(compiled_flex):
    def broken(gm, example_inputs):
        raise RuntimeError("no code generator for this shape")

    compiled_flex(broken)
    q = torch.randn(1, 2, 6, 7, 8)
    with pytest.warns(RuntimeWarning, match=r"cannot serve q \(1, 2, 6, 7, 8\).*kernel_size=3, dilation=2"):
        out = neighborhood_attention_2d(q, q, q, 3, 2, backend="flex")
    assert torch.equal(out, neighborhood_attention_2d(q, q, q, 3, 2, backend="reference"))


def test_flex_inside_a_compiled_network_equals_reference(fresh_dynamo):
    """``compile: true`` in the options compiles the whole network: flex is traced into its graph
    (fullgraph: no break around the geometry or the block mask) and the cache is left alone."""
    torch.manual_seed(0)
    attn = MSDeformableNeighborhoodAttention(24, 3, kernel_size=3, backend="reference").eval()
    x = torch.rand(2, 24, 12, 14)
    with torch.no_grad():
        ref = attn(x)
        attn.backend = "flex"
        out = torch.compile(attn, backend="eager", fullgraph=True)(x)
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()
    assert len(naf._GEOMETRIES) == 0


def test_geometry_cache_reuses_and_is_bounded(fresh_dynamo):
    first = naf.na_geometry(9, 10, 3, 2, torch.device("cpu"))
    assert naf.na_geometry(9, 10, 3, 2, "cpu") is first
    assert naf.na_geometry(9, 10, 3, 1, "cpu") is not first
    sizes = [(6 + i, 6) for i in range(naf.GEOMETRY_CACHE_SIZE + 5)]
    for h, w in sizes:
        naf.na_geometry(h, w, 3, 1, "cpu")
        naf.na_geometry(9, 10, 3, 2, "cpu")  # kept alive by use
    assert len(naf._GEOMETRIES) == naf.GEOMETRY_CACHE_SIZE
    assert naf.na_geometry(9, 10, 3, 2, "cpu") is first
    assert (6, 6, 3, 1, torch.device("cpu")) not in naf._GEOMETRIES  # least recently used: evicted


def test_geometry_cache_is_bounded_in_bytes(fresh_dynamo, monkeypatch):
    one = naf.na_geometry(64, 64, 3, 1, "cpu")
    # table 9 x 4096 int32; 32 x 32 block masks: kv/q counts and indices, partial and full
    assert one.nbytes == 9 * 4096 * 4 + 4 * (32 + 32 * 32) * 4
    monkeypatch.setattr(naf, "GEOMETRY_CACHE_BYTES", 2 * one.nbytes)
    for ks in (5, 7, 9):
        naf.na_geometry(64, 64, ks, 1, "cpu")
    assert [key[2] for key in naf._GEOMETRIES] == [7, 9]
    monkeypatch.setattr(naf, "GEOMETRY_CACHE_BYTES", 0)
    newest = naf.na_geometry(8, 8, 3, 1, "cpu")
    assert list(naf._GEOMETRIES.values()) == [newest]  # the entry being used always stays


@pytest.mark.parametrize("h,w,ks,dil", [(6, 6, 3, 2), (13, 11, 3, 2), (20, 20, 5, 1), (16, 24, 7, 1), (17, 19, 3, 3)])
def test_block_mask_equals_create_block_mask(h, w, ks, dil):
    from torch.nn.attention.flex_attention import create_block_mask

    table = naf.position_table(h, w, ks, dil)
    mask_mod = naf._na_mask_mod(table)
    ours = naf.na_block_mask(h, w, ks, dil, mask_mod)
    theirs = create_block_mask(mask_mod, None, None, h * w, h * w, device="cpu")
    assert torch.equal(ours.to_dense(), theirs.to_dense())
    assert torch.equal(ours.kv_num_blocks, theirs.kv_num_blocks)
    assert torch.equal(ours.full_kv_num_blocks, theirs.full_kv_num_blocks)
    assert ours.seq_lengths == theirs.seq_lengths == (h * w, h * w)


def _inductor():
    return torch._dynamo.lookup_backend("inductor")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dil", [1, 2])
def test_cuda_flex_equals_reference_forward_backward_k7(compiled_flex, dil):
    backend = compiled_flex(_inductor())
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(2, 4, 24, 30, 32, device="cuda", generator=g, requires_grad=True) for _ in range(3))
    rpb = torch.randn(4, 13, 13, device="cuda", generator=g, requires_grad=True)
    leaves = [q, k, v, rpb]
    ref = neighborhood_attention_2d(q, k, v, 7, dil, rpb=rpb, backend="reference")
    grad_out = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, leaves, grad_out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = neighborhood_attention_2d(q, k, v, 7, dil, rpb=rpb, backend="flex")
        grads = torch.autograd.grad(out, leaves, grad_out)
    assert not [str(w.message) for w in caught if _SHAPE_WARNING in str(w.message)]
    assert backend.graphs == 1
    assert torch.allclose(out, ref, atol=1e-4), (out - ref).abs().max()
    for name, a, b in zip("qkv", grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-3), (name, (a - b).abs().max())
    assert torch.allclose(grads[3], ref_grads[3], rtol=1e-3, atol=1e-2), (grads[3] - ref_grads[3]).abs().max()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_default_dswinir_flex_compiles_a_bounded_number_of_graphs(compiled_flex):
    """Training step of the default network (batch 2, patch 128) then two validation sizes with Inductor;
    peak memory stays far below one dense HW x HW score matrix of the largest level."""
    backend = compiled_flex(_inductor())
    net = restoration.build_network({"type": "DSwinIR", "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                                     "na_backend": "flex"}).cuda()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net(torch.rand(2, 3, 128, 128, device="cuda")).mean().backward()
        first = backend.graphs
        net.eval()
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            for side in (96, 160):
                net(torch.rand(1, 3, side, side, device="cuda"))
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if _DENSE_WARNING in m or _SHAPE_WARNING in m], messages
    assert first <= 4 < _recompile_limit(), first
    # no_grad and batch*heads 1 are specialisations of their own; all stay below Dynamo's default limit
    assert backend.graphs < _recompile_limit(), backend.graphs
    dense_scores = (160 * 160) ** 2 * 4  # one head's fp32 score matrix at level 1: 2.4 GiB
    assert torch.cuda.max_memory_allocated() < dense_scores / 4


def test_benchmark_counts_compiles_in_warmup_and_timed_steps(fresh_dynamo):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "scripts" / "benchmark" / "benchmark_neighborhood_attention.py"
    spec = importlib.util.spec_from_file_location("bench_na", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    x = torch.rand(2, 4)
    warm = bench.time_steps(torch.compile(torch.nn.Linear(4, 3), backend="eager"), x, repeats=2, warmup=1)
    assert (warm["warmup_graphs"], warm["timed_graphs"]) == (1, 0) and warm["seconds"] > 0
    # new input width: Dynamo's cache for Linear's code has no graph for it yet
    cold = bench.time_steps(torch.compile(torch.nn.Linear(5, 3), backend="eager"), torch.rand(2, 5), repeats=1,
                            warmup=0)
    assert cold["timed_graphs"] == 1  # reported, not hidden in the time
