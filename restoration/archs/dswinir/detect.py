"""Which DSwinIR network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any, Mapping

from restoration.archs.layout import LayoutMismatch, StateDict, count, shape, width_ratio
from restoration.errors import DetectionError

_UNET_LEVELS = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")


_DAT_DEFAULT_STRIDES = (8, 4, 2, 1)


def _dat_offset_kernel(stride: int) -> int:
    return max(3, stride + 1 if stride % 2 == 0 else stride)  # DeformableAttention2d's default


def detect_dswinir(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """``MSDeformableNAIR`` (the official class: GDFN, MS-DSwin) or ``DSwinIR`` (MSG-FFN, or DAT attention).

    A GDFN + MS-DSwin state dict is key-identical in both classes; it is reported as the official
    ``MSDeformableNAIR`` (weights trained here come with their options file, which decides).
    """
    dim, in_ch = shape(sd, "patch_embed.proj.weight")[:2]
    if "patch_embed.proj.mask" in sd:
        raise LayoutMismatch("has TBSN's masked first convolution 'patch_embed.proj.mask'")
    widths = [dim * 2 ** i for i in range(4)]
    blocks = [count(sd, f"{name}.") for name in _UNET_LEVELS]
    if 0 in blocks:
        raise LayoutMismatch(f"a U-Net level without blocks: {dict(zip(_UNET_LEVELS, blocks))}")
    heads, offset_kernels = [], []
    for name, width in zip(_UNET_LEVELS, widths):
        group_ch, _, k, _ = shape(sd, f"{name}.0.attn.conv_offset.0.weight")
        heads.append(width // group_ch)
        offset_kernels.append(k)
    rpb = f"{_UNET_LEVELS[0]}.0.attn.rpb_h1" in sd
    ffn = f"{_UNET_LEVELS[0]}.0.ffn."
    ffn_pairs = []  # (width, hidden) per level, decoder level 1 / refinement at 2 * dim
    for name, width in [*zip(_UNET_LEVELS, widths), ("refinement", 2 * dim)]:
        if f"{name}.0.ffn.project_out.weight" in sd:
            ffn_pairs.append((width, shape(sd, f"{name}.0.ffn.project_in.weight")[0] // 2))
    if ffn + "dwconv.weight" in sd:
        ffn_type, msg_kernels = "gdfn", None
    elif ffn + "branches.0.weight" in sd:
        ffn_type = "msg"
        msg_kernels = [shape(sd, f"{ffn}branches.{j}.weight")[-1] for j in range(count(sd, ffn + "branches."))]
    else:
        raise LayoutMismatch(f"no '{ffn}dwconv.weight' (GDFN) or '{ffn}branches.0.weight' (MSG-FFN)")
    if rpb:
        attn_type = "msdswin"
        kernel = [(shape(sd, f"{name}.0.attn.rpb_h1")[-1] + 1) // 2 for name in _UNET_LEVELS]
    elif tuple(offset_kernels) == tuple(_dat_offset_kernel(s) for s in _DAT_DEFAULT_STRIDES):
        attn_type, kernel = "dat", [3, 3, 3, 3]  # DAT's offset kernel follows its stride, not kernel_size
    else:
        attn_type, kernel = "msdswin", offset_kernels  # MS-DSwin without bias tables: offset conv is k x k
    common = dict(dim=dim, num_blocks=blocks, num_refinement_blocks=count(sd, "refinement."), heads=heads,
                  kernel_size=kernel, ffn_expansion_factor=width_ratio(ffn_pairs, "ffn.project_in"),
                  bias="patch_embed.proj.bias" in sd, rel_pos_bias=rpb,
                  dual_pixel_task="skip_conv.weight" in sd, out_channels=shape(sd, "output.weight")[0])
    layer_norm = "WithBias" if f"{_UNET_LEVELS[0]}.0.norm1.body.bias" in sd else "BiasFree"
    if attn_type == "msdswin" and ffn_type == "gdfn":
        return "MSDeformableNAIR", dict(inp_channels=in_ch, LayerNorm_type=layer_norm, **common)
    kw = dict(in_channels=in_ch, layer_norm_type=layer_norm, attn_type=attn_type, ffn_type=ffn_type, **common)
    if msg_kernels is not None:
        kw["msg_kernel_sizes"] = msg_kernels
    if attn_type == "dat":
        kw["dat_strides"] = list(_DAT_DEFAULT_STRIDES)
    return "DSwinIR", kw


def adapt(kwargs: Mapping[str, Any], to: str) -> tuple[str, dict[str, Any]]:
    """Convert detected kwargs between ``DSwinIR`` and ``MSDeformableNAIR`` argument names (same layout)."""
    kw = dict(kwargs)
    if to == "DSwinIR" and "inp_channels" in kw:
        kw["in_channels"] = kw.pop("inp_channels")
        kw["layer_norm_type"] = kw.pop("LayerNorm_type")
        kw.update(attn_type="msdswin", ffn_type="gdfn")
    elif to == "MSDeformableNAIR" and "in_channels" in kw:
        if kw.get("attn_type") != "msdswin" or kw.get("ffn_type") != "gdfn":
            raise DetectionError(f"--arch MSDeformableNAIR: the checkpoint has attn_type {kw.get('attn_type')!r}, "
                                 f"ffn_type {kw.get('ffn_type')!r}; the official class has 'msdswin' + 'gdfn'")
        kw["inp_channels"] = kw.pop("in_channels")
        kw["LayerNorm_type"] = kw.pop("layer_norm_type")
        for key in ("attn_type", "ffn_type", "msg_kernel_sizes", "dat_strides"):
            kw.pop(key, None)
    return to, kw
