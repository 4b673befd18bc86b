"""Window multi-head self-attention (W-MSA) of Swin-style networks: :func:`window_attention`, the
:class:`WindowAttention` module built on it, and the (shifted-)window pass of a block
(:func:`shifted_window_attention`).

What W-MSA computes: the token map is cut into ``ws x ws`` windows (a shifted block first rolls it by
``ws / 2``), and every window attends to itself, per head::

    out = softmax(scale * q @ k^T + bias + mask) @ v        q: (N, d), k, v: (M, d), out: (N, d)

``bias`` is the learned relative-position bias (one ``(N, M)`` table per head, shared by all windows);
``mask`` (0 / -100, one ``(N, M)`` per window position, shared by all images) stops a rolled window from
mixing tokens that were not neighbours before the roll.

:func:`window_attention` is the only place where attention logits are formed, and the one place where a
backend is chosen (the switch, and the measured default, is :mod:`restoration.layers.config`):

* ``'reference'``: the official arithmetic above, step by step;
* ``'sdpa'``: the same function through fused kernels: on the CPU the hand-tuned kernels of
  :mod:`restoration.layers.window_attention_cpu` (chosen by window size), elsewhere SDPA's memory-efficient kernel laid out by
  :mod:`restoration.layers.window_attention_cuda`.

``tests/test_window_attention.py`` proves the backends equal, forward and backward. FlexAttention is not
offered: inside a window attention is dense, so a block mask saves nothing, and un-compiled it is far slower
than SDPA on the CPU (docs/benchmarks.md, "FlexAttention for window attention").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restoration.layers.config import resolve_backend
from restoration.layers.relative_position import relative_position_bias, relative_position_index
from restoration.layers.window_attention_cpu import cpu_window_attention
from restoration.layers.window_attention_cuda import sdpa_window_attention
from restoration.layers.window_partition import window_partition, window_reverse

__all__ = ["window_attention", "WindowAttention", "shifted_window_attention"]


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
        q: (B*nW, nH, N, d) queries, windows of one image consecutive.
        k: (B*nW, nH, M, d) keys.
        v: (B*nW, nH, M, d) values.
        bias: (nH, N, M) additive bias shared by all windows (relative-position bias), or None.
        mask: (nW, N, M) additive mask, window ``i`` of every image gets ``mask[i]`` (0 / -100), or None.
        scale: Logit scale; ``d ** -0.5`` when None.
        backend: ``'reference'``, ``'sdpa'`` or ``'auto'`` (:func:`restoration.layers.config.resolve_backend`);
            None uses :func:`restoration.layers.config.get_attn_backend`.
        dropout_p: Dropout on the attention probabilities (pass 0 in eval mode).

    Returns:
        (B*nW, nH, N, d).
    """
    backend = resolve_backend("window", backend, q.device, head_dim=q.shape[-1])
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if mask is not None and q.shape[0] % mask.shape[0]:
        raise ValueError(f"{q.shape[0]} windows is not a multiple of the mask's {mask.shape[0]} windows")
    if backend == "sdpa":
        if q.device.type == "cpu" and dropout_p == 0 and (mask is None or not mask.requires_grad):
            return cpu_window_attention(q, k, v, bias, mask, scale)
        return sdpa_window_attention(q, k, v, bias, mask, scale, dropout_p)
    # reference: the official order of operations (scale q first), so outputs match bit for bit
    attn = (q * scale) @ k.transpose(-2, -1)
    if bias is not None:
        attn = attn + bias.unsqueeze(0)
    if mask is not None:
        bw, nh, n, m = attn.shape
        n_win = mask.shape[0]
        attn = (attn.view(bw // n_win, n_win, nh, n, m) + mask.to(attn.dtype).unsqueeze(1).unsqueeze(0)).view(bw, nh, n, m)
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
        self.attn_backend = attn_backend if attn_backend is None else resolve_backend("window", attn_backend)
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
