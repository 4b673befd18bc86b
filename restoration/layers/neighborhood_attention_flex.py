"""The ``"flex"`` backend of :func:`~restoration.layers.neighborhood_attention.neighborhood_attention_2d`.

Neighbourhood attention expressed for :func:`torch.nn.attention.flex_attention`: the window is a
``mask_mod``, the relative-position bias a ``score_mod``, and the sparsity a :class:`BlockMask`.
Three things make it usable for a whole network rather than one call:

* **Geometry is data, not code.** ``mask_mod``/``score_mod`` close over *tensors* only (a per-position
  table, see :func:`position_table`, and the bias table), never over Python ints. Dynamo specialises
  on every captured int (one compiled graph per size x kernel x dilation: DSwinIR's default network
  has 12 such combinations and hit ``recompile_limit`` = 8 in its first forward, after which flex ran
  eagerly = a dense ``HW x HW`` score matrix). Captured tensors are graph inputs instead, and with
  ``dynamic=True`` their lengths are symbolic, so a graph serves every size, kernel and dilation
  (the few graphs still needed are listed at :data:`FLEX_RECOMPILE_LIMIT`: 4 for DSwinIR's forward).
* **Block masks are built once per geometry** (:func:`na_geometry`, a bounded LRU) and directly from
  the ``k^2`` key indices of every query (``O(HW k^2)``); ``create_block_mask`` would evaluate the
  mask on a dense ``HW x HW`` grid (4 GiB of booleans for a 256^2 map) on every call.
  The heads are folded into flex's batch axis, because flex guards on the head count.
* **Never a silent dense fallback.** The compiled call runs with Dynamo's "fail on recompile limit"
  switch on (and the limit raised to :data:`FLEX_RECOMPILE_LIMIT`); if flex cannot serve a shape
  (compile error or limit hit) :func:`flex_na2d` warns once naming the shape and returns ``None``,
  and the caller uses the gather-based reference backend. Limits: that covers the forward; torch
  compiles the backward when ``loss.backward()`` first runs, outside this function, so a failure
  there raises (the CUDA tests compile forward and backward for DSwinIR's shapes). An explicit
  ``backend="flex"`` on the CPU runs flex uncompiled, which is dense (inference only; ``auto`` never
  picks it there).

:func:`flex_attention_fn` is the one seam that decides how flex is run (compiled on CUDA, eager
elsewhere); tests replace it with ``compiled_flex_attention("eager")`` to run the compiled code path
(guards, recompiles, fallback) on the CPU.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections import OrderedDict
from contextlib import nullcontext
from typing import Callable, NamedTuple

import torch
from torch import Tensor
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from restoration.layers.neighborhood_attention import neighborhood_indices_1d

__all__ = [
    "BLOCK_SIZE",
    "FLEX_RECOMPILE_LIMIT",
    "GEOMETRY_CACHE_BYTES",
    "GEOMETRY_CACHE_SIZE",
    "NAGeometry",
    "clear_caches",
    "compiled_flex_attention",
    "flex_attention_fn",
    "flex_na2d",
    "refused_shapes",
    "na_block_mask",
    "na_geometry",
    "position_table",
]

BLOCK_SIZE = 128  # flex_attention's default sparse block size (its kernels are tuned for it)
GEOMETRY_CACHE_SIZE = 32  # a U-Net has ~4 sizes x 3 neighbourhoods; validation adds a few sizes
# Graphs flex needs are bounded by design, not by the geometry: grad on/off x batch*heads 1 / more x
# one / more 128-blocks x head dims x with / without bias (Dynamo specialises sizes 0 and 1).
# Training plus batch-1 validation of DSwinIR reaches about 7, close to Dynamo's default limit of 8
# (which all torch.compile(flex_attention) callers share), so flex calls raise it to this.
FLEX_RECOMPILE_LIMIT = 16
# a block mask holds two (HW/128)^2 int32 index matrices (512 MiB at 1024^2): bound the bytes too
GEOMETRY_CACHE_BYTES = 2 ** 30

# rows of position_table(): per flat position p = y * W + x (sub-grid coordinate g = y // d)
_RESIDUE, _SUB_Y, _SUB_X, _Y0, _Y1, _X0, _X1, _BIAS_Y, _BIAS_X = range(9)


# --------------------------------------------------------------------------------------------------
# Geometry tables and block masks
# --------------------------------------------------------------------------------------------------
def _axis(length: int, kernel_size: int, dilation: int, device: torch.device) -> tuple[Tensor, ...]:
    """Per index along one axis: residue, sub-grid coordinate, window start (in sub-grid steps)."""
    idx = torch.arange(length, device=device)
    residue, sub = idx % dilation, idx // dilation
    sub_len = (length - residue + dilation - 1) // dilation
    start = torch.minimum((sub - kernel_size // 2).clamp(min=0), sub_len - kernel_size)
    return residue, sub, start


def position_table(height: int, width: int, kernel_size: int, dilation: int,
                   device: torch.device | None = None) -> Tensor:
    """What the NA mask and bias need to know about every flat position ``p = y * W + x``.

    Returns:
        ``(9, H * W)`` int32, rows: sub-grid id ``(y % d) * d + x % d``; sub-grid coordinates
        ``y // d``, ``x // d``; the query's window ``[y0, y1) x [x0, x1)`` in sub-grid coordinates;
        ``k - 1 - y // d`` and ``k - 1 - x // d`` (bias-table row/column of a key = its sub-grid
        coordinate plus these).
    """
    ry, sy, y0 = (t[:, None].expand(height, width) for t in _axis(height, kernel_size, dilation, device))
    rx, sx, x0 = (t[None, :].expand(height, width) for t in _axis(width, kernel_size, dilation, device))
    rows = (ry * dilation + rx, sy, sx, y0, y0 + kernel_size, x0, x0 + kernel_size,
            kernel_size - 1 - sy, kernel_size - 1 - sx)
    return torch.stack(rows).reshape(len(rows), height * width).to(torch.int32)


def _na_mask_mod(table: Tensor) -> Callable:
    """``mask_mod`` of the NA window; closes over the ``(9, L)`` position table only."""

    # one 1-D row per quantity, indexed by a tensor alone: torch 2.5's vmap turned table[row, idx] into .item()
    residue, sub_y, sub_x, y0, y1, x0, x1 = table[: _X1 + 1].unbind(0)

    def mask_mod(_b: Tensor, _h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        same_subgrid = residue[q_idx] == residue[kv_idx]
        ky, kx = sub_y[kv_idx], sub_x[kv_idx]
        in_y = (ky >= y0[q_idx]) & (ky < y1[q_idx])
        in_x = (kx >= x0[q_idx]) & (kx < x1[q_idx])
        return same_subgrid & in_y & in_x

    return mask_mod


def _na_score_mod(table: Tensor, rpb: Tensor) -> Callable:
    """``score_mod`` adding ``rpb[head, dy + k - 1, dx + k - 1]``; closes over tensors only.

    The heads are folded into flex's batch axis (see :func:`flex_na2d`), so the head of batch
    entry ``i`` is ``i % heads``.
    """

    sub_y, sub_x, bias_y, bias_x = table[_SUB_Y], table[_SUB_X], table[_BIAS_Y], table[_BIAS_X]

    def score_mod(score: Tensor, batch_head: Tensor, _h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        # masked-out keys may lie outside the table: clamp so every lookup stays in range
        hi = rpb.shape[-1] - 1
        iy = (sub_y[kv_idx] + bias_y[q_idx]).clamp(0, hi)
        ix = (sub_x[kv_idx] + bias_x[q_idx]).clamp(0, hi)
        return score + rpb[batch_head % rpb.shape[0], iy, ix].to(score.dtype)

    return score_mod


# torch >= 2.6: lengths that are not multiples of BLOCK_SIZE (before, they were the padded lengths)
_HAS_SEQ_LENGTHS = "seq_lengths" in inspect.signature(BlockMask.from_kv_blocks).parameters


def _ordered(dense: Tensor) -> tuple[Tensor, Tensor]:
    """``(R, C)`` 0/1 block matrix -> flex's ``(num_blocks (R,), indices (R, C))`` int32 lists."""
    dense = dense.to(torch.int32)
    indices = torch.argsort(dense, dim=-1, descending=True, stable=True)
    return dense.sum(-1).to(torch.int32), indices.to(torch.int32)


