"""2-D neighbourhood attention (NA) as one op with interchangeable backends.

Semantics (NATTEN's): every query at ``(i, j)`` attends to a ``k x k`` window of keys centred on it.
With dilation ``d`` the image splits into ``d x d`` interleaved sub-grids (positions with equal
``i % d``, ``j % d``) and the window lives inside the query's sub-grid. At the borders the window is
*shifted inward* so it always holds exactly ``k x k`` real keys (never zero padding); hence every axis
needs ``length >= k * d``. An optional relative-position bias table ``rpb`` of shape
``(heads, 2k - 1, 2k - 1)`` adds ``rpb[h, dy + k - 1, dx + k - 1]`` to the logit of a key displaced by
``(dy, dx)`` sub-grid steps from its query (NATTEN <= 0.17 ``na2d_qk(rpb=...)``).

Backends, all behind :func:`neighborhood_attention_2d` (``backend=``):

* ``"reference"`` -- pure PyTorch, CPU/GPU, forward and backward; gathers the ``k^2`` neighbours of
  every query by index, so memory is ``O(H W k^2 C)`` (never an ``HW x HW`` matrix), and only
  transiently: the backward recomputes the gathers, saving just ``q, k, v`` and the weights.
* ``"flex"`` -- :func:`torch.nn.attention.flex_attention` with the NA window as ``mask_mod`` and the
  bias as ``score_mod`` (:mod:`restoration.layers.neighborhood_attention_flex`). Compiled (fused,
  sparse) on CUDA, one graph for all sizes/kernels/dilations and block masks cached per geometry; a
  shape flex cannot compile is served by ``"reference"`` after a warning, never by a dense fallback.
  On CPU it runs eagerly (dense scores, correct but not memory-efficient), which is why ``"auto"``
  never picks it on CPU.
* ``"natten"`` -- NATTEN >= 0.20's fused ``natten.na2d`` when ``natten`` is importable; no bias
  support there, so it is only eligible when ``rpb is None``.

``"auto"`` picks ``natten`` (CUDA, no bias) > ``flex`` (CUDA) > ``reference``; ``reference`` whenever
``torch.are_deterministic_algorithms_enabled()`` (``train.deterministic: true``): the rule lives with the other
attention ops' in :func:`restoration.layers.config.resolve_backend`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from restoration.layers.config import ATTENTION_OPS, resolve_backend
from restoration.layers.config import available_backends as _available

__all__ = ["BACKENDS", "available_backends", "neighborhood_attention_2d", "neighborhood_indices_1d"]

BACKENDS: tuple[str, ...] = ATTENTION_OPS["neighborhood"]


def available_backends() -> list[str]:
    """Backends usable on this machine (``"reference"`` always is)."""
    return _available("neighborhood")[1:]


# --------------------------------------------------------------------------------------------------
# Window geometry
# --------------------------------------------------------------------------------------------------
def _check_geometry(height: int, width: int, kernel_size: int, dilation: int) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"neighbourhood kernel_size must be odd and >= 1, got {kernel_size}")
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1, got {dilation}")
    need = kernel_size * dilation
    if height < need or width < need:
        raise ValueError(
            f"neighbourhood attention with kernel_size={kernel_size}, dilation={dilation} needs "
            f"feature maps of at least {need}x{need}, got {height}x{width}"
        )


def neighborhood_indices_1d(
    length: int, kernel_size: int, dilation: int, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Key indices and bias-table indices of every query along one axis.

    Within the query's sub-grid (``index % dilation``) of length ``L_r`` the window start is
    ``clamp(g - k // 2, 0, L_r - k)`` for sub-grid coordinate ``g = index // dilation``.

    Args:
        length: Axis length (``>= kernel_size * dilation``).
        kernel_size: Odd window size ``k``.
        dilation: Sub-grid step ``d``.
        device: Device of the returned tensors.

    Returns:
        ``(keys, bias_idx)``, both ``(length, k)`` int64: absolute key positions and
        ``delta + k - 1`` where ``delta`` is the key-minus-query offset in sub-grid steps.
    """
    idx = torch.arange(length, device=device)
    residue = idx % dilation
    sub = idx // dilation
    sub_len = (length - residue + dilation - 1) // dilation
    start = torch.minimum((sub - kernel_size // 2).clamp(min=0), sub_len - kernel_size)
    key_sub = start[:, None] + torch.arange(kernel_size, device=device)[None, :]
    keys = key_sub * dilation + residue[:, None]
    bias_idx = key_sub - sub[:, None] + kernel_size - 1
    return keys, bias_idx


# --------------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------------
def _gather(x: Tensor, flat: Tensor) -> Tensor:
    """``(B, N, L, C)`` -> neighbours ``(B, N, L, K, C)`` (``flat``: ``(L, K)`` key indices)."""
    return x[:, :, flat]


def _scatter(src: Tensor, flat: Tensor, length: int) -> Tensor:
    """Adjoint of :func:`_gather`: sum ``(B, N, L, K, C)`` contributions back onto ``(B, N, L, C)``."""
    b, n, _, kk, c = src.shape
    out = src.new_zeros(b, n, length, c)
    return out.index_add_(2, flat.reshape(-1), src.reshape(b, n, -1, c))


class _ReferenceNA(torch.autograd.Function):
    """Gather-based NA whose backward *recomputes* the ``(B, N, L, K, C)`` neighbour tensors.

    Plain autograd would keep the gathered keys and values of every layer alive until the backward
    pass (``K`` times the size of ``k`` and ``v``); here only ``q, k, v`` and the ``(B, N, L, K)``
    attention weights are saved, so a network's activation memory stays close to a conv net's.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, rpb: Tensor | None, flat: Tensor,
                bias_idx: Tensor, scale: float) -> Tensor:
        logits = torch.einsum("bnlc,bnlkc->bnlk", q, _gather(k, flat)) * scale
        if rpb is not None:
            logits = logits + rpb.reshape(rpb.shape[0], -1)[:, bias_idx].to(logits.dtype)
        attn = logits.softmax(dim=-1)
        out = torch.einsum("bnlk,bnlkc->bnlc", attn, _gather(v, flat))
        ctx.save_for_backward(q, k, v, attn, flat, bias_idx)
        ctx.scale = scale
        ctx.rpb_shape = None if rpb is None else rpb.shape
        ctx.rpb_dtype = None if rpb is None else rpb.dtype
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        # Mixed precision: CUDA autocast runs the softmax in float32 (the CPU's does not), so ``attn`` may
        # be float32 while q, k, v and grad_out are bf16/fp16. Follow what autograd does for the plain
        # autocast graph: products with q, k, v in their dtype, the softmax backward in attn's dtype.
        q, k, v, attn, flat, bias_idx = ctx.saved_tensors
        length = q.shape[2]
        work = q.dtype
        attn_w = attn.to(work)
        grad_out = grad_out.to(work)
        d_attn = torch.einsum("bnlc,bnlkc->bnlk", grad_out, _gather(v, flat)).to(attn.dtype)
        d_v = _scatter(attn_w.unsqueeze(-1) * grad_out.unsqueeze(-2), flat, length) if ctx.needs_input_grad[2] else None
        # softmax backward, then back to the dtype of the logits' products
        d_logits = (attn * (d_attn - (attn * d_attn).sum(-1, keepdim=True))).to(work)
        d_q = d_k = d_rpb = None
        if ctx.needs_input_grad[0]:
            d_q = torch.einsum("bnlk,bnlkc->bnlc", d_logits, _gather(k, flat)) * ctx.scale
        if ctx.needs_input_grad[1]:
            d_k = _scatter(d_logits.unsqueeze(-1) * q.unsqueeze(-2), flat, length) * ctx.scale
        if ctx.rpb_shape is not None and ctx.needs_input_grad[3]:
            heads = ctx.rpb_shape[0]
            d_rpb = d_logits.new_zeros(heads, ctx.rpb_shape[1] * ctx.rpb_shape[2], dtype=ctx.rpb_dtype)
            d_rpb.index_add_(1, bias_idx.reshape(-1), d_logits.sum(0).reshape(heads, -1).to(ctx.rpb_dtype))
            d_rpb = d_rpb.reshape(ctx.rpb_shape)
        return d_q, d_k, d_v, d_rpb, None, None, None


def _reference(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int,
               rpb: Tensor | None, scale: float) -> Tensor:
    b, n, h, w, c = q.shape
    keys_h, bias_h = neighborhood_indices_1d(h, kernel_size, dilation, q.device)
    keys_w, bias_w = neighborhood_indices_1d(w, kernel_size, dilation, q.device)
    # flat key index of neighbour (a, b') of query (i, j): keys_h[i, a] * W + keys_w[j, b']
    flat = (keys_h[:, None, :, None] * w + keys_w[None, :, None, :]).reshape(h * w, -1)  # (HW, k^2)
    # flat index into the (2k-1)^2 bias table
    bias_idx = (bias_h[:, None, :, None] * (2 * kernel_size - 1) + bias_w[None, :, None, :]).reshape(h * w, -1)
    out = _ReferenceNA.apply(q.reshape(b, n, h * w, c), k.reshape(b, n, h * w, c), v.reshape(b, n, h * w, c),
                             rpb, flat, bias_idx, scale)
    return out.reshape(b, n, h, w, c)


def _flex(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int,
          rpb: Tensor | None, scale: float) -> Tensor:
    from restoration.layers.neighborhood_attention_flex import flex_na2d  # heavy dependency

    out = flex_na2d(q, k, v, kernel_size, dilation, rpb, scale)
    # flex refused this shape (it warned once): the gather-based op, never a dense HW x HW fallback
    return _reference(q, k, v, kernel_size, dilation, rpb, scale) if out is None else out


def _natten(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int,
            rpb: Tensor | None, scale: float) -> Tensor:
    import natten  # optional dependency

    # natten>=0.20 wants (B, H, W, heads, C)
    out = natten.na2d(
        q.permute(0, 2, 3, 1, 4), k.permute(0, 2, 3, 1, 4), v.permute(0, 2, 3, 1, 4),
        kernel_size=kernel_size, dilation=dilation, scale=scale,
    )
    return out.permute(0, 3, 1, 2, 4)


_IMPLS: dict[str, Callable[..., Tensor]] = {"reference": _reference, "flex": _flex, "natten": _natten}


def neighborhood_attention_2d(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: int,
    dilation: int = 1,
    rpb: Tensor | None = None,
    scale: float | None = None,
    backend: str | None = "auto",
) -> Tensor:
    """``softmax(q k^T * scale + rpb) v`` over each query's ``k x k`` neighbourhood.

    Args:
        q, k, v: ``(B, heads, H, W, C)`` float tensors.
        kernel_size: Odd window size ``k``; ``H, W >= k * dilation``.
        dilation: Sub-grid step.
        rpb: Optional ``(heads, 2k - 1, 2k - 1)`` relative-position bias table.
        scale: Logit scale; default ``C ** -0.5``.
        backend: ``"auto"``, ``"reference"``, ``"flex"`` or ``"natten"``; None: the process-wide default
            of the ``neighborhood`` op (:func:`restoration.layers.config.get_attn_backend`).

    Returns:
        ``(B, heads, H, W, C)``.
    """
    if q.dim() != 5 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must share a (B, heads, H, W, C) shape, got {q.shape}, "
                         f"{k.shape}, {v.shape}")
    _, heads, h, w, c = q.shape
    _check_geometry(h, w, kernel_size, dilation)
    if rpb is not None and tuple(rpb.shape) != (heads, 2 * kernel_size - 1, 2 * kernel_size - 1):
        raise ValueError(f"rpb must have shape {(heads, 2 * kernel_size - 1, 2 * kernel_size - 1)}, "
                         f"got {tuple(rpb.shape)}")
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (q, k, v, rpb)
    )
    name = resolve_backend("neighborhood", backend, q.device, head_dim=c, has_bias=rpb is not None,
                           needs_grad=needs_grad)
    if name != "reference" and q.device.type == "cpu":
        # CPU FlexAttention refuses inputs that require grad even under no_grad
        q, k, v = q.detach(), k.detach(), v.detach()
        rpb = rpb.detach() if rpb is not None else None
    return _IMPLS[name](q, k, v, kernel_size, dilation, rpb, c ** -0.5 if scale is None else scale)
