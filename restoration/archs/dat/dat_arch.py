"""DAT: Dual Aggregation Transformer for image super-resolution (Chen et al., ICCV 2023).

Blocks alternate spatial attention in rectangular windows (even block index) and channel attention (odd),
each with an "adaptive interaction" branch (depth-wise conv + BatchNorm + GELU, gated by channel / spatial maps
of the other branch), and a spatial-gate FFN (SGFN). Constructor keywords, defaults, module and buffer names are
the official ``basicsr/archs/dat_arch.py`` (zhengchen1999/DAT), so DAT, DAT-S, DAT-2 and DAT-light releases
load with ``strict=True``.

State-dict quirks kept for strict loading: every window branch stores ``rpe_biases`` (float) and
``relative_position_index`` (int64); shifted blocks store ``attn_mask_0`` / ``attn_mask_1`` computed for an
``img_size x img_size`` input (so ``img_size`` shows in the weights; other inputs recompute the mask by the same
formula); BatchNorm running statistics are used in eval mode. Padding: the q, k, v tensors (not the image) are
zero-padded bottom/right to a multiple of ``max(split_size)`` and the padded tokens are NOT masked in unshifted
windows (the official behaviour), so any ``H x W`` is accepted.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec
from restoration.layers.input_norm import input_mean
from restoration.layers.upsample import SUPPORTED_SCALES, Upsample, UpsampleOneStep

__all__ = ["DAT", "DATB", "AdaptiveSpatialAttention", "AdaptiveChannelAttention", "SGFN", "is_shifted_block",
           "UPSAMPLERS", "RESI_CONNECTIONS"]

UPSAMPLERS: tuple[str, ...] = ("pixelshuffle", "pixelshuffledirect")
RESI_CONNECTIONS: tuple[str, ...] = ("1conv", "3conv")
_NUM_FEAT = 64  # channels of the 'pixelshuffle' reconstruction head (fixed upstream)
_MASK_VALUE = -100.0


def is_shifted_block(rg_idx: int, b_idx: int) -> bool:
    """Whether block ``b_idx`` of residual group ``rg_idx`` uses shifted windows (official rule; only even blocks,
    the spatial ones, reach it)."""
    return (rg_idx % 2 == 0 and b_idx > 0 and (b_idx - 2) % 4 == 0) or (rg_idx % 2 != 0 and b_idx % 4 == 0)


def _to_windows(x: torch.Tensor, hs: int, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, hs * ws, C), windows in row-major order."""
    b, h, w, c = x.shape
    return x.view(b, h // hs, hs, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, hs * ws, c)


def _from_windows(windows: torch.Tensor, hs: int, ws: int, h: int, w: int) -> torch.Tensor:
    """(B * nW, hs * ws, C) -> (B, H, W, C)."""
    b = windows.shape[0] // ((h // hs) * (w // ws))
    return windows.view(b, h // hs, w // ws, hs, ws, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def shifted_rect_mask(h: int, w: int, hs: int, ws: int) -> torch.Tensor:
    """(nW, hs*ws, hs*ws) additive mask (0 / -100) of windows rolled by (-hs//2, -ws//2) on an H x W map."""
    label = torch.zeros(1, h, w, 1)
    cnt = 0
    for hsl in (slice(0, -hs), slice(-hs, -(hs // 2)), slice(-(hs // 2), None)):
        for wsl in (slice(0, -ws), slice(-ws, -(ws // 2)), slice(-(ws // 2), None)):
            label[:, hsl, wsl, :] = cnt
            cnt += 1
    windows = _to_windows(label, hs, ws).squeeze(-1)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, _MASK_VALUE)


class DynamicPosBias(nn.Module):
    """Relative position bias from an MLP on the (dy, dx) offsets (upstream, ``residual=False`` as DAT uses it).

    Keys: ``pos_proj`` (2 -> P), ``pos1`` / ``pos2`` (LayerNorm, ReLU, Linear P -> P), ``pos3`` (.., P -> heads).
    Shapes: (M, 2) -> (M, heads).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        pos_dim = dim // 4
        self.pos_proj = nn.Linear(2, pos_dim)
        self.pos1 = nn.Sequential(nn.LayerNorm(pos_dim), nn.ReLU(), nn.Linear(pos_dim, pos_dim))
        self.pos2 = nn.Sequential(nn.LayerNorm(pos_dim), nn.ReLU(), nn.Linear(pos_dim, pos_dim))
        self.pos3 = nn.Sequential(nn.LayerNorm(pos_dim), nn.ReLU(), nn.Linear(pos_dim, num_heads))

    def forward(self, biases: torch.Tensor) -> torch.Tensor:
        """(M, 2) -> (M, heads)."""
        return self.pos3(self.pos2(self.pos1(self.pos_proj(biases))))


class RectWindowAttention(nn.Module):
    """Multi-head attention inside ``hs x ws`` windows with a dynamic position bias (upstream
    ``Spatial_Attention``; no parameters of its own besides ``pos``).

    Args:
        dim: Channels C of this branch.
        window: (hs, ws).
        num_heads: Heads.
        qk_scale: Query scale; None: ``(C / heads) ** -0.5``.

    Shapes: q, k, v (B, H*W, C) with H, W multiples of hs, ws -> (B, H, W, C).
    """

    def __init__(self, dim: int, window: tuple[int, int], num_heads: int, qk_scale: float | None = None) -> None:
        super().__init__()
        self.hs, self.ws = window
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.pos = DynamicPosBias(dim // 4, num_heads)
        dy = torch.arange(1 - self.hs, self.hs)
        dx = torch.arange(1 - self.ws, self.ws)
        self.register_buffer("rpe_biases", torch.stack(torch.meshgrid(dy, dx, indexing="ij")).flatten(1).t().float())
        ys, xs = torch.meshgrid(torch.arange(self.hs), torch.arange(self.ws), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        index = (ys[:, None] - ys[None, :] + self.hs - 1) * (2 * self.ws - 1) + (xs[:, None] - xs[None, :] + self.ws - 1)
        self.register_buffer("relative_position_index", index)

    def _heads(self, t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = t.shape
        win = _to_windows(t.view(b, h, w, c), self.hs, self.ws)
        return win.view(win.shape[0], -1, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, h: int, w: int,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """See the class docstring; ``mask`` (nW, N, N) or None."""
        b, _, c = q.shape
        q, k, v = (self._heads(t, h, w) for t in (q, k, v))
        n = self.hs * self.ws
        bias = self.pos(self.rpe_biases)[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        attn = (q * self.scale) @ k.transpose(-2, -1) + bias.unsqueeze(0)
        if mask is not None:
            attn = (attn.view(b, mask.shape[0], self.num_heads, n, n) + mask.unsqueeze(1)).view(-1, self.num_heads, n, n)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(-1, n, c)
        return _from_windows(out, self.hs, self.ws, h, w)


def _interaction(dim: int) -> tuple[nn.Sequential, nn.Sequential, nn.Sequential]:
    """The adaptive-interaction modules: ``dwconv``, ``channel_interaction``, ``spatial_interaction``."""
    dwconv = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1, groups=dim), nn.BatchNorm2d(dim), nn.GELU())
    channel = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, dim // 8, 1), nn.BatchNorm2d(dim // 8), nn.GELU(),
                            nn.Conv2d(dim // 8, dim, 1))
    spatial = nn.Sequential(nn.Conv2d(dim, dim // 16, 1), nn.BatchNorm2d(dim // 16), nn.GELU(),
                            nn.Conv2d(dim // 16, 1, 1))
    return dwconv, channel, spatial


def _image(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)


def _tokens(image: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return image.flatten(2).transpose(1, 2)


class AdaptiveSpatialAttention(nn.Module):
    """Spatial window attention (upstream ``Adaptive_Spatial_Attention``): half the channels in ``split_size``
    windows, the other half in the transposed windows, each with ``num_heads // 2`` heads; the attention output
    is gated by a channel map of the conv branch, the conv branch (on v) by a spatial map of the attention.

    Shapes: (B, H*W, C) -> (B, H*W, C).
    """

    def __init__(self, dim: int, num_heads: int, reso: int, split_size: Sequence[int], qkv_bias: bool,
                 qk_scale: float | None, shifted: bool) -> None:
        super().__init__()
        self.split_size = tuple(split_size)
        self.reso = reso
        self.shifted = shifted
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        s0, s1 = self.split_size
        self.attns = nn.ModuleList([RectWindowAttention(dim // 2, (s0, s1), num_heads // 2, qk_scale),
                                    RectWindowAttention(dim // 2, (s1, s0), num_heads // 2, qk_scale)])
        if shifted:
            self.register_buffer("attn_mask_0", shifted_rect_mask(reso, reso, s0, s1))
            self.register_buffer("attn_mask_1", shifted_rect_mask(reso, reso, s1, s0))
        else:
            self.attn_mask_0 = self.attn_mask_1 = None
        self.dwconv, self.channel_interaction, self.spatial_interaction = _interaction(dim)

    def _branch(self, i: int, qkv: torch.Tensor, hp: int, wp: int) -> torch.Tensor:
        """Branch ``i`` on padded (3, B, Hp, Wp, C/2) -> (B, Hp, Wp, C/2), rolled and masked when shifted."""
        attn = self.attns[i]
        if not self.shifted:
            q, k, v = qkv.flatten(2, 3)
            return attn(q, k, v, hp, wp)
        sh, sw = attn.hs // 2, attn.ws // 2
        q, k, v = torch.roll(qkv, shifts=(-sh, -sw), dims=(2, 3)).flatten(2, 3)
        stored = self.attn_mask_0 if i == 0 else self.attn_mask_1
        mask = stored if hp == self.reso and wp == self.reso else shifted_rect_mask(hp, wp, attn.hs, attn.ws)
        return torch.roll(attn(q, k, v, hp, wp, mask.to(q)), shifts=(sh, sw), dims=(1, 2))

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C)."""
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, c).permute(2, 0, 1, 3)  # (3, B, HW, C)
        v_image = _image(qkv[2], h, w)
        m = max(self.split_size)
        pad_b, pad_r = (m - h % m) % m, (m - w % m) % m
        padded = F.pad(qkv.reshape(3 * b, h, w, c), (0, 0, 0, pad_r, 0, pad_b)).view(3, b, h + pad_b, w + pad_r, c)
        halves = [self._branch(i, padded[..., i * (c // 2):(i + 1) * (c // 2)], h + pad_b, w + pad_r)
                  for i in range(2)]
        attended = torch.cat([t[:, :h, :w] for t in halves], dim=-1).reshape(b, n, c)
        conv = self.dwconv(v_image)
        channel_map = self.channel_interaction(conv).view(b, 1, c)
        spatial_map = self.spatial_interaction(_image(attended, h, w))
        out = attended * torch.sigmoid(channel_map) + _tokens(torch.sigmoid(spatial_map) * conv)
        return self.proj(out)


class AdaptiveChannelAttention(nn.Module):
    """XCiT-style channel attention (upstream ``Adaptive_Channel_Attention``): per head L2-normalised q, k over the
    tokens, ``softmax(q k^T * temperature)`` over channels; gated by a spatial map of the conv branch (on v), the
    conv branch by a channel map of the attention.

    Shapes: (B, H*W, C) -> (B, H*W, C).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.dwconv, self.channel_interaction, self.spatial_interaction = _interaction(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 4, 1)  # (B,h,d,N)
        attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)) * self.temperature
        attended = (attn.softmax(dim=-1) @ v).permute(0, 3, 1, 2).reshape(b, n, c)
        conv = self.dwconv(v.reshape(b, c, h, w))
        channel_map = self.channel_interaction(_image(attended, h, w))
        spatial_map = _tokens(self.spatial_interaction(conv))
        out = attended * torch.sigmoid(spatial_map) + _tokens(conv * torch.sigmoid(channel_map))
        return self.proj(out)


class SGFN(nn.Module):
    """Spatial-gate FFN: ``fc1`` (C -> h), GELU, ``x1 * dwconv3x3(LayerNorm(x2))`` (``sg``), ``fc2`` (h/2 -> C).

    Shapes: (B, H*W, C) -> (B, H*W, C).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.sg = nn.Module()
        self.sg.norm = nn.LayerNorm(hidden // 2)
        self.sg.conv = nn.Conv2d(hidden // 2, hidden // 2, 3, 1, 1, groups=hidden // 2)
        self.fc2 = nn.Linear(hidden // 2, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C)."""
        x1, x2 = F.gelu(self.fc1(x)).chunk(2, dim=-1)
        return self.fc2(x1 * _tokens(self.sg.conv(_image(self.sg.norm(x2), h, w))))


class DATB(nn.Module):
    """``x + attn(norm1(x))``, ``x + ffn(norm2(x))``; spatial attention at even ``b_idx``, channel at odd.

    Stochastic depth (``drop_path``) is identity in eval; in training it drops the branch per sample.
    """

    def __init__(self, dim: int, num_heads: int, reso: int, split_size: Sequence[int], expansion_factor: float,
                 qkv_bias: bool, qk_scale: float | None, drop_path: float, rg_idx: int, b_idx: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn: nn.Module
        if b_idx % 2 == 0:
            self.attn = AdaptiveSpatialAttention(dim, num_heads, reso, split_size, qkv_bias, qk_scale,
                                                 is_shifted_block(rg_idx, b_idx))
        else:
            self.attn = AdaptiveChannelAttention(dim, num_heads, qkv_bias)
        self.drop_path = drop_path
        self.ffn = SGFN(dim, int(dim * expansion_factor))
        self.norm2 = nn.LayerNorm(dim)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_path == 0.0:
            return x
        keep = 1.0 - self.drop_path
        return x * x.new_empty(x.shape[0], 1, 1).bernoulli_(keep) / keep

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C)."""
        x = x + self._drop(self.attn(self.norm1(x), h, w))
        return x + self._drop(self.ffn(self.norm2(x), h, w))


def _resi_conv(dim: int, kind: str) -> nn.Module:
    """'1conv': conv3x3; '3conv': conv3x3 C->C/4, LeakyReLU 0.2, conv1x1, LeakyReLU 0.2, conv3x3 C/4->C."""
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    return nn.Sequential(nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(dim // 4, dim // 4, 1),
                         nn.LeakyReLU(0.2), nn.Conv2d(dim // 4, dim, 3, 1, 1))


class ResidualGroup(nn.Module):
    """``depth`` DATBs then ``conv`` (on the image layout), plus the group's input. Keys ``blocks.{i}``, ``conv``."""

    def __init__(self, dim: int, depth: int, rg_idx: int, drop_paths: Sequence[float], resi_connection: str,
                 use_chk: bool, **block: Any) -> None:
        super().__init__()
        self.use_chk = use_chk
        self.blocks = nn.ModuleList(DATB(dim, drop_path=drop_paths[i], rg_idx=rg_idx, b_idx=i, **block)
                                    for i in range(depth))
        self.conv = _resi_conv(dim, resi_connection)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C)."""
        res = x
        for blk in self.blocks:
            if self.use_chk and self.training:
                x = torch.utils.checkpoint.checkpoint(blk, x, h, w, use_reentrant=False)
            else:
                x = blk(x, h, w)
        return res + _tokens(self.conv(_image(x, h, w)))


class DAT(nn.Module):
    """Dual Aggregation Transformer (official signature; ``num_feat`` 64 and ``num_out_ch = in_chans`` fixed).

    Args:
        img_size: Side the stored shift masks are computed for (64 in every release; changes the state dict).
        in_chans: Image channels (input and output).
        embed_dim: Transformer channels C.
        split_size: (s0, s1) window of the first half of the channels; the second half uses (s1, s0).
        depth: Blocks per residual group.
        num_heads: Heads per group (even: each window branch takes half).
        expansion_factor: SGFN hidden width ``int(C * factor)``.
        qkv_bias: Bias of the q, k, v projections.
        qk_scale: Query scale of the window attention; None: ``head_dim ** -0.5``.
        drop_rate, attn_drop_rate: Upstream dropout rates; both 0 in every release and not implemented here.
        drop_path_rate: Stochastic depth, linearly up to this over all blocks (training only).
        act_layer, norm_layer: Upstream hooks; only GELU / LayerNorm (their defaults) exist.
        use_chk: Gradient checkpointing of each block in training.
        upscale: 2^n or 3 (``'pixelshuffle'``), any >= 1 (``'pixelshuffledirect'``).
        img_range: Internal scaling of ``(x - mean)``; undone at the end.
        resi_connection: ``'1conv'`` or ``'3conv'``.
        upsampler: ``'pixelshuffle'`` (conv -> 64, LeakyReLU, Upsample, conv_last) or ``'pixelshuffledirect'``.

    Shapes: (B, in_chans, H, W) in [0, 1] -> (B, in_chans, H·upscale, W·upscale); any H, W (padding inside).
    """

    def __init__(self, img_size: int = 64, in_chans: int = 3, embed_dim: int = 180,
                 split_size: Sequence[int] = (2, 4), depth: Sequence[int] = (2, 2, 2, 2),
                 num_heads: Sequence[int] = (2, 2, 2, 2), expansion_factor: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1, act_layer: Callable[..., nn.Module] = nn.GELU,
                 norm_layer: Callable[..., nn.Module] = nn.LayerNorm, use_chk: bool = False, upscale: int = 2,
                 img_range: float = 1.0, resi_connection: str = "1conv", upsampler: str = "pixelshuffle") -> None:
        super().__init__()
        opt = dict(img_size=img_size, in_chans=in_chans, embed_dim=embed_dim, split_size=split_size, depth=depth,
                   num_heads=num_heads, expansion_factor=expansion_factor, qkv_bias=qkv_bias, qk_scale=qk_scale,
                   drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate,
                   act_layer=act_layer, norm_layer=norm_layer, use_chk=use_chk, upscale=upscale,
                   img_range=img_range, resi_connection=resi_connection, upsampler=upsampler)
        self.spec = checked_spec(type(self), opt)
        self.img_range = img_range
        self.upscale = upscale
        self.upsampler = upsampler
        self.mean = input_mean(in_chans)  # a plain attribute upstream: not in the state dict
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.before_RG = nn.Sequential(nn.Identity(), nn.LayerNorm(embed_dim))  # upstream: (Rearrange, LayerNorm)
        total = sum(depth)
        rates = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        self.layers = nn.ModuleList(
            ResidualGroup(embed_dim, d, i, rates[sum(depth[:i]):sum(depth[:i + 1])], resi_connection, use_chk,
                          num_heads=num_heads[i], reso=img_size, split_size=split_size,
                          expansion_factor=expansion_factor, qkv_bias=qkv_bias, qk_scale=qk_scale)
            for i, d in enumerate(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = _resi_conv(embed_dim, resi_connection)
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, _NUM_FEAT, 3, 1, 1), nn.LeakyReLU())
            self.upsample: nn.Module = Upsample(upscale, _NUM_FEAT)
            self.conv_last = nn.Conv2d(_NUM_FEAT, in_chans, 3, 1, 1)
        else:
            self.upsample = UpsampleOneStep(upscale, embed_dim, in_chans)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """Upstream init: truncated-normal(0.02) Linear weights, zero biases; unit norms."""
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt`` (split_size first: it decides the windows)."""
        problems: list[str] = []
        split = opt["split_size"]
        if (not isinstance(split, Sequence) or len(split) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 2 for s in split)):
            problems.append(f"split_size must be two integers >= 2 (window height, width), got {split!r}")
        elif any(s % 2 for s in split):
            problems.append(f"split_size {list(split)} has an odd side: shifted windows move by half a window")
        elif max(split) % min(split):
            problems.append(f"split_size {list(split)}: {min(split)} does not divide {max(split)}, the multiple the "
                            "features are padded to, so the windows would not tile them")
        for key in ("img_size", "in_chans", "embed_dim", "upscale"):
            if not isinstance(opt[key], int) or opt[key] < 1:
                problems.append(f"{key} must be >= 1, got {opt[key]!r}")
        depth, heads = opt["depth"], opt["num_heads"]
        if not isinstance(depth, Sequence) or not depth or not all(isinstance(d, int) and d >= 1 for d in depth):
            problems.append(f"depth must list positive integers (blocks per group), got {depth!r}")
        elif not isinstance(heads, Sequence) or len(heads) != len(depth):
            problems.append(f"num_heads must list one head count per group ({len(depth)}), got {heads!r}")
        else:
            dim = opt["embed_dim"]
            for i, nh in enumerate(heads):
                if not isinstance(nh, int) or nh < 2 or nh % 2 or (isinstance(dim, int) and (dim // 2) % (nh // 2)):
                    problems.append(f"num_heads[{i}]={nh!r} must be even with num_heads/2 dividing embed_dim/2")
        if isinstance(opt["embed_dim"], int) and opt["embed_dim"] < 32:
            problems.append(f"embed_dim must be >= 32 (the position-bias MLP has embed_dim // 2 // 16 channels), "
                            f"got {opt['embed_dim']}")
        if opt["upsampler"] not in UPSAMPLERS:
            problems.append(f"upsampler must be one of {list(UPSAMPLERS)}, got {opt['upsampler']!r}")
        elif opt["upsampler"] == "pixelshuffle" and isinstance(opt["upscale"], int) and not (
                opt["upscale"] == 3 or opt["upscale"] & (opt["upscale"] - 1) == 0):
            problems.append(f"upscale {opt['upscale']} needs upsampler 'pixelshuffledirect' ('pixelshuffle': "
                            f"{SUPPORTED_SCALES})")
        if opt["resi_connection"] not in RESI_CONNECTIONS:
            problems.append(f"resi_connection must be one of {list(RESI_CONNECTIONS)}, got {opt['resi_connection']!r}")
        for key in ("drop_rate", "attn_drop_rate"):
            if opt[key]:
                problems.append(f"{key} {opt[key]!r} is not implemented here (0 in every DAT release)")
        if opt["act_layer"] is not nn.GELU or opt["norm_layer"] is not nn.LayerNorm:
            problems.append("act_layer / norm_layer other than nn.GELU / nn.LayerNorm are not supported")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any input size (q, k, v are padded inside); scale ``upscale``."""
        return ArchSpec(scale=int(opt["upscale"]), in_channels=int(opt["in_chans"]), out_channels=int(opt["in_chans"]))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): the residual groups on tokens."""
        h, w = x.shape[-2:]
        tokens = self.before_RG(_tokens(x))
        for layer in self.layers:
            tokens = layer(tokens, h, w)
        return _image(self.norm(tokens), h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H·upscale, W·upscale)."""
        mean = self.mean.to(x)
        x = self.conv_first((x - mean) * self.img_range)
        x = self.conv_after_body(self.forward_features(x)) + x
        if self.upsampler == "pixelshuffle":
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        else:
            x = self.upsample(x)
        return x / self.img_range + mean
