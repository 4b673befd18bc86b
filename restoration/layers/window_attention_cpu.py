"""The hand-tuned CPU kernels behind ``window_attention(backend='sdpa')`` on the CPU.

:func:`restoration.layers.window_attention.window_attention` calls :func:`cpu_window_attention`; this
module only knows how to compute ``softmax(scale q k^T + bias + mask) v`` and its gradients fast on a
CPU. Two kernels, picked by the window size (see docs/benchmarks.md for the measurements):

* small windows (at most :data:`STORED_MAX_LOGITS` logits per head: SwinIR's 8 x 8):
  :class:`CPUStoredWindowAttention`. The reference's arithmetic, which keeps the probabilities for
  backward as the reference does, but done in place over cache-sized blocks of windows (no fresh
  full-size tensor per step: each would page-fault in anew), with the bias + mask added once, and every
  product taken in the orientation where the head dim is the row count (``(P V)^T = V^T P^T``: a
  10 x 64 @ 64 x 64 product runs about twice as fast as 64 x 64 @ 64 x 10 on the CPU BLAS);
* larger windows (HAT's 16 x 16 and its overlapping 24 x 24 keys), or low-precision inputs:
  :class:`CPUWindowAttention`. SDPA's flash kernel forward (the private op
  ``aten._scaled_dot_product_flash_attention_for_cpu``), one call per image so the ``(nW, nH, N, M)``
  bias + mask broadcasts without a per-image copy, nothing but the inputs kept for backward, and a
  hand-written backward over cache-sized blocks that recomputes the probabilities and yields the
  bias gradient. Here the probabilities are the largest tensors of training; not keeping them wins.

Both turn the ``-100`` entries of a shift mask into exact zeros (:func:`exact_zero_mask`): subnormal
probabilities slow every CPU pass that touches them (docs/benchmarks.md, "Subnormal probabilities").

``tests/test_window_attention.py`` proves both equal to the reference, forward and backward.
"""

from __future__ import annotations

import weakref

import torch

__all__ = ["CPUStoredWindowAttention", "CPUWindowAttention", "bias_plus_mask", "cpu_window_attention", "exact_zero_mask",
           "uses_stored_kernel"]


