"""Restormer (Zamir et al., CVPR 2022): a 4-level U-Net of transformer blocks with channel attention (MDTA)
and a gated depth-wise feed-forward (GDFN), for denoising, deraining and motion / defocus deblurring.

Constructor keywords, defaults and module names are the official ``basicsr/models/archs/restormer_arch.py``
(swz30/Restormer), so the released ``params`` files load with ``strict=True``: ``patch_embed.proj``,
``encoder_level{1,2,3}``, ``latent``, ``decoder_level{1,2,3}``, ``refinement`` (each ``{i}.norm1.body``,
``attn.{temperature,qkv,qkv_dwconv,project_out}``, ``norm2.body``, ``ffn.{project_in,dwconv,project_out}``),
``down1_2`` / ``down2_3`` / ``down3_4`` / ``up4_3`` / ``up3_2`` / ``up2_1`` ``.body.0``,
``reduce_chan_level{2,3}``, ``skip_conv`` (dual-pixel only) and ``output``; no buffers.

Releases: ``WithBias`` LayerNorm for deraining, motion and single-image defocus deblurring; ``BiasFree`` for
Gaussian (colour: 3 channels, grey: 1) and real denoising; the dual-pixel defocus model takes the two 3-channel
views stacked (``inp_channels=6``, ``dual_pixel_task=True``) and adds ``skip_conv`` of the embedding instead
of the input image.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec
from restoration.layers.bias_free_layernorm import RestormerLayerNorm
from restoration.layers.gated_ffn import GDFN
from restoration.layers.transposed_attention import MDTA

__all__ = ["Restormer", "RestormerBlock", "LAYER_NORM_TYPES", "SIZE_MULTIPLE"]

LAYER_NORM_TYPES: tuple[str, ...] = ("WithBias", "BiasFree")
#: Three pixel-unshuffle(2) downsamplings and no internal padding: sides must be multiples of 2**3.
SIZE_MULTIPLE = 8


class RestormerBlock(nn.Module):
    """``x + MDTA(norm1(x))``, then ``x + GDFN(norm2(x))`` (upstream ``TransformerBlock``).

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool,
                 LayerNorm_type: str) -> None:  # upstream name
        super().__init__()
        self.norm1 = RestormerLayerNorm(dim, LayerNorm_type)
        self.attn = MDTA(dim, num_heads, bias)
        self.norm2 = RestormerLayerNorm(dim, LayerNorm_type)
        self.ffn = GDFN(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class _Resample(nn.Module):
    """Bias-free conv3x3 then pixel (un)shuffle in ``body``: upstream ``Downsample`` / ``Upsample``.

    Shapes: Downsample (B, C, H, W) -> (B, 2C, H/2, W/2); Upsample (B, C, H, W) -> (B, C/2, 2H, 2W).
    """

    def __init__(self, channels_in: int, channels_out: int, shuffle: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, 1, 1, bias=False), shuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        return self.body(x)


class _PatchEmbed(nn.Module):
    """Bias-free conv3x3 ``proj`` (upstream ``OverlapPatchEmbed``): (B, C_in, H, W) -> (B, dim, H, W)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        return self.proj(x)


class Restormer(nn.Module):
    """Restormer's U-Net.

    Level ``l`` (0..3) runs ``num_blocks[l]`` blocks at ``dim * 2**l`` channels with ``heads[l]`` heads;
    ``Downsample`` halves the channels then pixel-unshuffles (x4 channels, /2 sides), ``Upsample`` doubles
    them then pixel-shuffles. Decoder levels 3 and 2 concatenate the encoder output and reduce with a 1x1
    conv; level 1 concatenates without reducing, so ``decoder_level1`` and ``refinement`` run at ``2 * dim``.

    Args:
        inp_channels: Input channels (6 for the dual-pixel task).
        out_channels: Output channels.
        dim: Channels of level 1.
        num_blocks: Blocks per level (encoder and decoder alike; the last is the latent).
        num_refinement_blocks: Blocks after ``decoder_level1``.
        heads: Attention heads per level.
        ffn_expansion_factor: GDFN hidden width ``int(C * factor)``.
        bias: Bias in the block convolutions and ``reduce_chan`` / ``skip_conv`` / ``output``
            (``patch_embed`` and the resampling convs never have one).
        LayerNorm_type: ``'WithBias'`` or ``'BiasFree'``.
        dual_pixel_task: Add ``skip_conv(embedding)`` before ``output`` instead of the input image.

    Shapes: (B, inp_channels, H, W) in [0, 1] -> (B, out_channels, H, W); H and W multiples of 8 (no padding
    inside; the framework pads through :class:`ArchSpec`). Without ``dual_pixel_task`` the output is
    ``output(...) + input``, so ``inp_channels`` must equal ``out_channels``.
    """

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias", dual_pixel_task: bool = False) -> None:
        super().__init__()
        opt = dict(inp_channels=inp_channels, out_channels=out_channels, dim=dim, num_blocks=num_blocks,
                   num_refinement_blocks=num_refinement_blocks, heads=heads,
                   ffn_expansion_factor=ffn_expansion_factor, bias=bias, LayerNorm_type=LayerNorm_type,
                   dual_pixel_task=dual_pixel_task)
        self.spec = checked_spec(type(self), opt)
        self.dual_pixel_task = dual_pixel_task

        def level(channels: int, n: int, num_heads: int) -> nn.Sequential:
            return nn.Sequential(*(RestormerBlock(channels, num_heads, ffn_expansion_factor, bias, LayerNorm_type)
                                   for _ in range(n)))

        c1, c2, c3, c4 = dim, dim * 2, dim * 4, dim * 8
        self.patch_embed = _PatchEmbed(inp_channels, dim)
        self.encoder_level1 = level(c1, num_blocks[0], heads[0])
        self.down1_2 = _Resample(c1, c1 // 2, nn.PixelUnshuffle(2))
        self.encoder_level2 = level(c2, num_blocks[1], heads[1])
        self.down2_3 = _Resample(c2, c2 // 2, nn.PixelUnshuffle(2))
        self.encoder_level3 = level(c3, num_blocks[2], heads[2])
        self.down3_4 = _Resample(c3, c3 // 2, nn.PixelUnshuffle(2))
        self.latent = level(c4, num_blocks[3], heads[3])
        self.up4_3 = _Resample(c4, c4 * 2, nn.PixelShuffle(2))
        self.reduce_chan_level3 = nn.Conv2d(c4, c3, 1, bias=bias)
        self.decoder_level3 = level(c3, num_blocks[2], heads[2])
        self.up3_2 = _Resample(c3, c3 * 2, nn.PixelShuffle(2))
        self.reduce_chan_level2 = nn.Conv2d(c3, c2, 1, bias=bias)
        self.decoder_level2 = level(c2, num_blocks[1], heads[1])
        self.up2_1 = _Resample(c2, c2 * 2, nn.PixelShuffle(2))
        self.decoder_level1 = level(c2, num_blocks[0], heads[0])
        self.refinement = level(c2, num_refinement_blocks, heads[0])
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(c1, c2, 1, bias=bias)
        self.output = nn.Conv2d(c2, out_channels, 3, 1, 1, bias=bias)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        problems = [f"{key} must be >= 1, got {opt[key]!r}" for key in ("inp_channels", "out_channels", "dim")
                    if not isinstance(opt[key], int) or opt[key] < 1]
        if not isinstance(opt["num_refinement_blocks"], int) or opt["num_refinement_blocks"] < 0:
            problems.append(f"num_refinement_blocks must be >= 0, got {opt['num_refinement_blocks']!r}")
        for key in ("num_blocks", "heads"):
            value = opt[key]
            if not isinstance(value, Sequence) or len(value) != 4 or not all(isinstance(v, int) and v >= 1
                                                                             for v in value):
                problems.append(f"{key} must list 4 positive integers (one per level), got {value!r}")
        if opt["LayerNorm_type"] not in LAYER_NORM_TYPES:
            problems.append(f"LayerNorm_type must be one of {list(LAYER_NORM_TYPES)}, got {opt['LayerNorm_type']!r}")
        if problems:
            return problems
        dim, heads = opt["dim"], opt["heads"]
        if dim % 2:
            problems.append(f"dim must be even (Downsample halves it), got {dim}")
        for lvl, num_heads in enumerate(heads):  # (level 1's decoder runs at 2 * dim: a multiple of dim)
            if (dim * 2 ** lvl) % num_heads:
                problems.append(f"heads[{lvl}]={num_heads} does not divide the {dim * 2 ** lvl} channels of level "
                                f"{lvl + 1}")
        if not opt["dual_pixel_task"] and opt["inp_channels"] != opt["out_channels"]:
            problems.append(f"inp_channels {opt['inp_channels']} != out_channels {opt['out_channels']}: the input "
                            "image is added to the output (only dual_pixel_task has no image residual)")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Scale 1; sides multiples of 8."""
        return ArchSpec(scale=1, in_channels=int(opt["inp_channels"]), out_channels=int(opt["out_channels"]),
                        size_multiple=SIZE_MULTIPLE, min_size=SIZE_MULTIPLE)

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W); H, W multiples of 8."""
        if inp_img.shape[-2] % SIZE_MULTIPLE or inp_img.shape[-1] % SIZE_MULTIPLE:
            raise ValueError(f"Restormer needs H and W that are multiples of {SIZE_MULTIPLE}, "
                             f"got {tuple(inp_img.shape[-2:])}")
        emb = self.patch_embed(inp_img)
        enc1 = self.encoder_level1(emb)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        x = self.latent(self.down3_4(enc3))
        x = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(x), enc3], 1)))
        x = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(x), enc2], 1)))
        x = self.refinement(self.decoder_level1(torch.cat([self.up2_1(x), enc1], 1)))
        if self.dual_pixel_task:
            return self.output(x + self.skip_conv(emb))
        return self.output(x) + inp_img
