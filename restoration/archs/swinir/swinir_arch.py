"""SwinIR: Image Restoration Using Swin Transformer (Liang et al., ICCVW 2021).

Constructor arguments, defaults and state-dict keys follow the official ``network_swinir.py``, so
official checkpoints load strictly (``load_weights(net, path)``). Differences from the official
code, none of which changes the computed function:

* attention goes through :func:`restoration.layers.window_attention.window_attention`, whose
  backend is chosen by ``attn_backend`` (None = global default, see :mod:`restoration.layers.config`);
* the shifted-window mask is computed once per forward for the actual (padded) input size; the
  stored ``attn_mask`` buffers are kept only so checkpoints keep the official layout;
* unknown constructor arguments are an error (no ``**kwargs``).

Layout inside the body: tokens are (B, H, W, C) channels-last maps.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec
from restoration.layers.config import backend_problem
from restoration.layers.input_norm import input_mean
from restoration.layers.mlp import Mlp
from restoration.layers.patch_embed import PatchEmbed, token_resolution
from restoration.layers.relative_position import check_index_buffer
from restoration.layers.residual_group import (
    ResidualGroup,
    SwinLayer,
    check_groups,
    drop_path_rates,
    residual_conv,
)
from restoration.layers.upsample import Upsample, UpsampleOneStep
from restoration.layers.weight_init import init_transformer_weights
from restoration.layers.window_attention import WindowAttention, shifted_window_attention
from restoration.layers.window_partition import fit_window, match_shifted_window_mask, shifted_window_mask

__all__ = ["SwinIR", "SwinTransformerBlock", "RSTB", "UPSAMPLERS", "RESI_CONNECTIONS"]

#: Reconstruction heads: classical SR, lightweight SR, real-world SR, restoration at scale 1.
UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RESI_CONNECTIONS = ("1conv", "3conv")


class SwinTransformerBlock(nn.Module):
    """``x += W-MSA(LN x)`` (cyclically shifted when ``shift_size > 0``), then ``x += MLP(LN x)``.

    Like the official block, a window larger than the training resolution is shrunk to it and the
    shift disabled; this decides the bias-table size, so it must match for checkpoints to load.

    Args:
        dim: Channels C.
        input_resolution: Training token resolution (decides ``attn_mask``'s stored shape only).
        num_heads: Attention heads.
        window_size: Window side.
        shift_size: Cyclic shift (0 or window_size // 2).
        mlp_ratio: MLP hidden width / C.
        qkv_bias: Learn q, k, v biases.
        qk_scale: Override of ``head_dim ** -0.5``.
        drop: Dropout after projections.
        attn_drop: Dropout on attention probabilities.
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
            proj_drop=drop, attn_backend=attn_backend,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        if self.shift_size > 0:
            # Not used by forward (the mask is rebuilt for the real input size); stored so that the
            # state dict has the official layout in both directions.
            self.register_buffer("attn_mask", shifted_window_mask(*input_resolution, window_size, shift_size))
        else:
            self.attn_mask = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Args: x (B, H, W, C) with H, W multiples of the window; mask (nW, N, N) for shifted blocks.

        Returns: (B, H, W, C).
        """
        x = x + self.drop_path(shifted_window_attention(self.norm1(x), self.attn, self.shift_size, mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class RSTB(ResidualGroup):
    """Residual Swin Transformer Block: ``x + conv(blocks(x))``, called as ``rstb(x, mask)``.

    Args:
        dim: Channels C.
        blocks: The Swin blocks of the group.
        resi_connection: ``'1conv'`` or ``'3conv'``.
        use_checkpoint: Gradient checkpointing per block (training only).
    """

    def __init__(self, dim: int, blocks: Sequence[nn.Module], resi_connection: str, use_checkpoint: bool) -> None:
        super().__init__(SwinLayer(blocks, use_checkpoint), residual_conv(dim, resi_connection))


class SwinIR(nn.Module):
    """SwinIR for super-resolution (classical, lightweight, real-world), denoising and JPEG deblocking.

    Input (B, in_chans, H, W) in [0, 1], any H, W (reflect-padded to a multiple of ``window_size``
    inside and cropped back); output (B, in_chans, H·upscale, W·upscale) in about [0, 1]. RGB inputs
    are normalised by the DIV2K mean: ``(x - mean) * img_range``.

    Args:
        img_size: Training patch size (int or (h, w)); decides only the stored ``attn_mask`` buffers.
        patch_size: Official argument; tokens are single pixels (resolution ``img_size // patch_size``).
        in_chans: Image channels (1 or 3); output has the same.
        embed_dim: Feature channels C.
        depths: Blocks per residual group.
        num_heads: Heads per residual group.
        window_size: Window side (8; 7 for the JPEG models).
        mlp_ratio: MLP hidden width / C (2 in every release).
        qkv_bias: Learn q, k, v biases.
        qk_scale: Override of ``head_dim ** -0.5``.
        drop_rate: Dropout rate.
        attn_drop_rate: Attention-probability dropout.
        drop_path_rate: Stochastic depth, linearly increasing over all blocks up to this value.
        norm_layer: Normalisation class (LayerNorm).
        ape: Learned absolute position embedding (only for inputs of exactly ``img_size``).
        patch_norm: LayerNorm after the patch embedding.
        use_checkpoint: Gradient checkpointing (less memory, slower training).
        upscale: Output scale (1 for denoising/JPEG).
        img_range: 1.0, or 255.0 for the JPEG models.
        upsampler: One of :data:`UPSAMPLERS`.
        resi_connection: ``'1conv'`` or ``'3conv'``.
        attn_backend: ``'reference'`` or ``'sdpa'``; None = :func:`restoration.layers.config.get_attn_backend`.
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
        upsampler: str = "",
        resi_connection: str = "1conv",
        attn_backend: str | None = None,
    ) -> None:
        super().__init__()
        upsampler = upsampler or ""  # the official code treats None like ''
        opt = dict(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim, depths=depths,
                   num_heads=num_heads, window_size=window_size, upscale=upscale, upsampler=upsampler,
                   resi_connection=resi_connection, ape=ape)
        self.spec = checked_spec(type(self), opt)
        num_feat = 64
        self.img_range = img_range
        self.upscale = upscale
        self.upsampler = upsampler
        self.window_size = window_size
        self.ape = ape
        self.register_buffer("mean", input_mean(in_chans), persistent=False)  # not in official checkpoints

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
                SwinTransformerBlock(
                    embed_dim, res, heads, window_size=window_size,
                    shift_size=0 if j % 2 == 0 else window_size // 2, mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop_rate, attn_drop=attn_drop_rate,
                    drop_path=dpr[j], norm_layer=norm_layer, attn_backend=attn_backend,
                )
                for j in range(depth)
            ]
            self.layers.append(RSTB(embed_dim, blocks, resi_connection, use_checkpoint))
        self.norm = norm_layer(embed_dim)
        self.conv_after_body = residual_conv(embed_dim, resi_connection)

        if upsampler == "pixelshuffle":  # classical SR
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.upsample = Upsample(upscale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":  # lightweight SR
            self.upsample = UpsampleOneStep(upscale, embed_dim, in_chans)
        elif upsampler == "nearest+conv":  # real-world SR: fewer checkerboard artefacts
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            if upscale == 4:
                self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        else:  # denoising / JPEG: residual on the input
            self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, 1, 1)
        self.apply(init_transformer_weights)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt`` (user values bound to the signature)."""
        problems: list[str] = []
        ws = int(opt["window_size"])
        res = token_resolution(opt["img_size"], int(opt["patch_size"]))
        if min(res) > ws and any(r % ws for r in res):
            problems.append(f"window_size {ws} does not divide img_size {opt['img_size']}")
        problems += check_groups(list(opt["depths"]), list(opt["num_heads"]), int(opt["embed_dim"]))
        upsampler = opt["upsampler"] or ""
        upscale = int(opt["upscale"])
        if upsampler not in UPSAMPLERS:
            problems.append(f"upsampler {upsampler!r} is not one of {UPSAMPLERS}")
        elif upsampler == "pixelshuffle" and not (upscale == 3 or (upscale > 0 and upscale & (upscale - 1) == 0)):
            problems.append(f"upsampler 'pixelshuffle' supports upscale 2^n and 3, got {upscale}")
        elif upsampler == "nearest+conv" and upscale not in (2, 4):
            problems.append(f"upsampler 'nearest+conv' supports upscale 2 and 4, got {upscale}")
        elif upsampler == "" and upscale != 1:
            problems.append(f"upsampler '' (denoising/JPEG) keeps the size: upscale must be 1, got {upscale}")
        if opt["resi_connection"] not in RESI_CONNECTIONS:
            problems.append(f"resi_connection {opt['resi_connection']!r} is not one of {RESI_CONNECTIONS}")
        problem = backend_problem(opt.get("attn_backend"), "window")
        if problem:
            problems.append(problem)
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any input size (SwinIR pads to its window inside and crops back); ``img_range`` is undone inside."""
        return ArchSpec(scale=int(opt["upscale"]) if opt["upsampler"] else 1, in_channels=int(opt["in_chans"]),
                        out_channels=int(opt["in_chans"]), tileable=not opt["ape"])

    def adapt_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
        """Check an official checkpoint's derived buffers and replace them by this network's own.

        ``relative_position_index`` must equal the regenerated index (else ValueError).
        ``attn_mask`` depends on the training patch size, so a stored one may have another shape: it
        must be a genuine shifted-window mask for this window (else ValueError) and is then replaced
        by this network's buffer. Missing derived buffers are filled in.
        """
        sd = OrderedDict(state_dict)
        for key, own in self.state_dict().items():
            if key.endswith("relative_position_index"):
                if key in sd:
                    check_index_buffer(key, sd[key], own)
                sd[key] = own
            elif key.endswith("attn_mask"):
                if key in sd:
                    block = self.get_submodule(key.rsplit(".", 1)[0])
                    if match_shifted_window_mask(sd[key], block.window_size, block.shift_size) is None:
                        raise ValueError(
                            f"checkpoint buffer '{key}' (shape {tuple(sd[key].shape)}) is not a shifted-window "
                            f"mask for window {block.window_size}, shift {block.shift_size}"
                        )
                sd[key] = own
        return sd

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h = (self.window_size - h % self.window_size) % self.window_size
        pad_w = (self.window_size - w % self.window_size) % self.window_size
        if not (pad_h or pad_w):
            return x
        # reflect (official) needs the pad to be smaller than the image; tiny inputs fall back to replicate
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        return F.pad(x, (0, pad_w, 0, pad_h), mode)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Deep features: (B, C, H, W) -> (B, C, H, W), H and W multiples of the window."""
        h, w = x.shape[-2:]
        x = self.patch_embed(x)
        if self.ape:
            x = x + self.absolute_pos_embed.view(1, h, w, -1)
        x = self.pos_drop(x)
        mask = None
        if any(blk.shift_size for layer in self.layers for blk in layer.residual_group.blocks):
            mask = shifted_window_mask(h, w, self.window_size, self.window_size // 2, x.device)
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) in [0, 1] -> (B, in_chans, H·upscale, W·upscale)."""
        h, w = x.shape[-2:]
        x = self._pad(x)
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        if self.upsampler == "":
            first = self.conv_first(x)
            x = x + self.conv_last(self.conv_after_body(self.forward_features(first)) + first)
        else:
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            if self.upsampler == "pixelshuffle":
                x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
            elif self.upsampler == "pixelshuffledirect":
                x = self.upsample(x)
            else:  # nearest+conv
                x = self.conv_before_upsample(x)
                x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
                if self.upscale == 4:
                    x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
                x = self.conv_last(self.lrelu(self.conv_hr(x)))
        x = x / self.img_range + mean
        return x[:, :, : h * self.upscale, : w * self.upscale]