def na_block_mask(height: int, width: int, kernel_size: int, dilation: int, mask_mod: Callable,
                  device: torch.device | None = None):
    """The :class:`BlockMask` of NA on an ``H x W`` map, from the ``k^2`` keys of every query.

    Equal to ``create_block_mask(mask_mod, None, None, HW, HW)`` (a test checks it) but costs
    ``O(HW k^2)`` instead of a dense ``HW x HW`` evaluation of ``mask_mod``.
    """
    length = height * width
    nb = -(-length // BLOCK_SIZE)
    keys_h, _ = neighborhood_indices_1d(height, kernel_size, dilation, device)
    keys_w, _ = neighborhood_indices_1d(width, kernel_size, dilation, device)
    keys = keys_h[:, None, :, None] * width + keys_w[None, :, None, :]  # (H, W, k, k) flat key index
    q_block = (torch.arange(length, device=device) // BLOCK_SIZE)[:, None]
    pair = (q_block * nb + keys.reshape(length, -1) // BLOCK_SIZE).reshape(-1)
    counts = torch.zeros(nb * nb, dtype=torch.int32, device=device)
    counts = counts.index_add_(0, pair, torch.ones_like(pair, dtype=torch.int32)).reshape(nb, nb)
    # create_block_mask pads the last blocks with "masked", so only a block without padding is full
    full = counts == BLOCK_SIZE * BLOCK_SIZE
    partial = (counts > 0) & ~full
    (num, idx), (full_num, full_idx) = _ordered(partial), _ordered(full)
    extra = {"seq_lengths": (length, length)} if _HAS_SEQ_LENGTHS else {}
    return BlockMask.from_kv_blocks(num[None, None], idx[None, None], full_num[None, None],
                                    full_idx[None, None], BLOCK_SIZE=BLOCK_SIZE, mask_mod=mask_mod, **extra)


class NAGeometry(NamedTuple):
    """Everything flex needs about one ``(H, W, kernel, dilation, device)``: built once, reused."""

    table: Tensor  # (9, H * W) int32, see position_table
    block_mask: BlockMask  # its mask_mod closes over table

    @property
    def nbytes(self) -> int:
        tensors = [self.table, *(getattr(self.block_mask, name, None) for name in (
            "kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices",
            "q_num_blocks", "q_indices", "full_q_num_blocks", "full_q_indices"))]
        return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, Tensor))


_GEOMETRIES: OrderedDict[tuple, NAGeometry] = OrderedDict()


def _build_geometry(height: int, width: int, kernel_size: int, dilation: int, device: torch.device) -> NAGeometry:
    table = position_table(height, width, kernel_size, dilation, device)
    return NAGeometry(table, na_block_mask(height, width, kernel_size, dilation, _na_mask_mod(table), device))


def na_geometry(height: int, width: int, kernel_size: int, dilation: int, device: torch.device) -> NAGeometry:
    """Cached :class:`NAGeometry`: least recently used first out beyond :data:`GEOMETRY_CACHE_SIZE`
    entries or :data:`GEOMETRY_CACHE_BYTES` (the newest entry always stays)."""
    key = (height, width, kernel_size, dilation, torch.device(device))
    geometry = _GEOMETRIES.get(key)
    if geometry is None:
        geometry = _GEOMETRIES[key] = _build_geometry(height, width, kernel_size, dilation, key[-1])
        while len(_GEOMETRIES) > 1 and (len(_GEOMETRIES) > GEOMETRY_CACHE_SIZE or
                                        sum(g.nbytes for g in _GEOMETRIES.values()) > GEOMETRY_CACHE_BYTES):
            _GEOMETRIES.popitem(last=False)
    else:
        _GEOMETRIES.move_to_end(key)
    return geometry


# --------------------------------------------------------------------------------------------------
# Running flex
# --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def compiled_flex_attention(backend: str | Callable = "inductor") -> Callable:
    """``torch.compile(flex_attention)`` as this backend uses it.

    ``dynamic=True``: batch, sequence length and the captured tables' lengths are symbolic from the
    first compile, so new sizes reuse the graph (``dynamic=None`` would compile twice, ``False`` once
    per size); a batch of 1 is still a graph of its own (Dynamo specialises sizes 0 and 1).
    ``fullgraph=True``: a graph break would run parts of flex eagerly (dense).
    """
    return torch.compile(flex_attention, backend=backend, dynamic=True, fullgraph=True)


def flex_attention_fn(device: torch.device) -> Callable:
    """The flex callable for tensors on ``device``: compiled on CUDA; eager (dense scores, forward
    only) elsewhere, where ``"auto"`` never picks flex. Tests monkeypatch this function."""
    return compiled_flex_attention() if device.type == "cuda" else flex_attention


def _recompile_limits():
    """Dynamo settings for one flex call: a recompile-limit hit raises (instead of silently running
    flex eagerly) and the limit is at least :data:`FLEX_RECOMPILE_LIMIT`."""
    cfg = torch._dynamo.config
    patch = {}
    for name in ("recompile_limit", "cache_size_limit"):  # torch >= 2.7 / older
        if hasattr(cfg, name):
            patch[name] = max(getattr(cfg, name), FLEX_RECOMPILE_LIMIT)
            break
    if not getattr(cfg, "suppress_errors", False):  # the two switches are mutually exclusive
        for name in ("fail_on_recompile_limit_hit", "fail_on_cache_limit_hit"):  # torch >= 2.7 / older
            if hasattr(cfg, name):
                patch[name] = True
                break
    return cfg.patch(**patch) if patch else nullcontext()


def _flex_failures() -> tuple[type[BaseException], ...]:
    exc = torch._dynamo.exc
    return tuple(getattr(exc, n) for n in ("TorchDynamoException", "FailOnRecompileLimitHit") if hasattr(exc, n))


def _standalone(t: Tensor) -> Tensor:
    """``t`` as a contiguous tensor that is nobody's view: Dynamo guards on a view's base's sizes
    and strides (a square map's base even gets ``H == W`` guarded), which would recompile per layout."""
    if t._base is None and t.is_contiguous():
        return t
    return t.clone(memory_format=torch.contiguous_format)


_REFUSED: set[tuple] = set()  # shapes flex failed on: served by the reference backend from then on


def refused_shapes() -> list[tuple]:
    """The shapes flex could not serve in this process, each served by the reference backend since:
    ``(q shape, kernel_size, dilation, dtype, device, has_bias)`` (for reports; warned once each)."""
    return sorted(_REFUSED, key=str)


def clear_caches() -> None:
    """Forget cached geometries and refused shapes (tests; after ``torch._dynamo.reset()``)."""
    _GEOMETRIES.clear()
    _REFUSED.clear()


def flex_na2d(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int,
              rpb: Tensor | None, scale: float) -> Tensor | None:
    """NA through flex_attention; ``None`` when flex cannot serve this shape (warned once).

    Args:
        q, k, v: ``(B, heads, H, W, C)``.
        kernel_size, dilation: Window (checked by the caller).
        rpb: ``(heads, 2k - 1, 2k - 1)`` bias table or ``None``.
        scale: Logit scale.

    Returns:
        ``(B, heads, H, W, C)``, or ``None``: the caller must then use the reference backend.
    """
    b, n, h, w, c = q.shape
    length = h * w
    tracing = torch.compiler.is_compiling()
    if tracing:
        # inside a compiled network the outer graph compiles flex; no cache or fallback in a trace
        geometry = _build_geometry(h, w, kernel_size, dilation, q.device)
    else:
        shape = (tuple(q.shape), kernel_size, dilation, q.dtype, q.device, rpb is not None)
        if shape in _REFUSED:
            return None
        geometry = na_geometry(h, w, kernel_size, dilation, q.device)
    score_mod = None if rpb is None else _na_score_mod(geometry.table, rpb)
    # heads folded into the batch: flex guards on the head count (one graph per count otherwise,
    # 4 for DSwinIR), while the batch size is symbolic; the kernel grid covers B x heads either way
    args = tuple(_standalone(t.reshape(b * n, 1, length, c)) for t in (q, k, v))
    if tracing:
        out = flex_attention(*args, score_mod=score_mod, block_mask=geometry.block_mask, scale=scale)
        return out.reshape(b, n, h, w, c)
    fn = flex_attention_fn(q.device)
    try:
        with _recompile_limits():
            out = fn(*args, score_mod=score_mod, block_mask=geometry.block_mask, scale=scale)
    except _flex_failures() as err:
        _REFUSED.add(shape)
        warnings.warn(
            f"flex neighbourhood attention cannot serve q {tuple(q.shape)} (B, heads, H, W, C), "
            f"kernel_size={kernel_size}, dilation={dilation}, {q.dtype} on {q.device} "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); using the "
            "'reference' backend for this shape", RuntimeWarning, stacklevel=3)
        return None
    return out.reshape(b, n, h, w, c)
