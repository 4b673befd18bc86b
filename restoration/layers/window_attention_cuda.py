"""Window attention laid out for SDPA's fused memory-efficient kernel (the ``'sdpa'`` backend off the CPU).

:func:`restoration.layers.window_attention.window_attention` selects this path; it computes the same
``softmax(scale q k^T + bias + mask) v``. Left to itself, ``F.scaled_dot_product_attention`` would run
SwinIR/HAT windows on its slow *math* kernel (flash takes no additive mask; the memory-efficient
kernel wants the head dim a multiple of 8 in bf16/fp16, of 4 in fp32, and SwinIR has 10 and 30), and
a per-window mask folded into a ``(B*nW, nH, N, M)`` batch would be copied once per image. So:

* the head dim is padded with zeros to a multiple of :data:`HEAD_DIM_MULTIPLE`: ``q . k`` is unchanged,
  the extra output columns are ``P @ 0 = 0`` and are sliced off; the *original* scale is passed;
* windows go into the heads dimension: q, k, v ``(B, nW*nH, N, d)`` (the memory order of
  ``(B*nW, nH, N, d)``), bias + mask summed ONCE per window into ``(1, nW*nH, N, M)`` and expanded over
  the images with stride 0 (torch passes stride-0 batch strides of the bias straight to the kernel);
* that mask is in q's dtype (the kernel requires it; a float32 bias under bf16 autocast is cast) and
  its rows start at multiples of :data:`MASK_ALIGN` elements, so torch's ``preprocess_mask`` does not
  pad it (padding would materialise the expanded mask: a copy per image).

The backward is the exception: when the bias needs a gradient (it always does in training), the
kernel's backward allocates that gradient at the bias's *expanded* shape, ``(B, nW*nH, N, M)`` (torch's
``_efficient_attention_backward``), which autograd then sums over the images. That buffer lives for
one block's backward only (SwinIR-light, 16 x 64², bf16: 50 MB); the forward keeps no per-image copy.

**Which fused kernel runs.** Off the CPU, SDPA picks the first *enabled* kernel whose input rules pass, in
an order of its own: on an H100 with cuDNN >= 9.15 torch 2.11 tries cuDNN attention first, and its
rules look at dtype, head dim and mask shape, not at whether the mask needs a gradient. Its backward has
none for the mask, so a bf16 training step whose mask carries the learned bias would fail ("not
differentiable with respect to argument 'attn_bias'"). :func:`fused_sdpa` therefore limits such calls to
the kernels that differentiate the mask, the memory-efficient one and the math one, among those the
process has enabled (``train.deterministic`` disables the fused ones; it stays so). Calls whose mask
needs no gradient (inference) are left to torch's choice.

Nothing here is CUDA-specific arithmetic: the CPU tests run this exact layout against the reference
(forward and backward) and check :func:`mem_efficient_violations` on the tensors it hands to SDPA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["HEAD_DIM_MULTIPLE", "MASK_ALIGN", "MAX_HEADS", "fused_sdpa", "mask_grad_backends",
           "mem_efficient_violations", "restricts_kernels", "sdpa_inputs", "sdpa_window_attention"]

#: Head dims are zero-padded to a multiple of this: the memory-efficient kernel's GEMM alignment is
#: 16 bytes, i.e. 8 elements in bf16/fp16 (4 in fp32 on sm80+); 8 satisfies every dtype.
HEAD_DIM_MULTIPLE = 8
#: torch's SDPA front end (``preprocess_mask``, mem_eff_alignment) pads an additive mask whose strides
#: (all but the last) are not multiples of 16 elements; stride 0 is a multiple.
MASK_ALIGN = 16
#: CUDA grid limit on the heads axis of the memory-efficient kernel (pytorch/pytorch#142228: torch
#: chunks the batch axis but not the heads axis); more windows x heads are attended in chunks.
MAX_HEADS = 65535


def mem_efficient_violations(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None
) -> list[str]:
    """The input rules of SDPA's memory-efficient kernel that this module relies on, as plain Python.

    Mirrors ``check_tensor_shapes``, ``check_batch_size_and_num_heads_dense``,
    ``check_head_dim_size_mem_efficient``, ``check_last_dim_stride_equals_1_dense`` (torch's
    ``sdp_utils``), the kernel's bias-dtype check and ``preprocess_mask``'s alignment test. Device,
    GPU generation and dtype support (fp32/fp16/bf16) are not checked: on CUDA ask
    ``torch.backends.cuda.can_use_efficient_attention``.

    Returns:
        One line per violated rule; empty when the inputs qualify.
    """
    bad = []
    if not q.dim() == k.dim() == v.dim() == 4:
        return [f"q, k, v must be 4-D, got {q.dim()}, {k.dim()}, {v.dim()}"]
    if not q.shape[:2] == k.shape[:2] == v.shape[:2]:
        bad.append(f"batch and heads differ: {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[1] > MAX_HEADS:
        bad.append(f"{q.shape[1]} heads > {MAX_HEADS} (CUDA grid limit)")
    if q.shape[-1] != k.shape[-1] or q.shape[-1] % HEAD_DIM_MULTIPLE or v.shape[-1] % HEAD_DIM_MULTIPLE:
        bad.append(f"head dims {q.shape[-1]}, {k.shape[-1]}, {v.shape[-1]}: q = k, multiples of {HEAD_DIM_MULTIPLE}")
    if any(t.stride(-1) != 1 for t in (q, k, v)):
        bad.append("q, k, v need last-dim stride 1")
    if attn_mask is not None:
        n, m = q.shape[2], k.shape[2]
        full = (q.shape[0], q.shape[1], n, m)
        if attn_mask.dim() != 4 or any(s not in (1, t) for s, t in zip(attn_mask.shape, full)):
            bad.append(f"mask {tuple(attn_mask.shape)} does not broadcast to {full}")
        if attn_mask.dtype != q.dtype:
            bad.append(f"mask dtype {attn_mask.dtype} != q dtype {q.dtype}")
        if attn_mask.stride(-1) != 1 or any(s % MASK_ALIGN for s in attn_mask.stride()[:-1]):
            bad.append(f"mask strides {attn_mask.stride()}: last 1, others multiples of {MASK_ALIGN} (else copied)")
    return bad


# assume_constant_result: Dynamo cannot put the flag reads in a graph (a graph break, so a fullgraph
# compile failed); the switches are set once per run, before anything is compiled. Plain booleans:
# torch 2.5's Dynamo takes no enum as a constant result.
@torch.compiler.assume_constant_result
def _mask_grad_kernels_enabled() -> tuple[bool, bool]:
    cuda = torch.backends.cuda
    return cuda.mem_efficient_sdp_enabled(), cuda.math_sdp_enabled()


def mask_grad_backends() -> list[SDPBackend]:
    """The SDPA kernels that compute a gradient for an additive mask and are enabled in this process:
    the memory-efficient kernel and the math kernel (math alone when every fused kernel is off)."""
    efficient, math = _mask_grad_kernels_enabled()
    backends = [SDPBackend.EFFICIENT_ATTENTION] if efficient else []
    return backends + [SDPBackend.MATH] if math or not backends else backends


def restricts_kernels(q: torch.Tensor, attn_mask: torch.Tensor | None) -> bool:
    """Whether :func:`fused_sdpa` limits this call to :func:`mask_grad_backends`: off the CPU, when
    autograd will need the gradient of ``attn_mask``. The CPU keeps torch's own choice (its kernels
    differentiate the mask; what they compute there is proven by the CPU tests)."""
    return (
        attn_mask is not None and q.device.type != "cpu" and attn_mask.requires_grad and torch.is_grad_enabled()
    )


def fused_sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` that never hands a mask needing a gradient to a kernel without
    one (cuDNN attention, flash): see the module docstring. Arguments as SDPA's; returns its output."""
    if restricts_kernels(q, attn_mask):
        with sdpa_kernel(mask_grad_backends()):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale)