def bias_plus_mask(bias: torch.Tensor | None, mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """bias (nH, N, M) + mask (nW, N, M) -> (nW|1, nH|1, N, M): ONE copy per window, never per image."""
    if mask is None:
        return None if bias is None else bias.unsqueeze(0).to(dtype)
    return (mask.unsqueeze(1) if bias is None else bias.unsqueeze(0) + mask.unsqueeze(1)).to(dtype)


#: Mask entries at or below this are "masked" (SwinIR/HAT use -100); see :func:`exact_zero_mask`.
_MASKED = -100.0
_MASKED_EXACT = -1.0e4

#: Bytes of one ``(windows, heads, N, M)`` block of the CPU backward: about a core's L2 cache, so the
#: passes over a block find it there (the sweep is in docs/benchmarks.md, "CPU backward block size"), and far
#: below glibc's 32 MiB mmap threshold, above which every allocation page-faults anew.
_CPU_CHUNK_BYTES = 2 << 20

#: Windows with at most this many logits per head (N * M) take :class:`CPUStoredWindowAttention`:
#: SwinIR's 8 x 8 windows (64 x 64); HAT's 16 x 16 windows take the flash kernel.
STORED_MAX_LOGITS = 64 * 64

_zero_mask_cache: list = []  # [(weakref to the mask, its _version, the converted mask)]: the last mask only


def exact_zero_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """Replace the -100 entries of a shift mask by -1e4 in every row that keeps an unmasked entry.

    A -100 entry gives a probability of about exp(-100) ~ 4e-44: a subnormal float32, which slows
    every CPU pass that touches it (exp, softmax, its backward, the bmm on P and dS; docs/benchmarks.md,
    "Subnormal probabilities"). With -1e4 the probability is an exact
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


def _blocks(bw: int, n_win: int, window_bytes: int):
    """Blocks of windows for the CPU passes: ``(first, end, w0, w1)`` = windows ``first:end`` of the batch,
    windows ``w0:w1`` of their image (the rows of a per-window mask). A block never crosses an image, holds
    at most :data:`_CPU_CHUNK_BYTES` of ``(windows, nH, N, M)`` logits, and an image's blocks are evenly
    filled (64 windows = 4 x 16, not 3 x 21 + 1)."""
    step = max(1, _CPU_CHUNK_BYTES // window_bytes)
    step = -(-n_win // -(-n_win // step))
    for image in range(0, bw, n_win):
        for w0 in range(0, n_win, step):
            w1 = min(w0 + step, n_win)
            yield image + w0, image + w1, w0, w1


def uses_stored_kernel(n: int, m: int, dtype: torch.dtype) -> bool:
    """Whether :func:`cpu_window_attention` takes :class:`CPUStoredWindowAttention` for ``N x M`` logits
    per head in ``dtype`` (else :class:`CPUWindowAttention`)."""
    return n * m <= STORED_MAX_LOGITS and dtype in (torch.float32, torch.float64)


def cpu_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """``softmax(scale q k^T + bias + mask) v`` on the CPU through the kernel that suits the window size.

    Args:
        q: (B*nW, nH, N, d) queries, windows of one image consecutive.
        k, v: (B*nW, nH, M, d) keys and values.
        bias: (nH, N, M) additive bias shared by all windows, or None.
        mask: (nW, N, M) constant additive mask (0 / -100) per window position, or None.
        scale: Logit scale.

    Returns:
        (B*nW, nH, N, d), possibly a strided view.
    """
    if not uses_stored_kernel(q.shape[2], k.shape[2], q.dtype):
        return CPUWindowAttention.apply(q, k, v, bias, mask, scale)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (q, k, v, bias)):
        return CPUStoredWindowAttention.apply(q, k, v, bias, mask, scale)
    return _stored_forward(q, k, v, bias, mask, scale, keep=False)[0]  # inference: one block's buffer


def _stored_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
    scale: float,
    keep: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Forward of :class:`CPUStoredWindowAttention`, block by block.

    Returns:
        out (B*nW, nH, N, dv) (a transposed view), then P (B*nW, nH, N, M) when ``keep`` (else one
        block's scratch), and the contiguous ``scale * q``, k, v that backward needs (None without ``keep``).
    """
    # detached: the out= and in-place ops below take no autograd inputs (eager runs this without grad;
    # torch 2.5's Dynamo traces an autograd.Function's forward with requires_grad still set)
    q, k, v = q.detach(), k.detach(), v.detach()
    bias = None if bias is None else bias.detach()
    bw, nh, n, _ = q.shape
    m = k.shape[2]
    if keep:  # backward needs them whole: one contiguous copy each
        qs = torch.mul(q, scale, out=q.new_empty(q.shape))  # the reference's order (scale q first)
        kc, vc = k.contiguous(), v.contiguous()
    else:  # inference: copied block by block below, never whole (they are the size of the token map)
        qs = kc = vc = None
    add = bias_plus_mask(bias, exact_zero_mask(mask), q.dtype)  # (nW|1, nH, N, M): added once per block
    n_win = bw if mask is None else mask.shape[0]
    blocks = list(_blocks(bw, n_win, nh * n * m * q.element_size()))
    p = q.new_empty(bw if keep else max(end - first for first, end, _, _ in blocks), nh, n, m)
    out_t = q.new_empty(bw, nh, v.shape[-1], n)  # out^T: the product is taken as V^T P^T
    for first, end, w0, w1 in blocks:
        if keep:
            pb, qb, kb, vb = p[first:end], qs[first:end], kc[first:end], vc[first:end]
        else:
            pb, qb, kb, vb = p[: end - first], q[first:end] * scale, k[first:end], v[first:end]
        torch.matmul(qb, kb.transpose(-2, -1), out=pb)
        if add is not None:
            pb += add if add.shape[0] == 1 else add[w0:w1]
        torch.ops.aten._softmax.out(pb, -1, False, out=pb)  # row by row: in place is safe
        torch.matmul(vb.transpose(-2, -1), pb.transpose(-2, -1), out=out_t[first:end])
    return out_t.transpose(-2, -1), p, qs, kc, vc


class CPUStoredWindowAttention(torch.autograd.Function):
    """``softmax(scale q k^T + bias + mask) v`` for small windows on the CPU: the reference's
    arithmetic (``P`` kept for backward, like the reference), done in place over cache-sized blocks.

    Per block of windows, forward: ``P = (scale q) k^T``, ``+= bias + mask`` (summed once per call),
    softmax in place, ``out^T = V^T P^T``. Backward: ``dV^T = dO^T P``, ``dS = dO V^T`` then the
    softmax backward in place (``dS = P * (dS - rowsum(dS * P))``), ``d(bias) += sum over windows of
    dS``, ``dQ^T = scale K^T dS^T``, ``dK^T = (scale q)^T dS``. Every product has the head dim as its
    row count, and no full-size ``N x M`` tensor is allocated but ``P`` itself. The mask is a constant
    (a buffer): no gradient.
    """

    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale):  # type: ignore[override]
        out, p, qs, kc, vc = _stored_forward(q, k, v, bias, mask, scale, keep=True)
        ctx.save_for_backward(p, qs, kc, vc)
        ctx.scale = scale
        ctx.n_win = q.shape[0] if mask is None else mask.shape[0]
        ctx.bias_shape = None if bias is None else bias.shape
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable  # a second derivative raises, never silently wrong
    def backward(ctx, grad_out):  # type: ignore[override]
        p, qs, kc, vc = ctx.saved_tensors
        bw, nh, n, m = p.shape
        d, dv = qs.shape[-1], vc.shape[-1]
        want_q, want_k, want_v, want_bias = ctx.needs_input_grad[:4]
        want_bias = want_bias and ctx.bias_shape is not None
        go = grad_out.contiguous()
        # gradients are written transposed (the fast orientation) and returned as views
        grad_q = qs.new_empty(bw, nh, d, n) if want_q else None
        grad_k = kc.new_empty(bw, nh, d, m) if want_k else None
        grad_v = vc.new_empty(bw, nh, dv, m) if want_v else None
        grad_bias = p.new_zeros(nh * n * m) if want_bias else None
        ones = p.new_ones(bw)
        for first, end, _, _ in _blocks(bw, ctx.n_win, nh * n * m * p.element_size()):
            pb, gob = p[first:end], go[first:end]
            if want_v:
                torch.matmul(gob.transpose(-2, -1), pb, out=grad_v[first:end])
            if not (want_q or want_k or want_bias):
                continue
            ds = torch.matmul(gob, vc[first:end].transpose(-2, -1))
            torch.ops.aten._softmax_backward_data.out(ds, pb, -1, pb.dtype, grad_input=ds)
            if want_bias:  # += sum over the block's windows, in one pass
                grad_bias.addmv_(ds.view(end - first, -1).t(), ones[: end - first])
            if want_q:
                torch.matmul(kc[first:end].transpose(-2, -1), ds.transpose(-2, -1), out=grad_q[first:end])
            if want_k:
                torch.matmul(qs[first:end].transpose(-2, -1), ds, out=grad_k[first:end])
        return (
            grad_q.mul_(ctx.scale).transpose(-2, -1) if want_q else None,
            grad_k.transpose(-2, -1) if want_k else None,
            grad_v.transpose(-2, -1) if want_v else None,
            grad_bias.view(ctx.bias_shape) if want_bias else None,
            None,
            None,
        )


