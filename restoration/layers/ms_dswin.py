"""Multi-scale deformable sliding-window attention (MS-DSwin, DSwinIR).

Every query attends to a neighbourhood centred on itself (neighbourhood attention, NATTEN
semantics), but keys and values are read from the input *resampled at content-dependent offsets*
predicted per head from the queries; three head groups use different neighbourhoods (multi-scale).
Attribute names and arithmetic follow the official ``MSDeformableNeighborhoodAttention``
(Aitical/DSwinIR) so official state dicts load strictly.
"""

from __future__ import annotations

import torch
from torch import nn

from restoration.layers.deformable_offsets import (
    OffsetNetwork,
    bound_offsets,
    normalized_grid,
    reference_grid,
    sample_at,
)
from restoration.layers.neighborhood_attention import neighborhood_attention_2d

__all__ = ["MSDeformableNeighborhoodAttention", "ms_dswin_neighbourhoods", "ms_dswin_min_size"]


def ms_dswin_neighbourhoods(kernel_size: int, dilation: int) -> list[tuple[int, int]]:
    """``(kernel, dilation)`` of the three head groups: ``(k, d)``, ``(k, 2)``, ``(k + 2, d)``.

    The second group's dilation is fixed to 2 and the third widens the kernel, as released.
    """
    return [(kernel_size, dilation), (kernel_size, 2), (kernel_size + 2, dilation)]


def ms_dswin_min_size(kernel_size: int, dilation: int) -> int:
    """Smallest feature-map side the three neighbourhoods fit in (``max k_i * d_i``)."""
    return max(k * d for k, d in ms_dswin_neighbourhoods(kernel_size, dilation))


class MSDeformableNeighborhoodAttention(nn.Module):
    """MS-DSwin attention on ``(B, C, H, W)`` maps.

    Steps (per head ``g``, ``C_g = C / heads`` channels):

    1. ``q = proj_q(x)``; offsets ``o = conv_offset(q_g)`` (dw ``k x k`` -> LayerNorm2d -> GELU ->
       1x1 to 2 channels, no bias), bounded ``tanh(o) * [1/(H-1), 1/(W-1)] * offset_range_factor``
       in normalised coordinates (at most ``offset_range_factor / 2`` pixels).
    2. ``x_g`` is resampled bilinearly (``align_corners=True``, zero padding) at
       ``reference + offset`` where the reference grid is ``linspace(0.5, H-0.5, H)/(H-1)*2-1``,
       i.e. half a pixel off the pixel centres -- the released code's convention, kept for
       checkpoint compatibility (``centered_grid=True`` uses the exact centres instead).
    3. ``k, v = proj_k, proj_v`` of the resampled map; heads split into three equal groups, each
       doing neighbourhood attention with its own ``(kernel, dilation)`` (see
       :func:`ms_dswin_neighbourhoods`) and relative-position bias table ``rpb_h{1,2,3}``.
    4. ``out + rpe_table(q)`` (LePE-style dw 3x3 of q), then ``proj_out``.

    Args:
        dim: Channels ``C`` (divisible by ``num_heads``).
        num_heads: Heads; must be divisible by 3 (three neighbourhood groups).
        kernel_size: Odd base neighbourhood size ``k`` (also the offset conv kernel).
        dilation: Base dilation ``d``.
        offset_range_factor: Offset bound, see step 1.
        rel_pos_bias: Learn the per-group relative-position bias tables.
        centered_grid: Sample at exact pixel centres instead of the released +0.5 px grid.
        backend: Neighbourhood-attention backend (see
            :func:`restoration.layers.neighborhood_attention.neighborhood_attention_2d`); None: the
            process-wide default of the ``neighborhood`` op, read at every call.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``; ``H, W >= ms_dswin_min_size(k, d)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        kernel_size: int = 3,
        dilation: int = 1,
        offset_range_factor: float = 1.0,
        rel_pos_bias: bool = True,
        centered_grid: bool = False,
        backend: str | None = None,
    ) -> None:
        super().__init__()
        if num_heads % 3 != 0:
            raise ValueError(f"MS-DSwin splits heads into 3 neighbourhood groups: num_heads={num_heads} "
                             "must be divisible by 3")
        if dim % num_heads != 0:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.offset_range_factor = offset_range_factor
        self.centered_grid = centered_grid
        self.backend = backend
        self.neighbourhoods = ms_dswin_neighbourhoods(kernel_size, dilation)
        self.conv_offset = OffsetNetwork(self.head_dim, kernel_size, 1, kernel_size // 2, eps=1e-6)
        self.proj_q = nn.Conv2d(dim, dim, 1)
        self.proj_k = nn.Conv2d(dim, dim, 1)
        self.proj_v = nn.Conv2d(dim, dim, 1)
        self.proj_out = nn.Conv2d(dim, dim, 1)
        if rel_pos_bias:
            for i, (k, _) in enumerate(self.neighbourhoods, start=1):
                table = nn.Parameter(torch.zeros(num_heads // 3, 2 * k - 1, 2 * k - 1))
                nn.init.trunc_normal_(table, std=0.02, a=-2.0, b=2.0)
                setattr(self, f"rpb_h{i}", table)
        self.rel_pos_bias = rel_pos_bias
        self.rpe_table = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def _reference_points(self, h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """``(H, W, 2)`` (y, x) in ``align_corners=True`` normalised coordinates."""
        if self.centered_grid:
            ys, xs = (torch.arange(n, dtype=dtype, device=device) for n in (h, w))
            return normalized_grid(ys, xs)
        return reference_grid(h, w, 0.5, dtype, device)  # released convention: pixel centre + 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        need = ms_dswin_min_size(self.kernel_size, self.dilation)
        if h < need or w < need:
            raise ValueError(f"MS-DSwin attention (kernel_size={self.kernel_size}, dilation={self.dilation}) "
                             f"needs feature maps of at least {need}x{need}, got {h}x{w}")
        g, cg = self.num_heads, self.head_dim
        q = self.proj_q(x)
        offset = self.conv_offset(q.reshape(b * g, cg, h, w))  # (B*g, 2, H, W), (dy, dx)
        offset = bound_offsets(offset, self.offset_range_factor)
        pos = offset.permute(0, 2, 3, 1) + self._reference_points(h, w, x.dtype, x.device)
        x_sampled = sample_at(x.reshape(b * g, cg, h, w), pos).reshape(b, c, h, w)

        lepe = self.rpe_table(q)
        # (B, C, H, W) -> (B, heads, H, W, C_g)
        q5 = q.reshape(b, g, cg, h, w).permute(0, 1, 3, 4, 2)
        k5 = self.proj_k(x_sampled).reshape(b, g, cg, h, w).permute(0, 1, 3, 4, 2)
        v5 = self.proj_v(x_sampled).reshape(b, g, cg, h, w).permute(0, 1, 3, 4, 2)
        outs = []
        for i, ((ks, dil), qi, ki, vi) in enumerate(
            zip(self.neighbourhoods, q5.chunk(3, 1), k5.chunk(3, 1), v5.chunk(3, 1)), start=1
        ):
            rpb = getattr(self, f"rpb_h{i}") if self.rel_pos_bias else None
            outs.append(neighborhood_attention_2d(
                qi, ki, vi, ks, dil, rpb=rpb, scale=self.scale, backend=self.backend))
        out = torch.cat(outs, dim=1).permute(0, 1, 4, 2, 3).reshape(b, c, h, w)
        return self.proj_out(out + lepe)
