"""Masked window self-attention (M-WSA) of TBSN: overlapping-window attention with a dilated mask.

Queries come from non-overlapping ``ws x ws`` windows; keys and values from the enclosing
``ow x ow`` window (``ow = ws + int(ws * overlap_ratio)``, zero padding ``(ow - ws) / 2`` at the
image border, as ``nn.Unfold`` does upstream). The logits get

* a factorised relative-position term ``q . rel_height[dy] + q . rel_width[dx]`` (HaloNet style), and
* a fixed additive mask (0 or -inf) that keeps a key only when its offset from the query is even
  in both axes (with the default even padding): a dilation-2 pattern, 36 of 144 keys for ws=8.

Because every other spatial operator of TBSN also moves information by even offsets, and the first
convolution only sees odd-parity neighbours, a pixel never sees itself: the blind spot.

Three interchangeable backends, chosen by ``impl`` (one switch, proven equal forward and backward in
``tests/test_tbsn_attention.py``):

* ``'reference'``: explicit ``softmax(q k^T + bias + mask) v``, the official computation.
* ``'sdpa'``: ``torch.nn.functional.scaled_dot_product_attention`` with the relative-position term
  and the fixed mask folded into one additive float mask.
* ``'parity'``: uses the structure of the mask instead of applying it. A query of coordinate parity
  ``(a, b)`` may only attend to keys of one parity class, so the 4 query classes (``ws^2/4`` queries
  each) attend densely to their 4 key classes (``ow^2/4`` keys each) with SDPA and no mask: a quarter
  of the logits, the same function (the masked entries contribute exactly 0 either way). Needs an
  even ``window_size``.

Both SDPA backends call it through :func:`_sdpa` with 4-D inputs whose head dim is a multiple of 8:
what CUDA's fused memory-efficient kernel needs (with 3-D inputs or a head dim of 10 it takes the
slow math kernel). The bias depends on q, so the additive mask is full-size either way, and it needs a
gradient: :func:`restoration.layers.window_attention_cuda.fused_sdpa` keeps such calls off the kernels
that have none (cuDNN attention on an H100).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restoration.layers.config import ATTENTION_OPS, resolve_backend
from restoration.layers.window_attention_cuda import HEAD_DIM_MULTIPLE, MASK_ALIGN, fused_sdpa
from restoration.layers.window_partition import overlap_window_size

__all__ = [
    "ATTENTION_IMPLS",
    "BlindSpotWindowMask",
    "FactorizedRelPosBias",
    "MaskedWindowAttention",
]

ATTENTION_IMPLS = ATTENTION_OPS["masked_window"]


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, heads: int) -> torch.Tensor:
    """``softmax(q k^T + bias) v`` (q pre-scaled) through SDPA in the fused kernels' layout.

    Args:
        q: (S, L, d) queries of S = windows x ``heads`` sequences, heads innermost; k, v: (S, L_k, d).
        bias: (S, L, L_k) additive logits (or broadcastable to it).
        heads: Heads per window: the kernel's heads axis (windows go to its batch axis, which torch
            splits above the CUDA grid limit; its heads axis it does not).

    Returns:
        (S, L, d). The head dim is zero-padded to a multiple of :data:`HEAD_DIM_MULTIPLE` for the
        kernel (q . k unchanged, the extra output columns are zero) and sliced back; the mask rows
        start at multiples of :data:`MASK_ALIGN` elements (the parity classes have 36 keys).
    """
    s, length, d = q.shape
    pad = -d % HEAD_DIM_MULTIPLE
    q, k, v = (F.pad(t, (0, pad)) if pad else t for t in (q, k, v))
    q, k, v = (t.reshape(s // heads, heads, t.shape[1], d + pad) for t in (q, k, v))
    m = k.shape[2]
    bias = bias.expand(s, length, m).to(q.dtype)
    if m % MASK_ALIGN:  # rows at aligned offsets, else torch's SDPA front end pads (copies) it anyway
        bias = F.pad(bias, (0, -m % MASK_ALIGN))[..., :m]
    bias = bias.reshape(s // heads, heads, length, m)
    out = fused_sdpa(q, k, v, bias, scale=1.0)  # the bias depends on q: never a kernel without its gradient
    return out.reshape(s, length, d + pad)[..., :d]


def _relative_index(window_size: int, overlap_size: int, device: torch.device | None = None) -> torch.Tensor:
    """``idx[x, i] = i - x + ow - 1``: table row for query coordinate x and key coordinate i."""
    q = torch.arange(window_size, device=device)
    k = torch.arange(overlap_size, device=device)
    return k[None, :] - q[:, None] + overlap_size - 1


class BlindSpotWindowMask(nn.Module):
    """The fixed additive mask, stored as ``attention_mask`` of shape ``(1, ws*ws, ow*ow)``.

    It is an ``nn.Parameter(requires_grad=False)`` (not a buffer) because official checkpoints
    store it under that name and count it as a parameter. Entry ``(q, k)`` is 0 when
    ``(x_q - x_k + ow - 1)`` is odd along both axes, else ``-inf`` (the upstream rule; with even
    ``ow`` this keeps keys at an even offset from the query window origin shifted by the padding).

    Args:
        window_size: Query window side ``ws``.
        overlap_size: Key window side ``ow``.
    """

    def __init__(self, window_size: int, overlap_size: int) -> None:
        super().__init__()
        self.attention_mask = nn.Parameter(self.build(window_size, overlap_size), requires_grad=False)

    @staticmethod
    def build(window_size: int, overlap_size: int) -> torch.Tensor:
        """Regenerate the mask, ``(1, ws*ws, ow*ow)`` float32 of 0 / -inf."""
        idx = _relative_index(window_size, overlap_size)  # (ws, ow)
        allowed_1d = idx % 2 == 1
        allowed = allowed_1d[:, None, :, None] & allowed_1d[None, :, None, :]  # (x, y, i, j)
        mask = torch.zeros(allowed.shape)
        mask[~allowed] = float("-inf")
        return mask.reshape(1, window_size * window_size, overlap_size * overlap_size)

    def forward(self) -> torch.Tensor:
        return self.attention_mask


class FactorizedRelPosBias(nn.Module):
    """Relative-position logits factorised into rows and columns (tables ``(2*ow-1, dim_head)``).

    ``bias[(x, y), (i, j)] = q[x, y] . rel_height[i - x + ow - 1] + q[x, y] . rel_width[j - y + ow - 1]``
    where ``(x, y)`` is the query position in its ``ws x ws`` window and ``(i, j)`` the key position
    in its ``ow x ow`` window. Equal to upstream's ``rel_to_abs`` construction, without the padding
    and reshaping tricks.

    Args:
        window_size: Query window side ``ws``.
        overlap_size: Key window side ``ow``.
        dim_head: Channels per head.
    """

    def __init__(self, window_size: int, overlap_size: int, dim_head: int) -> None:
        super().__init__()
        scale = dim_head**-0.5
        self.window_size = window_size
        self.overlap_size = overlap_size
        self.rel_height = nn.Parameter(torch.randn(2 * overlap_size - 1, dim_head) * scale)
        self.rel_width = nn.Parameter(torch.randn(2 * overlap_size - 1, dim_head) * scale)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """``q``: ``(N, ws*ws, d)`` (already scaled) -> bias ``(N, ws*ws, ow*ow)``."""
        ws, ow = self.window_size, self.overlap_size
        return self.sub_bias(q.reshape(q.shape[0], ws, ws, -1), slice(None), slice(None), slice(None), slice(None))

    def sub_bias(self, q: torch.Tensor, qr: slice, qc: slice, kr: slice, kc: slice) -> torch.Tensor:
        """Bias between the query rows/cols ``qr``/``qc`` and the key rows/cols ``kr``/``kc``.

        Args:
            q: ``(N, x, y, d)`` queries already restricted to ``qr``, ``qc``.

        Returns:
            ``(N, x*y, i*j)`` for the selected key rows ``i`` and columns ``j``.
        """
        n, x, y, _ = q.shape
        idx = _relative_index(self.window_size, self.overlap_size, q.device)
        logits_h = torch.einsum("nxyd,xid->nxyi", q, self.rel_height[idx[qr, kr]])  # (N, x, y, i)
        logits_w = torch.einsum("nxyd,yjd->nxyj", q, self.rel_width[idx[qc, kc]])  # (N, x, y, j)
        bias = logits_h[..., :, None] + logits_w[..., None, :]
        return bias.reshape(n, x * y, -1)


class MaskedWindowAttention(nn.Module):
    """M-WSA: ``1x1 qkv -> overlapping-window attention with fixed mask -> 1x1 projection``.

    Module names follow the official ``DilatedOCA`` (``qkv``, ``project_out``, ``rel_pos_emb``,
    ``fixed_pos_emb``) so checkpoints load strictly.

    Args:
        dim: Input/output channels.
        window_size: Query window side ``ws``; H and W must be multiples of it.
        overlap_ratio: Key window side is ``ws + int(ws * overlap_ratio)``; the difference must be
            even (symmetric padding).
        num_heads: Attention heads.
        dim_head: Channels per head (inner width ``num_heads * dim_head``).
        bias: Bias in the 1x1 convolutions.
        impl: ``'reference'``, ``'sdpa'``, ``'parity'`` (see module docstring) or ``'auto'`` (``'parity'``
            for an even window, else ``'sdpa'``); None: the process-wide default of the ``masked_window`` op
            (:func:`restoration.layers.config.get_attn_backend`), read at every call. Settable later through
            the ``impl`` attribute.

    Shapes:
        ``(B, dim, H, W) -> (B, dim, H, W)`` with ``H % ws == W % ws == 0``.
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        overlap_ratio: float,
        num_heads: int,
        dim_head: int,
        bias: bool,
        impl: str | None = None,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.overlap_size = overlap_window_size(window_size, overlap_ratio)
        if (self.overlap_size - window_size) % 2:
            raise ValueError(
                f"window_size {window_size} with overlap_ratio {overlap_ratio} gives a key window of "
                f"{self.overlap_size}; the difference to the query window must be even"
            )
        self.pad = (self.overlap_size - window_size) // 2
        self.num_heads = num_heads
        self.dim_head = dim_head
        self.inner_dim = num_heads * dim_head
        self.scale = dim_head**-0.5
        self.impl = impl

        self.qkv = nn.Conv2d(dim, self.inner_dim * 3, kernel_size=1, bias=bias)
        self.project_out = nn.Conv2d(self.inner_dim, dim, kernel_size=1, bias=bias)
        self.rel_pos_emb = FactorizedRelPosBias(window_size, self.overlap_size, dim_head)
        self.fixed_pos_emb = BlindSpotWindowMask(window_size, self.overlap_size)

    @property
    def impl(self) -> str | None:
        return self._impl

    @impl.setter
    def impl(self, value: str | None) -> None:
        if value is not None:
            resolve_backend("masked_window", value, window_size=self.window_size)  # unknown, or parity on odd
        self._impl = value

    def resolved_impl(self, device: torch.device | str = "cpu") -> str:
        """The backend a call on ``device`` uses: the set one, or the process-wide default; ``'auto'``
        resolved (:func:`restoration.layers.config.resolve_backend`)."""
        return resolve_backend("masked_window", self._impl, device, window_size=self.window_size)

    def _windows(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Split into per-(window, head) sequences: q ``(N, ws*ws, d)``, k/v ``(N, ow*ow, d)``.

        ``N = B * (H/ws) * (W/ws) * heads``; the channel of head ``h`` and sub-channel ``c`` is
        ``h * d + c`` as upstream.
        """
        b, _, hgt, wid = q.shape
        ws, ow, nh, d = self.window_size, self.overlap_size, self.num_heads, self.dim_head
        gh, gw = hgt // ws, wid // ws
        q = q.reshape(b, nh, d, gh, ws, gw, ws).permute(0, 3, 5, 1, 4, 6, 2).reshape(-1, ws * ws, d)

        def unfold(t: torch.Tensor) -> torch.Tensor:
            t = F.pad(t, (self.pad,) * 4)  # zeros, like nn.Unfold(padding=...) upstream
            t = t.unfold(2, ow, ws).unfold(3, ow, ws)  # (B, C, gh, gw, ow, ow)
            t = t.reshape(b, nh, d, gh, gw, ow, ow).permute(0, 3, 4, 1, 5, 6, 2)
            return t.reshape(-1, ow * ow, d)

        return q, unfold(k), unfold(v)

    def _merge(self, out: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """Inverse of the query split: ``(N, ws*ws, d) -> (B, heads*d, H, W)``."""
        b, _, hgt, wid = shape
        ws, nh, d = self.window_size, self.num_heads, self.dim_head
        out = out.reshape(b, hgt // ws, wid // ws, nh, ws, ws, d).permute(0, 3, 6, 1, 4, 2, 5)
        return out.reshape(b, nh * d, hgt, wid)

    def _parity_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The ``'parity'`` backend: ``(N, ws*ws, d)`` queries, ``(N, ow*ow, d)`` keys -> ``(N, ws*ws, d)``.

        The fixed mask admits key ``i`` for query ``x`` (per axis) iff ``x - i + ow - 1`` is odd,
        i.e. ``i % 2 == (x + ow) % 2``: each query parity class sees exactly one key parity class.
        """
        ws, ow = self.window_size, self.overlap_size
        n, d = q.shape[0], q.shape[-1]
        q = q.reshape(n, ws, ws, d)
        k = k.reshape(n, ow, ow, d)
        v = v.reshape(n, ow, ow, d)
        rows = []
        for a in range(2):
            cols = []
            for b in range(2):
                qr, qc = slice(a, None, 2), slice(b, None, 2)
                kr, kc = slice((a + ow) % 2, None, 2), slice((b + ow) % 2, None, 2)
                q_sub = q[:, qr, qc]
                bias = self.rel_pos_emb.sub_bias(q_sub, qr, qc, kr, kc)
                k_sub = k[:, kr, kc].reshape(n, -1, d)
                v_sub = v[:, kr, kc].reshape(n, -1, d)
                out = _sdpa(q_sub.reshape(n, -1, d), k_sub, v_sub, bias, self.num_heads)
                cols.append(out.reshape(n, ws // 2, ws // 2, d))
            rows.append(torch.stack(cols, dim=3))  # (N, ws/2, ws/2, b, d)
        # (N, ws/2, a, ws/2, b, d) -> query (2i + a, 2j + b)
        return torch.stack(rows, dim=2).reshape(n, ws * ws, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % self.window_size or x.shape[-1] % self.window_size:
            raise ValueError(
                f"M-WSA input {tuple(x.shape[-2:])} is not a multiple of window_size {self.window_size}"
            )
        q, k, v = self.qkv(x).chunk(3, dim=1)
        q, k, v = self._windows(q, k, v)
        q = q * self.scale
        impl = self.resolved_impl(x.device)
        if impl == "parity":
            return self.project_out(self._merge(self._parity_attention(q, k, v), x.shape))
        bias = self.rel_pos_emb(q) + self.fixed_pos_emb().to(q.dtype)
        if impl == "sdpa":
            out = _sdpa(q, k, v, bias, self.num_heads)
        else:
            attn = torch.softmax(q @ k.transpose(-2, -1) + bias, dim=-1)
            out = attn @ v
        return self.project_out(self._merge(out, x.shape))
