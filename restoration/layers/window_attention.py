"""One window-attention function with interchangeable backends, the W-MSA module built on it, and the
(shifted-)window pass of a Swin block (:func:`shifted_window_attention`).

:func:`window_attention` is the only place where attention logits are formed. Backends:

* ``'reference'``: the official arithmetic, ``softmax((q * scale) @ k^T + bias + mask) @ v``.
* ``'sdpa'``: the same function through fused kernels. On the CPU (no dropout):
  :class:`_CPUWindowAttention`, SDPA's flash kernel forward with bias + mask summed into one
  ``(nW, nH, N, M)`` additive mask (one call per image, so it is never expanded per image), and a
  hand-written backward that recomputes the probabilities in cache-sized blocks of windows and also
  yields the bias gradient (plain SDPA with a mask that requires grad falls back to the slow
  unfused path on the CPU). Elsewhere: :func:`torch.nn.functional.scaled_dot_product_attention`
  with bias and mask folded into one additive float mask. Either way no bias, mask or gradient
  is dropped (``tests/test_window_attention.py`` compares with the reference, forward and backward).

FlexAttention is not offered: un-compiled (eager) it was ~400x slower than SDPA on CPU for a
SwinIR-sized problem (64 windows x 6 heads x 64 tokens: 8.3 s vs 0.02 s, torch 2.15), compiling it
needs a toolchain and minutes of warm-up, and attention inside a window is dense anyway, so a block
mask saves nothing that SDPA with a folded additive mask does not. It would be a third path to keep
equal for no measured gain; revisit with GPU measurements.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn

from restoration.layers.config import resolve_attn_backend
from restoration.layers.relative_position import relative_position_bias, relative_position_index
from restoration.layers.window_partition import window_partition, window_reverse

__all__ = ["window_attention", "WindowAttention", "shifted_window_attention"]


def _bias_plus_mask(bias: torch.Tensor | None, mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """bias (nH, N, M) + mask (nW, N, M) -> (nW|1, nH|1, N, M): ONE copy per window, never per image."""
    if mask is None:
        return None if bias is None else bias.unsqueeze(0).to(dtype)
    return (mask.unsqueeze(1) if bias is None else bias.unsqueeze(0) + mask.unsqueeze(1)).to(dtype)


def _fold_mask(
    bias: torch.Tensor | None, mask: torch.Tensor | None, batch_windows: int, dtype: torch.dtype
) -> torch.Tensor | None:
    """:func:`_bias_plus_mask` repeated per image: one additive mask broadcastable to (B*nW, nH, N, M)."""
    folded = _bias_plus_mask(bias, mask, dtype)
    if mask is None:
        return folded
    b = batch_windows // mask.shape[0]
    # reshape copies only when b > 1 (training); at inference (b == 1) it is a free view.
    return folded.unsqueeze(0).expand(b, *folded.shape).reshape(batch_windows, *folded.shape[1:])


#: Mask entries at or below this are "masked" (SwinIR/HAT use -100); see :func:`_exact_zero_mask`.
_MASKED = -100.0
_MASKED_EXACT = -1.0e4

#: Bytes of one ``(windows, heads, N, M)`` block of the CPU backward: about a core's L2 cache, so the
#: passes over a block find it there (measured on a 2 MiB-L2 Xeon: 1-4 MiB blocks were within noise for
#: SwinIR windows, 2 MiB best for HAT's), and far below glibc's 32 MiB mmap threshold, above which
#: every allocation page-faults anew.
_CPU_CHUNK_BYTES = 2 << 20

_zero_mask_cache: list = []  # [(weakref to the mask, its _version, the converted mask)]: the last mask only


def _exact_zero_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """Replace the -100 entries of a shift mask by -1e4 in every row that keeps an unmasked entry.

    A -100 entry gives a probability of about exp(-100) ~ 4e-44: a subnormal float32, which slows
    every CPU pass that touches it (exp, softmax, its backward, the bmm on P and dS) by up to 100x
    (measured: exp of 38 M such numbers 2.3 s instead of 23 ms). With -1e4 the probability is an exact
    0; the difference (< 1.2e-38 absolute per entry) is far below float32 resolution of the unmasked
    probabilities. A fully masked row keeps -100: its softmax over ``logits - 100`` equals the
    reference's (shift invariance) but would lose precision at ``- 1e4``. Branch-free, so that
    ``torch.compile`` traces it without a graph break.

    In eager mode the result for the last mask seen is cached (while that tensor lives and is
    unchanged): every shifted block of a forward pass gets the same mask, and all of them then share
    one converted copy.
    """
    if mask is None:
        return None
    eager = not torch.compiler.is_compiling()
    if eager and _zero_mask_cache:
        ref, version, converted = _zero_mask_cache[0]
        if ref() is mask and version == mask._version:
            return converted
    masked = mask <= _MASKED
    converted = torch.where(masked & ~masked.all(-1, keepdim=True), _MASKED_EXACT, mask)
    if eager:
        _zero_mask_cache[:] = [(weakref.ref(mask), mask._version, converted)]
    return converted


class _CPUWindowAttention(torch.autograd.Function):
    """``softmax(scale q k^T + bias + mask) v`` for the CPU: SDPA's fused flash kernel forward, a
    hand-written, cache-blocked backward that also yields the bias gradient.

    Why not plain SDPA: on the CPU, SDPA with an additive mask that requires grad (the learned
    relative-position bias) falls back to the unfused math path, and ``_fold_mask`` must expand
    bias + mask to the full ``(B*nW, nH, N, M)`` size because the per-window mask does not broadcast
    over images folded into the batch dimension. Here the forward runs the flash kernel once per
    image (mask ``(nW, nH, N, M)`` broadcasts within an image) and stores nothing for backward but
    its inputs (no ``N x M`` probabilities, not even the output).

    The backward walks over blocks of windows (never across an image, at most
    :data:`_CPU_CHUNK_BYTES` per ``(windows, nH, N, M)`` block, so each block stays in the L2 cache)
    and per block recomputes ``P = softmax(scale q k^T + bias + mask)`` in the reference's order of
    operations, then applies the chain rule: ``dV = P^T dO``, ``dS = P * (dP - rowsum(dP * P))`` with
    ``dP = dO V^T`` (the fused softmax backward), ``dQ = scale dS K``, ``dK = scale dS^T Q``,
    ``d(bias) = sum over windows and images of dS``. The mask is a constant (a buffer): no gradient.
    Costs one extra ``q k^T`` product in backward; saves the attention matrices of every layer until
    backward (the largest tensors of SwinIR/HAT training), and no full-size ``N x M`` tensor is ever
    allocated in backward (HAT's are ~100 MB per layer at 4 x 64^2: above glibc's mmap threshold, so
    each one would page-fault in anew).
    """

    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale):  # type: ignore[override]
        bw, nh, n, d = q.shape
        n_win = bw if mask is None else mask.shape[0]
        attn_mask = _bias_plus_mask(bias, _exact_zero_mask(mask), q.dtype)
        flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
        if n_win == bw:
            out = flash(q, k, v, attn_mask=attn_mask, scale=scale)[0]
        else:  # one call per image, so the (nW, nH, N, M) mask needs no per-image copy
            # (B*nW, N, nH, d) memory like flash's own output: the caller's head merge is then a free view
            out = q.new_empty(bw, n, nh, v.shape[-1]).transpose(1, 2)
            for start in range(0, bw, n_win):
                part = slice(start, start + n_win)
                out[part] = flash(q[part], k[part], v[part], attn_mask=attn_mask, scale=scale)[0]
        # the folded mask is rebuilt per block in backward: keeping it would cost nW*nH*N*M per layer;
        # the caller's mask (shared by all blocks) is kept, its exact-zero copy comes from the cache
        ctx.save_for_backward(q, k, v, bias, mask)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        q, k, v, bias, mask = ctx.saved_tensors
        mask = _exact_zero_mask(mask)
        scale = ctx.scale
        bw, nh, n, _ = q.shape
        m = k.shape[2]
        n_win = bw if mask is None else mask.shape[0]
        want_q, want_k, want_v, want_bias = ctx.needs_input_grad[:4]
        want_bias = want_bias and bias is not None
        acc_dtype = torch.promote_types(q.dtype, torch.float32)  # the bias gradient sums many windows
        # q, k, v are usually strided views of one qkv projection: one copy each here, not one per block
        q, k, v, grad_out = (t.contiguous() for t in (q, k, v, grad_out))
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        grad_bias = torch.zeros(bias.shape, dtype=acc_dtype) if want_bias else None
        bias_q = None if bias is None else bias.to(q.dtype)
        step = max(1, _CPU_CHUNK_BYTES // (nh * n * m * q.element_size()))
        step = -(-n_win // -(-n_win // step))  # the same number of blocks, evenly filled (64 = 4 x 16, not 3 x 21 + 1)
        ones = torch.ones(step, dtype=acc_dtype)
        for image in range(0, bw, n_win):
            for w0 in range(0, n_win, step):
                w1 = min(w0 + step, n_win)
                part = slice(image + w0, image + w1)
                qs, kc, vc, go = q[part] * scale, k[part], v[part], grad_out[part]
                p = torch.matmul(qs, kc.transpose(-2, -1))  # the reference's order: (scale q) k^T + bias + mask
                if bias_q is not None:
                    p += bias_q
                if mask is not None:
                    p += mask[w0:w1].unsqueeze(1)
                p = torch.softmax(p, dim=-1)
                if want_v:
                    torch.matmul(p.transpose(-2, -1), go, out=grad_v[part])
                ds = torch._softmax_backward_data(torch.matmul(go, vc.transpose(-2, -1)), p, -1, p.dtype)
                del p
                if want_bias:  # += sum over the block's windows, in one pass (ds.sum(0) would zero-fill, then add)
                    grad_bias.view(-1).addmv_(ds.view(w1 - w0, -1).t().to(acc_dtype), ones[: w1 - w0])
                if want_q:
                    torch.matmul(ds, kc, out=grad_q[part])
                if want_k:
                    torch.matmul(ds.transpose(-2, -1), qs, out=grad_k[part])
        return (
            grad_q.mul_(scale) if want_q else None,
            grad_k if want_k else None,
            grad_v if want_v else None,
            grad_bias.to(bias.dtype) if want_bias else None,
            None,
            None,
        )


def window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
    backend: str | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Multi-head attention inside windows, with an optional per-head bias and per-window mask.

    Args:
        q: (B*nW, nH, N, d) queries.
        k: (B*nW, nH, M, d) keys.
        v: (B*nW, nH, M, d) values.
        bias: (nH, N, M) additive bias shared by all windows (relative-position bias), or None.
        mask: (nW, N, M) additive mask, window ``i`` of every image gets ``mask[i]`` (0 / -100), or None.
        scale: Logit scale; ``d ** -0.5`` when None.
        backend: ``'reference'`` or ``'sdpa'``; None uses :func:`restoration.layers.config.get_attn_backend`.
        dropout_p: Dropout on the attention probabilities (pass 0 in eval mode).

    Returns:
        (B*nW, nH, N, d).
    """
    backend = resolve_attn_backend(backend)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if mask is not None and q.shape[0] % mask.shape[0]:
        raise ValueError(f"{q.shape[0]} windows is not a multiple of the mask's {mask.shape[0]} windows")
    if backend == "sdpa":
        if q.device.type == "cpu" and dropout_p == 0 and (mask is None or not mask.requires_grad):
            return _CPUWindowAttention.apply(q, k, v, bias, mask, scale)
        attn_mask = _fold_mask(bias, mask, q.shape[0], q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale)
    # reference: the official order of operations (scale q first), so outputs match bit for bit.
    attn = (q * scale) @ k.transpose(-2, -1)
    if bias is not None:
        attn = attn + bias.unsqueeze(0)
    if mask is not None:
        bw, nh, n, m = attn.shape
        n_win = mask.shape[0]
        attn = (attn.view(bw // n_win, n_win, nh, n, m) + mask.unsqueeze(1).unsqueeze(0)).view(bw, nh, n, m)
    attn = attn.softmax(dim=-1)
    if dropout_p > 0:
        attn = F.dropout(attn, p=dropout_p, training=True)
    return attn @ v


class WindowAttention(nn.Module):
    """Window multi-head self-attention (W-MSA / SW-MSA) with a learned relative-position bias.

    State-dict keys match the official SwinIR/HAT ``WindowAttention``: ``relative_position_bias_table``
    ((2ws-1)^2, nH), ``relative_position_index`` (ws^2, ws^2; only with ``index_buffer=True``),
    ``qkv.{weight,bias}``, ``proj.{weight,bias}``.

    Args:
        dim: Channels C.
        window_size: Side of a square window.
        num_heads: Heads; must divide ``dim``.
        qkv_bias: Learn a bias for q, k, v.
        qk_scale: Logit scale override (default ``head_dim ** -0.5``).
        attn_drop: Dropout on attention probabilities.
        proj_drop: Dropout after the output projection.
        attn_backend: See :mod:`restoration.layers.config`; None = global default.
        index_buffer: Own a ``relative_position_index`` buffer (SwinIR). HAT shares one index at
            the network level and passes it to :meth:`forward` instead.
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        attn_backend: str | None = None,
        index_buffer: bool = True,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads {num_heads} does not divide dim {dim}")
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.attn_backend = attn_backend if attn_backend is None else resolve_attn_backend(attn_backend)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        if index_buffer:
            self.register_buffer("relative_position_index", relative_position_index(window_size))
        else:
            self.relative_position_index = None
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, rpi: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attend within each window.

        Args:
            x: (B*nW, N, C) tokens of each window, N = ws*ws.
            mask: (nW, N, N) shifted-window mask or None.
            rpi: (N, N) relative-position index; None uses the own buffer.

        Returns:
            (B*nW, N, C).
        """
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        # unbind, not qkv[0], qkv[1], qkv[2]: its backward stacks the three gradients once instead of
        # three zero-filled qkv-sized buffers summed (same numbers, less memory traffic)
        q, k, v = qkv.unbind(0)
        index = self.relative_position_index if rpi is None else rpi
        bias = relative_position_bias(self.relative_position_bias_table, index)
        out = window_attention(
            q, k, v, bias=bias, mask=mask, scale=self.scale, backend=self.attn_backend,
            dropout_p=self.attn_drop if self.training else 0.0,
        )
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(bw, n, c)))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}, backend={self.attn_backend}"


def shifted_window_attention(
    x: torch.Tensor,
    attn: WindowAttention,
    shift_size: int,
    mask: torch.Tensor | None,
    rpi: torch.Tensor | None = None,
) -> torch.Tensor:
    """(S)W-MSA on a token map: cyclic shift, window partition, ``attn``, merge, shift back.

    Args:
        x: (B, H, W, C) normalised tokens, H and W multiples of ``attn.window_size``.
        attn: The window attention.
        shift_size: Cyclic shift; 0 = plain W-MSA (``mask`` is then ignored).
        mask: (nW, N, N) shifted-window mask for ``shift_size > 0``.
        rpi: (N, N) relative-position index when ``attn`` has no own buffer (HAT).

    Returns:
        (B, H, W, C).
    """
    b, h, w, c = x.shape
    ws = attn.window_size
    if shift_size:
        x = torch.roll(x, shifts=(-shift_size, -shift_size), dims=(1, 2))
    windows = attn(window_partition(x, ws).view(-1, ws * ws, c), mask=mask if shift_size else None, rpi=rpi)
    x = window_reverse(windows.view(-1, ws, ws, c), ws, h, w)
    if shift_size:
        x = torch.roll(x, shifts=(shift_size, shift_size), dims=(1, 2))
    return x
