"""The hand-tuned CPU kernel behind ``window_attention(backend='sdpa')`` on the CPU.

:func:`restoration.layers.window_attention.window_attention` selects it; this module only knows how to
compute ``softmax(scale q k^T + bias + mask) v`` and its gradients fast on a CPU. What it does and why
(measured on a 2-core AVX-512 Xeon, torch 2.15; see docs/benchmarks.md):

* forward: SDPA's flash kernel (the private op ``aten._scaled_dot_product_flash_attention_for_cpu``),
  one call per image so the ``(nW, nH, N, M)`` bias + mask broadcasts without a per-image copy; nothing
  but the inputs is kept for backward;
* backward: hand-written, over cache-sized blocks of windows, recomputing the probabilities, and
  yielding the bias gradient (plain SDPA with a mask that requires grad falls back to the unfused
  math path on the CPU);
* the ``-100`` entries of a shift mask become exact zeros (:func:`exact_zero_mask`): subnormal
  probabilities are up to 100x slower on some CPUs.

``tests/test_window_attention.py`` proves it equal to the reference, forward and backward.
"""

from __future__ import annotations

import weakref

import torch

__all__ = ["CPUWindowAttention", "exact_zero_mask", "bias_plus_mask"]


def bias_plus_mask(bias: torch.Tensor | None, mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """bias (nH, N, M) + mask (nW, N, M) -> (nW|1, nH|1, N, M): ONE copy per window, never per image."""
    if mask is None:
        return None if bias is None else bias.unsqueeze(0).to(dtype)
    return (mask.unsqueeze(1) if bias is None else bias.unsqueeze(0) + mask.unsqueeze(1)).to(dtype)


#: Mask entries at or below this are "masked" (SwinIR/HAT use -100); see :func:`exact_zero_mask`.
_MASKED = -100.0
_MASKED_EXACT = -1.0e4

#: Bytes of one ``(windows, heads, N, M)`` block of the CPU backward: about a core's L2 cache, so the
#: passes over a block find it there (measured on a 2 MiB-L2 Xeon: 1-4 MiB blocks were within noise for
#: SwinIR windows, 2 MiB best for HAT's), and far below glibc's 32 MiB mmap threshold, above which
#: every allocation page-faults anew.
_CPU_CHUNK_BYTES = 2 << 20

_zero_mask_cache: list = []  # [(weakref to the mask, its _version, the converted mask)]: the last mask only


def exact_zero_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
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
