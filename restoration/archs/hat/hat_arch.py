"""HAT: Hybrid Attention Transformer (Chen et al., "Activating More Pixels in Image Super-Resolution
Transformer", CVPR 2023).

Constructor arguments and state-dict keys follow the official ``hat/archs/hat_arch.py``
(XPixelGroup/HAT), so the released ``params_ema`` checkpoints load strictly. Building blocks:

* HAB (hybrid attention block): ``x = x + WMSA(LN x) + conv_scale * CAB(LN x)``, ``x = x + MLP(LN x)``,
  windows alternately unshifted / shifted by ws/2;
* OCAB (overlapping cross-attention block), once per residual group: queries from ws x ws windows,
  keys/values from the overlapping ows x ows windows around them (ows = ws + int(ws * overlap_ratio));
* the relative-position indices live at the network level (``relative_position_index_SA`` and
  ``relative_position_index_OCA`` buffers, as in the official checkpoints).

HAT does not pad: inputs must be multiples of ``window_size`` (``net.spec.size_multiple``); the
framework's inference pads and crops back. Differences from the official code that do not change
the function: attention via :func:`restoration.layers.window_attention.window_attention`
(``attn_backend``), ``upsampler`` defaults to ``'pixelshuffle'`` (the only head the official class
builds; its default ``''`` yields a network that ignores its body), no ``**kwargs``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Sequence

import torch
from timm.layers import DropPath
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec
from restoration.layers.channel_attention import CAB
from restoration.layers.config import backend_problem, resolve_backend
from restoration.layers.input_norm import input_mean
from restoration.layers.mlp import Mlp
from restoration.layers.patch_embed import PatchEmbed, token_resolution
from restoration.layers.relative_position import (
    check_index_buffer,
    overlap_relative_position_index,
    relative_position_bias,
    relative_position_index,
)
from restoration.layers.residual_group import (
    ResidualGroup,
    SwinLayer,
    check_groups,
    drop_path_rates,
    residual_conv,
)
from restoration.layers.upsample import Upsample
from restoration.layers.weight_init import init_transformer_weights
from restoration.layers.window_attention import WindowAttention, shifted_window_attention, window_attention
from restoration.layers.window_partition import (
    fit_window,
    overlap_window_size,
    overlapping_windows,
    shifted_window_mask,
    window_partition,
    window_reverse,
)

__all__ = ["HAT", "HAB", "OCAB"]

RESI_CONNECTIONS = ("1conv", "identity")


class HAB(nn.Module):
    """Hybrid attention block: (shifted) window attention plus a scaled channel-attention conv branch.

    Args:
        dim: Channels C.
        input_resolution: Training token resolution (only for the official small-input rule).
        num_heads: Attention heads.
        window_size: Window side.
        shift_size: 0 or window_size // 2.
        compress_ratio: CAB bottleneck reduction.
        squeeze_factor: Channel-attention reduction.
        conv_scale: Weight of the CAB branch.
        mlp_ratio: MLP hidden width / C.
        qkv_bias: Learn q, k, v biases.
        qk_scale: Override of ``head_dim ** -0.5``.
        drop: Dropout rate.
        attn_drop: Attention-probability dropout.
        drop_path: Stochastic-depth rate.
        norm_layer: Normalisation class over the last dimension.
        attn_backend: Attention backend (None = global default).
    """

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        compress_ratio: int = 3,
        squeeze_factor: int = 30,
        conv_scale: float = 0.01,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        attn_backend: str | None = None,
    ) -> None:
        super().__init__()
        window_size, shift_size = fit_window(input_resolution, window_size, shift_size)
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(
            dim, window_size, num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
            proj_drop=drop, attn_backend=attn_backend, index_buffer=False,
        )
        self.conv_scale = conv_scale
        self.conv_block = CAB(dim, compress_ratio, squeeze_factor)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)

    def forward(self, x: torch.Tensor, rpi: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Args: x (B, H, W, C); rpi (ws², ws²) index; mask (nW, ws², ws²) for shifted blocks.

        Returns: (B, H, W, C).
        """
        y = self.norm1(x)
        conv_y = self.conv_block(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        attn_y = shifted_window_attention(y, self.attn, self.shift_size, mask, rpi=rpi)
        x = x + self.drop_path(attn_y) + conv_y * self.conv_scale
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OCAB(nn.Module):
    """Overlapping cross-attention block: window queries attend to enlarged, overlapping key windows.

    Keys ``norm1``, ``qkv``, ``relative_position_bias_table`` ((ws + ows - 1)², nH), ``proj``,
    ``norm2``, ``mlp``. Key windows at the border include zero padding, which is not masked (official).

    Args:
        dim: Channels C.
        window_size: Query window side ws.
        overlap_ratio: ows = ws + int(ws * overlap_ratio).
        num_heads: Attention heads.
        qkv_bias: Learn q, k, v biases.
        qk_scale: Override of ``head_dim ** -0.5``.
        mlp_ratio: MLP hidden width / C.
        norm_layer: Normalisation class.
        attn_backend: Attention backend (None = global default).
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        overlap_ratio: float,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        mlp_ratio: float = 2.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        attn_backend: str | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.overlap_win_size = overlap_window_size(window_size, overlap_ratio)
        self.attn_backend = attn_backend if attn_backend is None else resolve_backend("window", attn_backend)
        self.norm1 = norm_layer(dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((window_size + self.overlap_win_size - 1) ** 2, num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, rpi: torch.Tensor) -> torch.Tensor:
        """Args: x (B, H, W, C), H and W multiples of ws; rpi (ws², ows²) index. Returns (B, H, W, C)."""
        b, h, w, c = x.shape
        ws, ows, nh = self.window_size, self.overlap_win_size, self.num_heads
        shortcut = x
        qkv = self.qkv(self.norm1(x))  # B, H, W, 3C laid out as [q | k | v]
        q = window_partition(qkv[..., :c], ws).view(-1, ws * ws, nh, c // nh).transpose(1, 2)
        kv = overlapping_windows(qkv[..., c:].permute(0, 3, 1, 2), ws, ows)  # B*nW, ows², 2C
        k = kv[..., :c].reshape(-1, ows * ows, nh, c // nh).transpose(1, 2)
        v = kv[..., c:].reshape(-1, ows * ows, nh, c // nh).transpose(1, 2)
        bias = relative_position_bias(self.relative_position_bias_table, rpi)
        out = window_attention(q, k, v, bias=bias, scale=self.scale, backend=self.attn_backend)
        out = window_reverse(out.transpose(1, 2).reshape(-1, ws, ws, c), ws, h, w)
        x = self.proj(out) + shortcut
        return x + self.mlp(self.norm2(x))


class AttenBlocks(SwinLayer):
    """The HABs of one residual group followed by its OCAB (official ``AttenBlocks``)."""

    def __init__(self, blocks: Sequence[nn.Module], overlap_attn: nn.Module, use_checkpoint: bool) -> None:
        super().__init__(blocks, use_checkpoint)
        self.overlap_attn = overlap_attn

    def forward(self, x: torch.Tensor, rpi_sa: torch.Tensor, rpi_oca: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        return self.overlap_attn(super().forward(x, rpi_sa, mask), rpi_oca)


class RHAG(ResidualGroup):
    """Residual hybrid attention group: ``x + conv(AttenBlocks(x))``, called as ``rhag(x, rpi_sa, rpi_oca, mask)``."""

    def __init__(self, dim: int, residual_group: AttenBlocks, resi_connection: str) -> None:
        super().__init__(residual_group, residual_conv(dim, resi_connection))


class HAT(nn.Module):
    """HAT for classical / real-world super-resolution.

    Input (B, in_chans, H, W) in [0, 1] with H, W multiples of ``window_size``; output
    (B, in_chans, H·upscale, W·upscale). RGB inputs are normalised by the DIV2K mean.

    Args:
        img_size: Training patch size; must be a multiple of ``window_size``.
        patch_size: Official argument (tokens are single pixels).
        in_chans: Image channels.
        embed_dim: Feature channels C (180 HAT/HAT-L, 144 HAT-S).
        depths: HABs per residual group.
        num_heads: Heads per residual group.
        window_size: Window side (16 in every release).
        compress_ratio: CAB bottleneck reduction (3; 24 for HAT-S).
        squeeze_factor: Channel-attention reduction (30; 24 for HAT-S).
        conv_scale: Weight of the CAB branch (0.01).
        overlap_ratio: OCAB key-window enlargement (0.5 -> 24x24 keys for 16x16 queries).
        mlp_ratio: MLP hidden width / C (2).
        qkv_bias: Learn q, k, v biases.
        qk_scale: Override of ``head_dim ** -0.5``.
        drop_rate: Dropout rate.
        attn_drop_rate: Attention-probability dropout.
        drop_path_rate: Stochastic depth, linearly increasing up to this value.
        norm_layer: Normalisation class.
        ape: Learned absolute position embedding (inputs of exactly ``img_size`` only).
        patch_norm: LayerNorm after the patch embedding.
        use_checkpoint: Gradient checkpointing per HAB (training only).
        upscale: 2^n or 3.
        img_range: Value range multiplier (1.0).
        upsampler: ``'pixelshuffle'`` (the only official head).
        resi_connection: ``'1conv'`` or ``'identity'``.
        attn_backend: ``'reference'`` or ``'sdpa'``; None = global default.
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 64,
        patch_size: int = 1,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 7,
        compress_ratio: int = 3,
        squeeze_factor: int = 30,
        conv_scale: float = 0.01,
        overlap_ratio: float = 0.5,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        ape: bool = False,
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        upscale: int = 2,
        img_range: float = 1.0,
        upsampler: str = "pixelshuffle",
        resi_connection: str = "1conv",
        attn_backend: str | None = None,
    ) -> None:
        super().__init__()
        opt = dict(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim, depths=depths,
                   num_heads=num_heads, window_size=window_size, overlap_ratio=overlap_ratio,
                   compress_ratio=compress_ratio, squeeze_factor=squeeze_factor, upscale=upscale,
                   upsampler=upsampler, resi_connection=resi_connection, ape=ape)
        self.spec = checked_spec(type(self), opt)
        num_feat = 64
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.overlap_ratio = overlap_ratio
        self.img_range = img_range
        self.upscale = upscale
        self.upsampler = upsampler
        self.ape = ape
        # Alias of spec.size_multiple for trainers that do not read arch_spec(net) yet.
        self.size_multiple = self.spec.size_multiple
        self.register_buffer("mean", input_mean(in_chans), persistent=False)
        ows = overlap_window_size(window_size, overlap_ratio)
        self.register_buffer("relative_position_index_SA", relative_position_index(window_size))
        self.register_buffer("relative_position_index_OCA", overlap_relative_position_index(window_size, ows))

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        res = token_resolution(img_size, patch_size)
        self.patch_embed = PatchEmbed(embed_dim, norm_layer if patch_norm else None)
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, res[0] * res[1], embed_dim))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(p=drop_rate)
        self.layers = nn.ModuleList()
        for depth, heads, dpr in zip(depths, num_heads, drop_path_rates(drop_path_rate, depths)):
            blocks = [
                HAB(embed_dim, res, heads, window_size=window_size, shift_size=0 if j % 2 == 0 else window_size // 2,
                    compress_ratio=compress_ratio, squeeze_factor=squeeze_factor, conv_scale=conv_scale,
                    mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop_rate,
                    attn_drop=attn_drop_rate, drop_path=dpr[j], norm_layer=norm_layer,
                    attn_backend=attn_backend)
                for j in range(depth)
            ]
            ocab = OCAB(embed_dim, window_size, overlap_ratio, heads, qkv_bias=qkv_bias, qk_scale=qk_scale,
                        mlp_ratio=mlp_ratio, norm_layer=norm_layer, attn_backend=attn_backend)
            self.layers.append(RHAG(embed_dim, AttenBlocks(blocks, ocab, use_checkpoint), resi_connection))
        self.norm = norm_layer(embed_dim)
        self.conv_after_body = residual_conv(embed_dim, resi_connection)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        self.apply(init_transformer_weights)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt`` (user values bound to the signature)."""
        problems: list[str] = []
        ws = int(opt["window_size"])
        img_size = opt["img_size"]
        res = token_resolution(img_size, int(opt["patch_size"]))
        if any(r % ws for r in res):
            problems.append(f"window_size {ws} does not divide img_size {img_size}")
        extra = int(ws * float(opt["overlap_ratio"]))
        if extra % 2:
            problems.append(f"int(window_size * overlap_ratio) = {extra} must be even (symmetric key-window padding)")
        embed = int(opt["embed_dim"])
        problems += check_groups(list(opt["depths"]), list(opt["num_heads"]), embed)
        for key in ("compress_ratio", "squeeze_factor"):
            if embed // int(opt[key]) < 1:
                problems.append(f"{key} {opt[key]} leaves no channels of embed_dim {embed}")
        if opt["upsampler"] != "pixelshuffle":
            problems.append(f"upsampler {opt['upsampler']!r}: HAT only has the 'pixelshuffle' head")
        upscale = int(opt["upscale"])
        if not (upscale == 3 or (upscale > 1 and upscale & (upscale - 1) == 0)):
            problems.append(f"upscale must be 2^n or 3, got {upscale}")
        if opt["resi_connection"] not in RESI_CONNECTIONS:
            problems.append(f"resi_connection {opt['resi_connection']!r} is not one of {RESI_CONNECTIONS}")
        problem = backend_problem(opt.get("attn_backend"), "window")
        if problem:
            problems.append(problem)
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Inputs must be multiples of the window (HAT does not pad); ``img_range`` is undone inside."""
        ws = int(opt["window_size"])
        return ArchSpec(scale=int(opt["upscale"]), in_channels=int(opt["in_chans"]), out_channels=int(opt["in_chans"]),
                        size_multiple=ws, min_size=ws, tileable=not opt["ape"])

    def adapt_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
        """Verify the checkpoint's ``relative_position_index_SA/OCA`` against the regenerated ones.

        Raises:
            ValueError: A stored index differs (shape or values) from this network's.
        """
        sd = OrderedDict(state_dict)
        for key in ("relative_position_index_SA", "relative_position_index_OCA"):
            own = getattr(self, key)
            if key in sd:
                check_index_buffer(key, sd[key], own)
            sd[key] = own
        return sd

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W) deep features."""
        h, w = x.shape[-2:]
        mask = shifted_window_mask(h, w, self.window_size, self.shift_size, x.device)
        x = self.patch_embed(x)
        if self.ape:
            x = x + self.absolute_pos_embed.view(1, h, w, -1)
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x, self.relative_position_index_SA, self.relative_position_index_OCA, mask)
        return self.norm(x).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) in [0, 1], H and W multiples of ``window_size`` -> (B, in_chans, sH, sW)."""
        h, w = x.shape[-2:]
        if h % self.window_size or w % self.window_size:
            raise ValueError(
                f"HAT needs H and W to be multiples of window_size {self.window_size}, got {h}x{w}; "
                f"pad to `arch_spec(net).size_multiple` first (the framework's inference does)"
            )
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        return x / self.img_range + mean