def _aligned_mask(
    bias: torch.Tensor | None, mask: torch.Tensor | None, heads: int, dtype: torch.dtype
) -> torch.Tensor | None:
    """bias (nH, N, M) + mask (nW, N, M) -> (nW|1, nH, N, M) in ``dtype``: one copy per WINDOW (never
    per image), each row starting at a multiple of :data:`MASK_ALIGN` elements."""
    if bias is None and mask is None:
        return None
    if mask is None:
        summed = bias.unsqueeze(0)
    else:  # every head needs its own rows: windows and heads share the kernel's heads axis
        summed = mask.unsqueeze(1).expand(-1, heads, -1, -1) if bias is None else bias + mask.unsqueeze(1)
    summed = summed.to(dtype)
    m = summed.shape[-1]
    pad = -m % MASK_ALIGN
    # F.pad + slice: a differentiable copy into rows of m + pad elements
    return F.pad(summed, (0, pad))[..., :m] if pad else summed.contiguous()


def sdpa_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Lay out one window-attention call for the memory-efficient kernel (see the module docstring).

    Args:
        q: (B*nW, nH, N, d); k, v: (B*nW, nH, M, d).
        bias: (nH, N, M) or None; any float dtype (cast to q's).
        mask: (nW, N, M) per-window additive mask or None.

    Returns:
        q, k, v as (B*nW/g, g*nH, N|M, dp), ``dp`` = d rounded up to :data:`HEAD_DIM_MULTIPLE`, and the
        additive mask (B*nW/g, g*nH, N, M) with batch stride 0 (or None); g = nW with a mask, else 1.
    """
    bw, nh, n, d = q.shape
    groups = 1 if mask is None else mask.shape[0]
    pad = -d % HEAD_DIM_MULTIPLE
    q, k, v = (F.pad(t, (0, pad)) if pad else t for t in (q, k, v))
    q, k, v = (t.reshape(bw // groups, groups * nh, t.shape[2], d + pad) for t in (q, k, v))
    attn_mask = _aligned_mask(bias, mask, nh, q.dtype)
    if attn_mask is not None:
        attn_mask = attn_mask.reshape(1, groups * nh, n, k.shape[2])
        # reshape of the sliced buffer keeps its strides (the merged dims are contiguous), expand adds stride 0
        attn_mask = attn_mask.expand(bw // groups, -1, -1, -1)
    return q, k, v, attn_mask


def sdpa_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
    scale: float,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """``softmax(scale q k^T + bias + mask) v`` through SDPA in the layout of :func:`sdpa_inputs`.

    Shapes as :func:`restoration.layers.window_attention.window_attention`; returns (B*nW, nH, N, d).
    """
    bw, nh, n, d = q.shape
    qs, ks, vs, attn_mask = sdpa_inputs(q, k, v, bias, mask)
    heads = qs.shape[1]
    # whole windows per chunk (a window's heads share its mask rows); several chunks only for large maps,
    # e.g. a 1024^2 SwinIR inference: 16384 windows x 6 heads
    step = max(nh, MAX_HEADS // nh * nh)
    outs = [
        fused_sdpa(
            qs[:, h:h + step], ks[:, h:h + step], vs[:, h:h + step],
            None if attn_mask is None else attn_mask[:, h:h + step], dropout_p=dropout_p, scale=scale,
        )
        for h in range(0, heads, step)
    ]
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
    return out.reshape(bw, nh, n, -1)[..., :d]