class CPUWindowAttention(torch.autograd.Function):
    """``softmax(scale q k^T + bias + mask) v`` for the CPU: SDPA's fused flash kernel forward, a
    hand-written, cache-blocked backward that also yields the bias gradient.

    Why not plain SDPA: on the CPU, SDPA with an additive mask that requires grad (the learned
    relative-position bias) falls back to the unfused math path, and with images folded into the
    batch dimension the per-window mask would have to be expanded to the full ``(B*nW, nH, N, M)`` size. Here the forward runs the flash kernel once per
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
        attn_mask = bias_plus_mask(bias, exact_zero_mask(mask), q.dtype)
        if attn_mask is not None:
            # the op refuses a mask that requires grad; torch 2.5's Dynamo traces this forward with the
            # bias's requires_grad still set (eager forward runs without grad anyway)
            attn_mask = attn_mask.detach()
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
    @torch.autograd.function.once_differentiable  # a second derivative raises, never silently wrong
    def backward(ctx, grad_out):  # type: ignore[override]
        q, k, v, bias, mask = ctx.saved_tensors
        mask = exact_zero_mask(mask)
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
        ones = torch.ones(n_win, dtype=acc_dtype)
        for first, end, w0, w1 in _blocks(bw, n_win, nh * n * m * q.element_size()):
            part = slice(first, end)
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
