"""DAT deformable attention (Xia et al., CVPR 2022, ``DAttentionBaseline``) on (B, C, H, W) maps.

Queries attend *globally* to a small set of keys/values sampled at deformed reference points: a
``Hk x Wk`` grid (the input downsampled by the offset conv's stride) shifted by offsets predicted per
group from the queries. Positional information is either a continuous relative-position table
sampled bilinearly at the query-key displacement, a depthwise 3x3 conv of the queries added to the
output (``dwc``), or nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from restoration.layers.deformable_offsets import OffsetNetwork, bound_offsets, reference_grid, sample_at

__all__ = ["DeformableAttention2d", "DAT_PE_TYPES"]

DAT_PE_TYPES: tuple[str, ...] = ("dwc", "table", "none")


class DeformableAttention2d(nn.Module):
    """DAT deformable multi-head attention.

    Per group (``C / n_groups`` channels): offsets ``conv_offset(q_g)`` = dw ``ks x ks`` conv with
    stride ``stride`` -> LayerNorm2d -> GELU -> 1x1 to 2 channels (no bias), bounded
    ``tanh(o) * [1/(Hk-1), 1/(Wk-1)] * offset_range_factor``; reference points
    ``linspace(0.5, Hk-0.5, Hk)/(Hk-1)*2-1`` (DAT's grid); ``x_g`` is sampled there bilinearly
    (``align_corners=True``); ``k, v`` are 1x1 projections of the samples; each of ``num_heads`` heads
    attends from every query to all ``Hk * Wk`` samples of its group.

    Args:
        dim: Channels ``C``.
        num_heads: Heads (divisible by ``n_groups``; ``C`` divisible by ``num_heads``).
        n_groups: Offset groups (each shares its sampled points among ``num_heads / n_groups`` heads).
        stride: Downsampling of the sampled grid (``Hk ~ H / stride``).
        offset_kernel_size: Kernel of the offset dw conv (default: ``stride`` + 1 if even else stride,
            at least 3).
        offset_range_factor: Offset bound in units of sampled-grid cells (``< 0``: unbounded, clamped).
        pe_type: ``'dwc'`` (dw 3x3 of q added to the output), ``'table'`` (continuous
            ``(heads, 2*q_size-1, 2*q_size-1)`` bias table sampled at the normalised query-key
            displacement; works for any input size) or ``'none'``.
        q_size: Table resolution ``(h, w)`` for ``pe_type='table'``.
        attn_drop: Dropout on attention weights.
        proj_drop: Dropout after ``proj_out``.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``; needs ``Hk, Wk >= 2``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        n_groups: int = 1,
        stride: int = 1,
        offset_kernel_size: int | None = None,
        offset_range_factor: float = 2.0,
        pe_type: str = "dwc",
        q_size: tuple[int, int] = (16, 16),
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads or num_heads % n_groups:
            raise ValueError(f"need dim % num_heads == 0 and num_heads % n_groups == 0, got dim={dim}, "
                             f"num_heads={num_heads}, n_groups={n_groups}")
        if pe_type not in DAT_PE_TYPES:
            raise ValueError(f"unknown pe_type {pe_type!r}; choose one of {DAT_PE_TYPES}")
        self.num_heads, self.n_groups, self.stride = num_heads, n_groups, stride
        self.head_dim = dim // num_heads
        self.group_channels = dim // n_groups
        self.scale = self.head_dim ** -0.5
        self.offset_range_factor = offset_range_factor
        self.pe_type = pe_type
        ks = offset_kernel_size or max(3, stride + 1 if stride % 2 == 0 else stride)
        pad = ks // 2 if ks != stride else 0
        # eps: DAT's LayerNormProxy = nn.LayerNorm over channels
        self.conv_offset = OffsetNetwork(self.group_channels, ks, stride, pad, eps=1e-5)
        self.proj_q = nn.Conv2d(dim, dim, 1)
        self.proj_k = nn.Conv2d(dim, dim, 1)
        self.proj_v = nn.Conv2d(dim, dim, 1)
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)
        if pe_type == "dwc":
            self.rpe_table = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
        elif pe_type == "table":
            self.rpe_table = nn.Parameter(torch.zeros(num_heads, 2 * q_size[0] - 1, 2 * q_size[1] - 1))
            nn.init.trunc_normal_(self.rpe_table, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g, gc, nh, hd = self.n_groups, self.group_channels, self.num_heads, self.head_dim
        q = self.proj_q(x)
        offset = self.conv_offset(q.reshape(b * g, gc, h, w))  # (B*g, 2, Hk, Wk)
        hk, wk = offset.shape[-2:]
        if hk < 2 or wk < 2:
            raise ValueError(f"DAT attention with stride {self.stride} samples a {hk}x{wk} grid from a "
                             f"{h}x{w} map; it needs at least 2x2 (input >= {2 * self.stride}x{2 * self.stride})")
        if self.offset_range_factor >= 0:
            offset = bound_offsets(offset, self.offset_range_factor)
        pos = offset.permute(0, 2, 3, 1) + reference_grid(hk, wk, 0.5, x.dtype, x.device)
        if self.offset_range_factor < 0:
            pos = pos.clamp(-1.0, 1.0)
        n = hk * wk
        sampled = sample_at(x.reshape(b * g, gc, h, w), pos).reshape(b, c, 1, n)
        qh = q.reshape(b * nh, hd, h * w)
        k = self.proj_k(sampled).reshape(b * nh, hd, n)
        v = self.proj_v(sampled).reshape(b * nh, hd, n)
        attn = torch.einsum("bcm,bcn->bmn", qh, k) * self.scale  # (B*heads, HW, Hk*Wk)
        if self.pe_type == "table":
            q_grid = reference_grid(h, w, 0.0, x.dtype, x.device).reshape(1, h * w, 1, 2)
            # normalised displacement in [-2, 2] -> table coordinates [-1, 1]
            disp = (q_grid - pos.reshape(b * g, 1, n, 2)) * 0.5
            table = self.rpe_table[None].expand(b, -1, -1, -1).reshape(b * g, nh // g, *self.rpe_table.shape[1:])
            bias = sample_at(table, disp)
            attn = attn + bias.reshape(b * nh, h * w, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = torch.einsum("bmn,bcn->bcm", attn, v).reshape(b, c, h, w)
        if self.pe_type == "dwc":
            out = out + self.rpe_table(q)
        return self.proj_drop(self.proj_out(out))
