"""DSwinIR: a Restormer-shaped U-Net whose blocks are ``x += MS-DSwin(LN x); x += FFN(LN x)``.

Paper: Wu et al., "DSwinIR: Rethinking Window-based Attention for Image Restoration"
(arXiv 2504.04869). Layout (as released in Aitical/DSwinIR): widths ``dim * [1, 2, 4, 8]``,
encoder ``num_blocks[:3]``, latent ``num_blocks[3]``, decoder ``num_blocks[2::-1]`` with decoder
level 1 and the refinement at ``2 * dim``; down = conv3x3 C->C/2 + PixelUnshuffle(2); up = conv3x3
C->2C + PixelShuffle(2); skip concatenation + 1x1 reduction (not at level 1); output conv3x3 and a
global residual. Module names equal the official ones, so :class:`MSDeformableNAIR` (the official
constructor) is a thin subclass.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from restoration.archs.spec import ArchSpec
from restoration.errors import value_repr
from restoration.layers.bias_free_layernorm import RestormerLayerNorm
from restoration.layers.deformable_attention import DeformableAttention2d
from restoration.layers.gated_ffn import FFN_TYPES, build_gated_ffn
from restoration.layers.ms_dswin import MSDeformableNeighborhoodAttention, ms_dswin_min_size
from restoration.layers.config import backend_problem

__all__ = ["DSwinIR", "DSwinTransformerBlock", "ATTN_TYPES", "check_unet_options", "unet_min_size"]

ATTN_TYPES: tuple[str, ...] = ("msdswin", "dat")
_LEVELS = 4  # full, 1/2, 1/4, 1/8 resolution
_SIZE_MULTIPLE = 2 ** (_LEVELS - 1)  # three 2x downsamplings


class DSwinTransformerBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``+ ffn(norm2(x))`` on ``(B, C, H, W)`` maps.

    Args:
        dim: Channels.
        num_heads: Attention heads.
        ffn_expansion_factor: FFN hidden width factor.
        bias: Bias in the FFN convolutions.
        layer_norm_type: ``'WithBias'`` or ``'BiasFree'``.
        rel_pos_bias: MS-DSwin relative-position bias tables.
        kernel_size: MS-DSwin base neighbourhood.
        dilation: MS-DSwin base dilation.
        attn_type: ``'msdswin'`` or ``'dat'``.
        ffn_type: ``'gdfn'`` or ``'msg'``.
        msg_kernel_sizes: MSG-FFN branch kernels.
        offset_range_factor: Offset bound of the attention.
        centered_grid: MS-DSwin sampling grid (see :class:`MSDeformableNeighborhoodAttention`).
        dat_stride: DAT sampled-grid stride at this level.
        na_backend: Neighbourhood-attention backend (None: the process-wide default).
    """

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool,
                 layer_norm_type: str, rel_pos_bias: bool, kernel_size: int, dilation: int,
                 attn_type: str = "msdswin", ffn_type: str = "gdfn", msg_kernel_sizes: Sequence[int] = (3, 5),
                 offset_range_factor: float = 1.0, centered_grid: bool = False, dat_stride: int = 1,
                 na_backend: str | None = None) -> None:
        super().__init__()
        self.norm1 = RestormerLayerNorm(dim, layer_norm_type)
        if attn_type == "msdswin":
            self.attn: nn.Module = MSDeformableNeighborhoodAttention(
                dim, num_heads, kernel_size, dilation, offset_range_factor, rel_pos_bias, centered_grid, na_backend)
        elif attn_type == "dat":
            self.attn = DeformableAttention2d(dim, num_heads, n_groups=num_heads, stride=dat_stride,
                                              offset_range_factor=offset_range_factor, pe_type="dwc")
        else:
            raise ValueError(f"unknown attn_type {attn_type!r}; choose one of {ATTN_TYPES}")
        self.norm2 = RestormerLayerNorm(dim, layer_norm_type)
        self.ffn = build_gated_ffn(ffn_type, dim, ffn_expansion_factor, bias, msg_kernel_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _downsample(c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c, c // 2, 3, 1, 1, bias=False), nn.PixelUnshuffle(2))


def _upsample(c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c, c * 2, 3, 1, 1, bias=False), nn.PixelShuffle(2))


class _Resample(nn.Module):
    """Holds the conv + (un)shuffle in ``.body`` (official key names ``down1_2.body.0.weight``)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _PatchEmbed(nn.Module):
    def __init__(self, in_c: int, dim: int, bias: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_c, dim, 3, 1, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def unet_min_size(kernel_size: Sequence[int], dilation: Sequence[int], attn_type: str,
                  dat_strides: Sequence[int]) -> int:
    """Smallest input side (a multiple of 8) every level's attention fits in."""
    need = _SIZE_MULTIPLE
    for lvl in range(_LEVELS):
        if attn_type == "msdswin":
            side = ms_dswin_min_size(kernel_size[lvl], dilation[lvl])
        else:
            side = 2 * dat_strides[lvl]
        need = max(need, side * 2 ** lvl)
    return -(-need // _SIZE_MULTIPLE) * _SIZE_MULTIPLE


def _check_na_backend(na_backend: str | None) -> list[str]:
    """An unknown or unavailable backend, named at construction rather than at the first forward."""
    problem = backend_problem(na_backend, "neighborhood")
    return [problem] if problem else []


def attention_backend(opt: Mapping[str, Any]) -> str | None:
    """``attn_backend``, or its old name ``na_backend``, of bound constructor arguments."""
    return opt["attn_backend"] if opt.get("attn_backend") is not None else opt.get("na_backend")


def check_unet_options(dim: int, heads: Sequence[int], num_blocks: Sequence[int], kernel_size: Sequence[int],
                       dilation: Sequence[int], attn_type: str = "msdswin", ffn_type: str = "gdfn",
                       names: dict[str, str] | None = None, na_backend: str | None = None) -> list[str]:
    """Problems with a DSwinIR/MSDeformableNAIR configuration (empty list when it is valid).

    ``names`` maps our argument names to the ones to print (the official class uses other names).
    """
    problems = _check_na_backend(na_backend)
    n = {"dim": "dim", "heads": "heads", "num_blocks": "num_blocks", "kernel_size": "kernel_size",
         "dilation": "dilation", **(names or {})}
    for key, seq in (("heads", heads), ("num_blocks", num_blocks), ("kernel_size", kernel_size),
                     ("dilation", dilation)):
        if len(seq) != _LEVELS:
            problems.append(f"{n[key]} must list {_LEVELS} values (one per U-Net level), got {value_repr(list(seq))}")
    if problems:
        return problems
    if attn_type not in ATTN_TYPES:
        problems.append(f"attn_type {attn_type!r} is not one of {ATTN_TYPES}")
    if ffn_type not in FFN_TYPES:
        problems.append(f"ffn_type {ffn_type!r} is not one of {FFN_TYPES}")
    for lvl in range(_LEVELS):
        width = dim * 2 ** lvl
        if attn_type == "msdswin" and heads[lvl] % 3 != 0:
            problems.append(
                f"{n['heads']}[{lvl}]={heads[lvl]} is not divisible by 3: MS-DSwin splits the heads into 3 "
                f"neighbourhood groups (e.g. {n['heads']}: [3, 6, 12, 24])")
        if width % heads[lvl] != 0:
            problems.append(f"level {lvl} width {n['dim']}*{2 ** lvl}={width} is not divisible by "
                            f"{n['heads']}[{lvl}]={heads[lvl]}")
        if kernel_size[lvl] % 2 == 0 or kernel_size[lvl] < 1:
            problems.append(f"{n['kernel_size']}[{lvl}]={kernel_size[lvl]} must be odd")
        if dilation[lvl] < 1:
            problems.append(f"{n['dilation']}[{lvl}]={dilation[lvl]} must be >= 1")
    return problems


class DSwinIR(nn.Module):
    """DSwinIR U-Net (paper defaults: dim 48, heads [3, 6, 12, 24], blocks [4, 6, 6, 8], 4 refinement).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        dim: Level-1 width.
        num_blocks: Blocks per level ``[l1, l2, l3, latent]`` (decoder mirrors the encoder).
        num_refinement_blocks: Blocks after decoder level 1.
        heads: Heads per level (each divisible by 3 for MS-DSwin).
        kernel_size: MS-DSwin base neighbourhood per level (odd).
        dilation: MS-DSwin base dilation per level.
        ffn_expansion_factor: FFN hidden width factor.
        bias: Bias in the FFN / patch-embed / reduction / output convs.
        layer_norm_type: ``'WithBias'`` or ``'BiasFree'``.
        rel_pos_bias: MS-DSwin relative-position bias.
        attn_type: ``'msdswin'`` (paper) or ``'dat'`` (DAT global deformable attention, ablation).
        ffn_type: ``'msg'`` (paper's MSG-FFN; our kernel choice, see :class:`MSGFFN`) or ``'gdfn'``
            (what the released code uses).
        msg_kernel_sizes: MSG-FFN branch kernels.
        offset_range_factor: Offset bound of the deformable sampling.
        centered_grid: ``False`` = the released +0.5 px sampling grid.
        dat_strides: DAT sampled-grid stride per level (``attn_type='dat'``).
        dual_pixel_task: Restormer's dual-pixel skip (``skip_conv``).
        attn_backend: Neighbourhood-attention backend (``'auto'``, ``'reference'``, ``'flex'``, ``'natten'``);
            None: the process-wide default of the ``neighborhood`` op (:mod:`restoration.layers.config`,
            ``'auto'``), the one ``attn_backend`` option of every network.
        na_backend: The first name of ``attn_backend``, still accepted.

    Shapes:
        ``(B, in_channels, H, W)`` in ``[0, 1]`` -> ``(B, out_channels, H, W)``; ``H, W`` multiples of
        ``spec.size_multiple`` (8) and at least ``spec.min_size`` (the coarsest level must hold the
        largest neighbourhood: 48 for ``kernel_size=3``).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: Sequence[int] = (3, 6, 12, 24),
        kernel_size: Sequence[int] = (3, 3, 3, 3),
        dilation: Sequence[int] = (1, 1, 1, 1),
        ffn_expansion_factor: float = 2.0,
        bias: bool = False,
        layer_norm_type: str = "WithBias",
        rel_pos_bias: bool = True,
        attn_type: str = "msdswin",
        ffn_type: str = "msg",
        msg_kernel_sizes: Sequence[int] = (3, 5),
        offset_range_factor: float = 1.0,
        centered_grid: bool = False,
        dat_strides: Sequence[int] = (8, 4, 2, 1),
        dual_pixel_task: bool = False,
        attn_backend: str | None = None,
        na_backend: str | None = None,
    ) -> None:
        super().__init__()
        na_backend = attn_backend if attn_backend is not None else na_backend
        problems = check_unet_options(dim, heads, num_blocks, kernel_size, dilation, attn_type, ffn_type,
                                      na_backend=na_backend)
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))
        # DSwinIR's, not type(self)'s: subclasses (MSDeformableNAIR) take other argument names.
        self.spec = DSwinIR.spec_from_options(dict(in_channels=in_channels, out_channels=out_channels,
                                                   kernel_size=kernel_size, dilation=dilation, attn_type=attn_type,
                                                   dat_strides=dat_strides))
        # Aliases of the spec for trainers that do not read arch_spec(net) yet.
        self.size_multiple, self.min_size = self.spec.size_multiple, self.spec.min_size

        def level(lvl: int, width: int, count: int) -> nn.Sequential:
            return nn.Sequential(*[
                DSwinTransformerBlock(width, heads[lvl], ffn_expansion_factor, bias, layer_norm_type,
                                      rel_pos_bias, kernel_size[lvl], dilation[lvl], attn_type, ffn_type,
                                      msg_kernel_sizes, offset_range_factor, centered_grid,
                                      dat_strides[lvl], na_backend)
                for _ in range(count)])

        d1, d2, d3, d4 = (dim * 2 ** i for i in range(_LEVELS))
        self.patch_embed = _PatchEmbed(in_channels, dim, bias)
        self.encoder_level1 = level(0, d1, num_blocks[0])
        self.down1_2 = _Resample(_downsample(d1))
        self.encoder_level2 = level(1, d2, num_blocks[1])
        self.down2_3 = _Resample(_downsample(d2))
        self.encoder_level3 = level(2, d3, num_blocks[2])
        self.down3_4 = _Resample(_downsample(d3))
        self.latent = level(3, d4, num_blocks[3])
        self.up4_3 = _Resample(_upsample(d4))
        self.reduce_chan_level3 = nn.Conv2d(d4, d3, 1, bias=bias)
        self.decoder_level3 = level(2, d3, num_blocks[2])
        self.up3_2 = _Resample(_upsample(d3))
        self.reduce_chan_level2 = nn.Conv2d(d3, d2, 1, bias=bias)
        self.decoder_level2 = level(1, d2, num_blocks[1])
        self.up2_1 = _Resample(_upsample(d2))  # no reduction: level-1 decoder runs at 2*dim
        self.decoder_level1 = level(0, d2, num_blocks[0])
        self.refinement = level(0, d2, num_refinement_blocks)
        self.dual_pixel_task = dual_pixel_task
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(d1, d2, 1, bias=bias)
        self.output = nn.Conv2d(d2, out_channels, 3, 1, 1, bias=bias)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt`` (see :func:`check_unet_options`)."""
        return check_unet_options(opt["dim"], opt["heads"], opt["num_blocks"], opt["kernel_size"], opt["dilation"],
                                  opt["attn_type"], opt["ffn_type"], na_backend=attention_backend(opt))

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Multiples of 8 (three 2x downsamplings), at least :func:`unet_min_size`."""
        return ArchSpec(in_channels=int(opt["in_channels"]), out_channels=int(opt["out_channels"]),
                        size_multiple=_SIZE_MULTIPLE,
                        min_size=unet_min_size(opt["kernel_size"], opt["dilation"], opt["attn_type"], opt["dat_strides"]))

    def _check_input(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        multiple, min_size = self.spec.size_multiple, self.spec.min_size
        if h % multiple or w % multiple:
            raise ValueError(f"{type(self).__name__} needs H, W multiples of {multiple} (three 2x "
                             f"downsamplings), got {h}x{w}; pad the input (test.py does this automatically)")
        if h < min_size or w < min_size:
            raise ValueError(f"{type(self).__name__}: input {h}x{w} is smaller than the minimum "
                             f"{min_size}x{min_size} (the 1/8-resolution level must hold the "
                             "largest attention neighbourhood); pad or crop larger patches")

    def forward_features(self, inp_img: torch.Tensor) -> torch.Tensor:
        """U-Net body + output conv, without any residual: ``(B, in, H, W) -> (B, out, H, W)``."""
        self._check_input(inp_img)
        inp1 = self.patch_embed(inp_img)
        enc1 = self.encoder_level1(inp1)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))
        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1)))
        if self.dual_pixel_task:
            dec1 = dec1 + self.skip_conv(inp1)
        return self.output(dec1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` in ``[0, 1]`` -> restored ``(B, C, H, W)`` (``x + residual``)."""
        out = self.forward_features(x)
        return out if self.dual_pixel_task else out + x
