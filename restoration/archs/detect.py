"""Which architecture, with which hyper-parameters, a state dict belongs to: read from its key names and shapes.

Each family has one detector, ``state_dict -> (arch name, kwargs)``, that derives every constructor argument the
weights *show* (SwinIR: ``layers.{i}.residual_group.blocks.{j}`` counts give ``depths``; ``conv_first.weight``
gives ``embed_dim`` and ``in_chans``; ``attn.relative_position_bias_table`` ``((2ws-1)^2, heads)`` gives
``window_size`` and ``num_heads``; the stored ``attn_mask`` ``((img/ws)^2, ws^2, ws^2)`` gives ``img_size``; the
reconstruction keys give ``upsampler`` and ``upscale``; ...). A detector raises :class:`LayoutMismatch` when the
keys are not its family's, naming what is missing.

Some arguments leave no trace in the weights (SwinIR's ``img_range`` -- 255 for the JPEG models --, DSwinIR's
``dilation`` and ``offset_range_factor``, TBSN's input ``scale``). They are taken from the *released*
configuration the detected one matches (:data:`RELEASES`). A configuration that matches no release is refused
with the closest releases and what differs: the user then confirms the family with ``--arch`` (the detected
shapes are used, invisible arguments at their defaults or from ``--arch-opt``) or gives the options (``-opt``).

Every detection is verified: the network is built on the meta device from the detected kwargs and its key/shape
set must equal the checkpoint's (:func:`layout_differences`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Mapping, Sequence

import torch

from restoration.archs.build import build_network
from restoration.errors import DetectionError

__all__ = [
    "Detection",
    "DetectionError",
    "LayoutMismatch",
    "Release",
    "RELEASES",
    "DETECTORS",
    "DETECTABLE_ARCHS",
    "detect_architecture",
    "detect_swinir",
    "detect_hat",
    "detect_dswinir",
    "detect_tbsn",
    "detect_rrdbnet",
    "detect_srvgg",
    "detect_span",
    "detect_nafnet",
    "detect_edsr",
    "detect_rcan",
    "layout_differences",
]

StateDict = Mapping[str, torch.Tensor]


class LayoutMismatch(Exception):
    """Raised by a detector whose family the keys do not belong to; the message says which key decided it."""


@dataclasses.dataclass(frozen=True)
class Release:
    """A published configuration: registry name, a human name and its complete distinguishing kwargs.

    ``kwargs`` holds what the weights show plus what they do not (e.g. ``img_range``); ``free`` names the
    kwargs allowed to differ from the release (``img_size`` only decides the stored ``attn_mask`` shape).
    """

    arch: str
    name: str
    kwargs: dict[str, Any]
    free: tuple[str, ...] = ("img_size",)


@dataclasses.dataclass(frozen=True)
class Detection:
    """The outcome: build ``{"type": arch, **kwargs}``.

    Attributes:
        arch: Registry name (``"SwinIR"``, ``"HAT"``, ``"DSwinIR"``, ``"MSDeformableNAIR"``, ``"TBSN"``, ...).
        kwargs: Constructor arguments.
        release: The matched release's name, or None (options given or confirmed by ``--arch``).
        source: Where the configuration came from, for the log (``"checkpoint keys"``, an options file).
    """

    arch: str
    kwargs: dict[str, Any]
    release: str | None = None
    source: str = "checkpoint keys"

    def network_opt(self) -> dict[str, Any]:
        """The ``network_g``-style option dict for :func:`restoration.archs.build.build_network`."""
        return {"type": self.arch, **self.kwargs}

    def describe(self) -> str:
        what = self.release or self.arch
        return f"{what} ({self.source})"


# --------------------------------------------------------------------------------------------- helpers
def _shape(sd: StateDict, key: str) -> tuple[int, ...]:
    if key not in sd:
        raise LayoutMismatch(f"no '{key}'")
    return tuple(sd[key].shape)


def _count(sd: StateDict, prefix: str) -> int:
    """How many consecutive ``prefix{i}.`` groups exist (``i`` = 0, 1, ...)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in sd for m in [pattern.match(k)] if m}
    n = 0
    while n in found:
        n += 1
    return n


def _square_side(n: int, what: str) -> int:
    side = math.isqrt(n)
    if side * side != n:
        raise LayoutMismatch(f"{what} has {n} entries, not a square")
    return side


#: Ratios authors write (Restormer's 2.66 first: 2.65 often gives the same widths).
_USUAL_RATIOS = (2.0, 1.0, 4.0, 2.66, 3.0, 1.5)


def _ratio(pairs: Sequence[tuple[int, int]], what: str) -> float:
    """The shortest decimal ``r`` with ``int(width * r) == hidden`` for every ``(width, hidden)`` pair.

    Widths of hidden layers are ``int(width * ratio)`` (timm's ``Mlp``, Restormer's FFN), so ``hidden / width``
    alone may round down wrongly (Restormer's 2.66 gives 127 of 48); this finds the ratio the author wrote.
    """
    for r in _USUAL_RATIOS:
        if all(int(w * r) == h for w, h in pairs):
            return float(r)
    lo = max(h / w for w, h in pairs)
    hi = min((h + 1) / w for w, h in pairs)
    for digits in range(7):
        q = 10 ** digits
        r = math.ceil(lo * q - 1e-9) / q
        if r < hi and all(int(w * r) == h for w, h in pairs):
            return float(r)
    raise LayoutMismatch(f"{what}: no ratio r gives int(width * r) = hidden for {list(pairs)}")


def _upscale_pixelshuffle(sd: StateDict, num_feat: int) -> int:
    """Scale of an ``Upsample`` (conv -> 4C + shuffle(2) per x2, or conv -> 9C + shuffle(3)) at ``upsample.*``."""
    convs = _count_even(sd, "upsample.")
    if convs == 0:
        raise LayoutMismatch("no 'upsample.0.weight'")
    first = _shape(sd, "upsample.0.weight")[0]
    if first == 9 * num_feat and convs == 1:
        return 3
    if first == 4 * num_feat:
        return 2 ** convs
    raise LayoutMismatch(f"upsample.0.weight has {first} output channels, neither 4x nor 9x {num_feat}")


def _count_even(sd: StateDict, prefix: str) -> int:
    """Convolutions at ``prefix0``, ``prefix2``, ``prefix4``, ... (Sequential of conv, shuffle pairs)."""
    n = 0
    while f"{prefix}{2 * n}.weight" in sd:
        n += 1
    return n


def _blocks(sd: StateDict, group: str) -> list[int]:
    """Blocks per residual group: ``layers.{i}.residual_group.blocks.{j}``."""
    groups = _count(sd, "layers.")
    if groups == 0:
        raise LayoutMismatch("no 'layers.0.*'")
    return [_count(sd, f"layers.{i}.{group}.") for i in range(groups)]


# --------------------------------------------------------------------------------------------- SwinIR
def _swin_heads_and_window(sd: StateDict, groups: int) -> tuple[list[int], int]:
    """Heads per residual group and the window size, from each group's first relative-position table
    ((2 ws - 1)^2 rows, one column per head): SwinIR and HAT store them alike."""
    heads, ws = [], 0
    for i in range(groups):
        rows, h = _shape(sd, f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table")
        ws = (_square_side(rows, "attn.relative_position_bias_table") + 1) // 2
        heads.append(h)
    return heads, ws


def detect_swinir(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """SwinIR kwargs from its keys (classical, lightweight, real-SR, denoising, JPEG layouts)."""
    if "relative_position_index_SA" in sd or any(".conv_block.cab." in k for k in sd):
        raise LayoutMismatch("has HAT's 'relative_position_index_SA' / 'conv_block.cab' (HAT, not SwinIR)")
    embed, in_chans = _shape(sd, "conv_first.weight")[:2]
    depths = _blocks(sd, "residual_group.blocks")
    if 0 in depths:
        raise LayoutMismatch("a residual group without 'residual_group.blocks.0'")
    heads, ws = _swin_heads_and_window(sd, len(depths))
    hidden = _shape(sd, "layers.0.residual_group.blocks.0.mlp.fc1.weight")[0]
    kw: dict[str, Any] = dict(in_chans=in_chans, embed_dim=embed, depths=depths, num_heads=heads, window_size=ws,
                              mlp_ratio=_ratio([(embed, hidden)], "mlp.fc1"),
                              qkv_bias="layers.0.residual_group.blocks.0.attn.qkv.bias" in sd,
                              patch_norm="patch_embed.norm.weight" in sd, ape="absolute_pos_embed" in sd)
    kw["img_size"] = _swin_img_size(sd, depths, ws)
    if "layers.0.conv.weight" in sd:
        kw["resi_connection"] = "1conv"
    elif "layers.0.conv.0.weight" in sd:
        kw["resi_connection"] = "3conv"
    else:
        raise LayoutMismatch("no 'layers.0.conv.weight' (1conv) or 'layers.0.conv.0.weight' (3conv)")
    if "conv_up1.weight" in sd:
        kw.update(upsampler="nearest+conv", upscale=4 if "conv_up2.weight" in sd else 2)
    elif "conv_before_upsample.0.weight" in sd:
        kw.update(upsampler="pixelshuffle", upscale=_upscale_pixelshuffle(sd, _shape(sd, "conv_before_upsample.0.weight")[0]))
    elif "upsample.0.weight" in sd:
        out = _shape(sd, "upsample.0.weight")[0]
        kw.update(upsampler="pixelshuffledirect", upscale=_square_side(out // in_chans, "upsample.0.weight / in_chans"))
    else:
        kw.update(upsampler="", upscale=1)
    return "SwinIR", kw


def _swin_img_size(sd: StateDict, depths: Sequence[int], ws: int) -> int:
    """Training patch size: ``absolute_pos_embed`` ``(1, img^2, C)``, else a stored ``attn_mask`` ``((img/ws)^2, ...)``.

    Without either, 64 (the official default); when blocks exist that would be shifted but have no mask,
    the training map was no larger than one window (``fit_window``), so ``img_size == window_size``.
    """
    if "absolute_pos_embed" in sd:
        return _square_side(_shape(sd, "absolute_pos_embed")[1], "absolute_pos_embed")
    for i, depth in enumerate(depths):
        if depth > 1:
            key = f"layers.{i}.residual_group.blocks.1.attn_mask"
            if key in sd:
                return _square_side(_shape(sd, key)[0], key) * ws
            return ws
    return 64


# --------------------------------------------------------------------------------------------- HAT
def detect_hat(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """HAT kwargs (HAT-S, HAT, HAT-L, Real-HAT share the layout; CAB/OCAB widths tell them apart)."""
    embed, in_chans = _shape(sd, "conv_first.weight")[:2]
    depths = _blocks(sd, "residual_group.blocks")
    if 0 in depths:
        raise LayoutMismatch("a residual group without 'residual_group.blocks.0'")
    blk = "layers.0.residual_group.blocks.0."
    cab = _shape(sd, blk + "conv_block.cab.0.weight")[0]
    squeeze = _shape(sd, blk + "conv_block.cab.3.attention.1.weight")[0]
    heads, ws = _swin_heads_and_window(sd, len(depths))
    oca_rows = _shape(sd, "layers.0.residual_group.overlap_attn.relative_position_bias_table")[0]
    ows = _square_side(oca_rows, "overlap_attn.relative_position_bias_table") + 1 - ws
    hidden = _shape(sd, blk + "mlp.fc1.weight")[0]
    kw: dict[str, Any] = dict(
        in_chans=in_chans, embed_dim=embed, depths=depths, num_heads=heads, window_size=ws,
        compress_ratio=embed // cab, squeeze_factor=embed // squeeze, overlap_ratio=(ows - ws) / ws,
        mlp_ratio=_ratio([(embed, hidden)], "mlp.fc1"), qkv_bias=blk + "attn.qkv.bias" in sd,
        patch_norm="patch_embed.norm.weight" in sd, ape="absolute_pos_embed" in sd,
        upscale=_upscale_pixelshuffle(sd, _shape(sd, "conv_before_upsample.0.weight")[0]), upsampler="pixelshuffle",
        resi_connection="1conv" if "layers.0.conv.weight" in sd else "identity",
    )
    if kw["ape"]:
        kw["img_size"] = _square_side(_shape(sd, "absolute_pos_embed")[1], "absolute_pos_embed")
    return "HAT", kw


# --------------------------------------------------------------------------------------------- DSwinIR
_UNET_LEVELS = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")
_DAT_DEFAULT_STRIDES = (8, 4, 2, 1)


def _dat_offset_kernel(stride: int) -> int:
    return max(3, stride + 1 if stride % 2 == 0 else stride)  # DeformableAttention2d's default


def detect_dswinir(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """``MSDeformableNAIR`` (the official class: GDFN, MS-DSwin) or ``DSwinIR`` (MSG-FFN, or DAT attention).

    A GDFN + MS-DSwin state dict is key-identical in both classes; it is reported as the official
    ``MSDeformableNAIR`` (weights trained here come with their options file, which decides).
    """
    dim, in_ch = _shape(sd, "patch_embed.proj.weight")[:2]
    if "patch_embed.proj.mask" in sd:
        raise LayoutMismatch("has TBSN's masked first convolution 'patch_embed.proj.mask'")
    widths = [dim * 2 ** i for i in range(4)]
    blocks = [_count(sd, f"{name}.") for name in _UNET_LEVELS]
    if 0 in blocks:
        raise LayoutMismatch(f"a U-Net level without blocks: {dict(zip(_UNET_LEVELS, blocks))}")
    heads, offset_kernels = [], []
    for name, width in zip(_UNET_LEVELS, widths):
        group_ch, _, k, _ = _shape(sd, f"{name}.0.attn.conv_offset.0.weight")
        heads.append(width // group_ch)
        offset_kernels.append(k)
    rpb = f"{_UNET_LEVELS[0]}.0.attn.rpb_h1" in sd
    ffn = f"{_UNET_LEVELS[0]}.0.ffn."
    ffn_pairs = []  # (width, hidden) per level, decoder level 1 / refinement at 2 * dim
    for name, width in [*zip(_UNET_LEVELS, widths), ("refinement", 2 * dim)]:
        if f"{name}.0.ffn.project_out.weight" in sd:
            ffn_pairs.append((width, _shape(sd, f"{name}.0.ffn.project_in.weight")[0] // 2))
    if ffn + "dwconv.weight" in sd:
        ffn_type, msg_kernels = "gdfn", None
    elif ffn + "branches.0.weight" in sd:
        ffn_type = "msg"
        msg_kernels = [_shape(sd, f"{ffn}branches.{j}.weight")[-1] for j in range(_count(sd, ffn + "branches."))]
    else:
        raise LayoutMismatch(f"no '{ffn}dwconv.weight' (GDFN) or '{ffn}branches.0.weight' (MSG-FFN)")
    if rpb:
        attn_type = "msdswin"
        kernel = [(_shape(sd, f"{name}.0.attn.rpb_h1")[-1] + 1) // 2 for name in _UNET_LEVELS]
    elif tuple(offset_kernels) == tuple(_dat_offset_kernel(s) for s in _DAT_DEFAULT_STRIDES):
        attn_type, kernel = "dat", [3, 3, 3, 3]  # DAT's offset kernel follows its stride, not kernel_size
    else:
        attn_type, kernel = "msdswin", offset_kernels  # MS-DSwin without bias tables: offset conv is k x k
    common = dict(dim=dim, num_blocks=blocks, num_refinement_blocks=_count(sd, "refinement."), heads=heads,
                  kernel_size=kernel, ffn_expansion_factor=_ratio(ffn_pairs, "ffn.project_in"),
                  bias="patch_embed.proj.bias" in sd, rel_pos_bias=rpb,
                  dual_pixel_task="skip_conv.weight" in sd, out_channels=_shape(sd, "output.weight")[0])
    layer_norm = "WithBias" if f"{_UNET_LEVELS[0]}.0.norm1.body.bias" in sd else "BiasFree"
    if attn_type == "msdswin" and ffn_type == "gdfn":
        return "MSDeformableNAIR", dict(inp_channels=in_ch, LayerNorm_type=layer_norm, **common)
    kw = dict(in_channels=in_ch, layer_norm_type=layer_norm, attn_type=attn_type, ffn_type=ffn_type, **common)
    if msg_kernels is not None:
        kw["msg_kernel_sizes"] = msg_kernels
    if attn_type == "dat":
        kw["dat_strides"] = list(_DAT_DEFAULT_STRIDES)
    return "DSwinIR", kw


# --------------------------------------------------------------------------------------------- TBSN
def detect_tbsn(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """TBSN kwargs: the masked first conv, M-WSA masks ``(1, ws^2, ow^2)`` and factorised position tables."""
    _shape(sd, "patch_embed.proj.mask")
    dim, in_ch = _shape(sd, "patch_embed.proj.weight")[:2]
    levels = ("encoder_level1", "encoder_level2", "latent")
    blocks = [_count(sd, f"{name}.") for name in levels]
    if 0 in blocks:
        raise LayoutMismatch(f"a U-Net level without blocks: {dict(zip(levels, blocks))}")
    _, q, k = _shape(sd, f"{levels[0]}.0.spatial_attn.fixed_pos_emb.attention_mask")
    ws = _square_side(q, "attention_mask queries")
    channel_heads, spatial_heads, overlap = [], [], []
    dim_head = _shape(sd, f"{levels[0]}.0.spatial_attn.rel_pos_emb.rel_height")[1]
    for name in levels:
        channel_heads.append(_shape(sd, f"{name}.0.channel_attn.temperature")[0])
        inner = _shape(sd, f"{name}.0.spatial_attn.project_out.weight")[1]
        spatial_heads.append(inner // dim_head)
        ow = _square_side(_shape(sd, f"{name}.0.spatial_attn.fixed_pos_emb.attention_mask")[2], "attention_mask keys")
        overlap.append((ow - ws) / ws)
    hidden = _shape(sd, f"{levels[0]}.0.channel_ffn.project_in.weight")[0]
    return "TBSN", dict(
        in_ch=in_ch, out_ch=_shape(sd, "output.weight")[0], dim=dim, num_blocks=blocks,
        num_refinement_blocks=_count(sd, "refinement."), channel_heads=channel_heads, spatial_heads=spatial_heads,
        overlap_ratio=overlap, window_size=ws, spatial_dim_head=dim_head, bias="output.bias" in sd,
        ffn_expansion_factor=_ratio([(dim, hidden)], "channel_ffn.project_in"),
        LayerNorm_type="WithBias" if f"{levels[0]}.0.norm1.body.bias" in sd else "BiasFree",
    )


# --------------------------------------------------------------------------------------------- RRDBNet
#: Input channels of ``conv_first`` / image channels -> RRDBNet scale (pixel-unshuffle by 1, 2, 4).
_RRDB_SCALE_OF_RATIO = {1: 4, 4: 2, 16: 1}


def detect_rrdbnet(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """RRDBNet kwargs (BasicSR layout: ESRGAN, Real-ESRGAN x4plus / x2plus / anime_6B).

    ``conv_first`` takes ``num_in_ch * f^2`` channels after a pixel-unshuffle by ``f`` (scale 4: f = 1,
    2: 2, 1: 4); the image channels are taken equal to ``num_out_ch`` (``conv_last``), as in every release.
    """
    num_grow_ch, num_feat = _shape(sd, "body.0.rdb1.conv1.weight")[:2]
    for key in ("conv_body.weight", "conv_up1.weight", "conv_up2.weight", "conv_hr.weight"):
        _shape(sd, key)
    first_in = _shape(sd, "conv_first.weight")[1]
    num_out_ch = _shape(sd, "conv_last.weight")[0]
    ratio, rest = divmod(first_in, num_out_ch)
    scale = _RRDB_SCALE_OF_RATIO.get(ratio, 4) if rest == 0 else 4
    return "RRDBNet", dict(num_in_ch=first_in // {4: 1, 2: 4, 1: 16}[scale], num_out_ch=num_out_ch, scale=scale,
                           num_feat=num_feat, num_block=_count(sd, "body."), num_grow_ch=num_grow_ch)


# --------------------------------------------------------------------------------------------- SRVGGNetCompact
def detect_srvgg(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """SRVGGNetCompact kwargs: convolutions at ``body.{2k}``, PReLU slopes (``act_type`` prelu) at ``body.{2k+1}``.

    ReLU and LeakyReLU store nothing, so a layout without slopes is read as ``relu`` (no release uses either).
    """
    num_feat, num_in_ch = _shape(sd, "body.0.weight")[:2]
    if len(_shape(sd, "body.0.weight")) != 4 or any(not k.startswith("body.") for k in sd):
        raise LayoutMismatch("keys other than 'body.{i}.*' convolutions and PReLU slopes")
    convs = _count_even(sd, "body.")
    if convs < 2:
        raise LayoutMismatch("fewer than two 'body.{2k}.weight' convolutions")
    out = _shape(sd, f"body.{2 * (convs - 1)}.weight")[0]
    if out % num_in_ch:
        raise LayoutMismatch(f"the last conv's {out} channels are not a multiple of {num_in_ch} input channels")
    upscale = _square_side(out // num_in_ch, "last conv channels / input channels")
    return "SRVGGNetCompact", dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, num_feat=num_feat, num_conv=convs - 2,
                                   upscale=upscale, act_type="prelu" if "body.1.weight" in sd else "relu")


# --------------------------------------------------------------------------------------------- EDSR, RCAN
def _mean_shift_sr(sd: StateDict, first_block: str) -> dict[str, Any]:
    """What EDSR and RCAN share: ``conv_first``, a ``body.{i}`` trunk, ``conv_after_body``, ``upsample``,
    ``conv_last``; ``first_block`` is the key that tells the two bodies apart."""
    _shape(sd, first_block)
    if any(k.startswith(("layers.", "patch_embed.")) for k in sd):
        raise LayoutMismatch("Swin layers ('layers.*') in the keys")
    num_feat, num_in_ch = _shape(sd, "conv_first.weight")[:2]
    _shape(sd, "conv_after_body.weight")
    return dict(num_in_ch=num_in_ch, num_out_ch=_shape(sd, "conv_last.weight")[0], num_feat=num_feat,
                upscale=_upscale_pixelshuffle(sd, num_feat))


def detect_edsr(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """EDSR kwargs (BasicSR layout): residual blocks at ``body.{i}.conv{1,2}``.

    ``res_scale`` (EDSR-L: 0.1), ``img_range`` and ``rgb_mean`` leave no trace: they come from the release.
    """
    kw = _mean_shift_sr(sd, "body.0.conv1.weight")
    return "EDSR", dict(kw, num_block=_count(sd, "body."))


def detect_rcan(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """RCAN kwargs (BasicSR layout): ``body.{g}.residual_group.{b}.rcab``; the channel attention's first 1x1
    conv has ``num_feat // squeeze_factor`` outputs, read back as ``num_feat // that`` (exact for the releases)."""
    kw = _mean_shift_sr(sd, "body.0.residual_group.0.rcab.0.weight")
    squeezed = _shape(sd, "body.0.residual_group.0.rcab.3.attention.1.weight")[0]
    return "RCAN", dict(kw, num_group=_count(sd, "body."), num_block=_count(sd, "body.0.residual_group."),
                        squeeze_factor=kw["num_feat"] // squeezed)


# --------------------------------------------------------------------------------------------- SPAN
def detect_span(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """SPAN kwargs: Conv3XC ``conv_1`` / ``block_{1..6}.c{1,2,3}_r`` / ``conv_2``, 1x1 ``conv_cat``, ``upsampler.0``.

    ``upsampler.0`` has ``num_out_ch * upscale^2`` outputs; the output channels are taken equal to the input's
    (3, as in both releases). ``bias``, ``img_range`` and ``rgb_mean`` leave no trace.
    """
    feature_channels, num_in_ch = _shape(sd, "conv_1.sk.weight")[:2]
    for key in ("conv_1.eval_conv.weight", "block_6.c3_r.conv.2.weight", "conv_2.sk.weight", "conv_cat.weight"):
        _shape(sd, key)
    out = _shape(sd, "upsampler.0.weight")[0]
    if out % num_in_ch:
        raise LayoutMismatch(f"upsampler.0's {out} channels are not a multiple of {num_in_ch} input channels")
    upscale = _square_side(out // num_in_ch, "upsampler.0 channels / input channels")
    return "SPAN", dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, feature_channels=feature_channels, upscale=upscale)


# --------------------------------------------------------------------------------------------- NAFNet
def detect_nafnet(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """NAFNet kwargs: ``intro``, per level ``encoders.{i}.{j}`` + ``downs.{i}``, ``middle_blks.{j}``,
    ``ups.{i}`` + ``decoders.{i}.{j}``, ``ending``. A level with no blocks still has its ``downs``/``ups`` conv.

    ``NAFNetLocal`` (TLC) has the same state dict; the release decides which of the two is built.
    """
    width, img_channel = _shape(sd, "intro.weight")[:2]
    _shape(sd, "ending.weight")
    levels = _count(sd, "downs.")
    if _count(sd, "ups.") != levels:
        raise LayoutMismatch(f"{levels} 'downs.*' but {_count(sd, 'ups.')} 'ups.*' convolutions")
    return "NAFNet", dict(img_channel=img_channel, width=width, middle_blk_num=_count(sd, "middle_blks."),
                          enc_blk_nums=[_count(sd, f"encoders.{i}.") for i in range(levels)],
                          dec_blk_nums=[_count(sd, f"decoders.{i}.") for i in range(levels)])


# --------------------------------------------------------------------------------------------- Restormer
def detect_restormer(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """Restormer kwargs: blocks per level from ``encoder_level{1,2,3}`` / ``latent``, heads from each level's
    ``attn.temperature`` ``(heads, 1, 1)``, the FFN ratio from ``ffn.project_in`` widths, ``LayerNorm_type`` from
    a ``norm1.body.bias``, ``bias`` from ``output.bias``, ``dual_pixel_task`` from ``skip_conv``."""
    dim, inp_channels = _shape(sd, "patch_embed.proj.weight")[:2]
    out_channels = _shape(sd, "output.weight")[0]
    if any(".attn.offset" in k or ".attn.relative_position" in k for k in sd):
        raise LayoutMismatch("deformable / windowed attention keys (DSwinIR, TBSN)")
    levels = ["encoder_level1", "encoder_level2", "encoder_level3", "latent"]
    num_blocks = [_count(sd, f"{name}.") for name in levels]
    if 0 in num_blocks:
        raise LayoutMismatch(f"a level without blocks: {dict(zip(levels, num_blocks))}")
    heads = [_shape(sd, f"{name}.0.attn.temperature")[0] for name in levels]
    pairs = [(dim * 2 ** i, _shape(sd, f"{name}.0.ffn.project_in.weight")[0] // 2) for i, name in enumerate(levels)]
    return "Restormer", dict(inp_channels=inp_channels, out_channels=out_channels, dim=dim, num_blocks=num_blocks,
                             num_refinement_blocks=_count(sd, "refinement."), heads=heads,
                             ffn_expansion_factor=_ratio(pairs, "Restormer ffn.project_in"),
                             bias="output.bias" in sd,
                             LayerNorm_type="WithBias" if "encoder_level1.0.norm1.body.bias" in sd else "BiasFree",
                             dual_pixel_task="skip_conv.weight" in sd)


# --------------------------------------------------------------------------------------------- DAT
def _dat_split_size(rpe: torch.Tensor, area: int) -> list[int]:
    """(s0, s1) from ``rpe_biases`` ``((2 s0 - 1)(2 s1 - 1), 2)`` holding offsets ``1-s .. s-1``. Without values
    (meta tensors) the shapes give {s0, s1} (``s0 s1`` = ``area``, the window's token count), taken ascending
    as in every release."""
    if rpe.device.type != "meta":
        return [int(rpe[:, 0].max().item()) + 1, int(rpe[:, 1].max().item()) + 1]
    total = (4 * area + 1 - rpe.shape[0]) // 2  # (2a-1)(2b-1) = 4ab - 2(a+b) + 1
    root = math.isqrt(max(total * total - 4 * area, 0))
    small, large = (total - root) // 2, (total + root) // 2
    if small * large != area:
        raise LayoutMismatch(f"rpe_biases {tuple(rpe.shape)} and a {area}-token window give no split_size")
    return [small, large]


def detect_dat(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """DAT kwargs: ``layers.{i}.blocks.{j}``; the window ``split_size`` from the first branch's ``rpe_biases``
    (offsets ``1-s .. s-1``); heads from ``pos3`` (``heads / 2`` per branch); ``img_size`` from a stored shift
    mask ``((img/s0)(img/s1), s0 s1, s0 s1)`` (64 when no block shifts); the head from the reconstruction keys.

    ``img_range`` leaves no trace (1.0 in every release)."""
    embed_dim, in_chans = _shape(sd, "conv_first.weight")[:2]
    groups = _count(sd, "layers.")
    if groups == 0 or "layers.0.blocks.0.attn.attns.0.rpe_biases" not in sd:
        raise LayoutMismatch("no 'layers.0.blocks.0.attn.attns.0.rpe_biases'")
    depth = [_count(sd, f"layers.{i}.blocks.") for i in range(groups)]
    split_size = _dat_split_size(sd["layers.0.blocks.0.attn.attns.0.rpe_biases"],
                                 _shape(sd, "layers.0.blocks.0.attn.attns.0.relative_position_index")[0])
    heads = [2 * _shape(sd, f"layers.{i}.blocks.0.attn.attns.0.pos.pos3.2.weight")[0] for i in range(groups)]
    masks = [k for k in sd if k.endswith(".attn.attn_mask_0")]
    img_size = 64
    if masks:
        windows = _shape(sd, masks[0])[0]
        img_size = _square_side(windows * split_size[0] * split_size[1], "shift mask windows x window area")
    hidden = _shape(sd, "layers.0.blocks.0.ffn.fc1.weight")[0]
    kw: dict[str, Any] = dict(img_size=img_size, in_chans=in_chans, embed_dim=embed_dim, split_size=split_size,
                              depth=depth, num_heads=heads, expansion_factor=_ratio([(embed_dim, hidden)], "DAT fc1"),
                              qkv_bias="layers.0.blocks.0.attn.qkv.bias" in sd,
                              resi_connection="1conv" if "conv_after_body.weight" in sd else "3conv")
    if "conv_before_upsample.0.weight" in sd:
        kw.update(upsampler="pixelshuffle", upscale=_upscale_pixelshuffle(sd, _shape(sd, "conv_last.weight")[1]))
    else:
        kw.update(upsampler="pixelshuffledirect",
                  upscale=_square_side(_shape(sd, "upsample.0.weight")[0] // in_chans, "upsample.0 channels / in"))
    return "DAT", kw


#: Registry name -> the class whose state dict it shares: a test-time form a release may name instead.
_TEST_TIME_FORM_OF: dict[str, str] = {"NAFNetLocal": "NAFNet"}


#: Family name -> detector, tried in this order (HAT before SwinIR: HAT's keys contain SwinIR's).
DETECTORS: dict[str, Callable[[StateDict], tuple[str, dict[str, Any]]]] = {
    "HAT": detect_hat,
    "SwinIR": detect_swinir,
    "DSwinIR": detect_dswinir,
    "TBSN": detect_tbsn,
    "RRDBNet": detect_rrdbnet,
    "SRVGGNetCompact": detect_srvgg,
    "SPAN": detect_span,
    "NAFNet": detect_nafnet,
    "EDSR": detect_edsr,
    "RCAN": detect_rcan,
    "Restormer": detect_restormer,
    "DAT": detect_dat,
}
#: Registry name -> the family detector that reads it.
_FAMILY_OF = {"HAT": "HAT", "SwinIR": "SwinIR", "DSwinIR": "DSwinIR", "MSDeformableNAIR": "DSwinIR", "TBSN": "TBSN",
              "RRDBNet": "RRDBNet", "SRVGGNetCompact": "SRVGGNetCompact", "EDSR": "EDSR", "RCAN": "RCAN"}
_FAMILY_OF.update({"SPAN": "SPAN", "NAFNet": "NAFNet", "NAFNetLocal": "NAFNet"})
_FAMILY_OF.update({"Restormer": "Restormer", "DAT": "DAT"})
#: Registry names :func:`detect_architecture` can read from a checkpoint (``--arch`` accepts them without kwargs).
DETECTABLE_ARCHS: tuple[str, ...] = tuple(_FAMILY_OF)


# --------------------------------------------------------------------------------------------- releases
def _swinir(name: str, **kw: Any) -> Release:
    base = dict(in_chans=3, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=8, mlp_ratio=2.0,
                qkv_bias=True, patch_norm=True, ape=False, img_range=1.0, resi_connection="1conv")
    return Release("SwinIR", name, {**base, **kw})


def _hat(name: str, **kw: Any) -> Release:
    base = dict(img_size=64, in_chans=3, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=16,
                compress_ratio=3, squeeze_factor=30, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0,
                qkv_bias=True, patch_norm=True, ape=False, img_range=1.0, upsampler="pixelshuffle",
                resi_connection="1conv")
    return Release("HAT", name, {**base, **kw})


def _releases() -> list[Release]:
    out: list[Release] = []
    for s in (2, 3, 4, 8):  # 001_classicalSR_{DIV2K_s48w8,DF2K_s64w8}_SwinIR-M_x{s}
        out.append(_swinir(f"SwinIR-M classical SR x{s}", img_size=64, upscale=s, upsampler="pixelshuffle"))
    for s in (2, 3, 4):  # 002_lightweightSR_DIV2K_s64w8_SwinIR-S_x{s}
        out.append(_swinir(f"SwinIR-S lightweight SR x{s}", img_size=64, embed_dim=60, depths=[6] * 4,
                           num_heads=[6] * 4, upscale=s, upsampler="pixelshuffledirect"))
    out.append(_swinir("SwinIR-M real-world SR x4", img_size=64, upscale=4, upsampler="nearest+conv"))
    out.append(_swinir("SwinIR-L real-world SR x4", img_size=64, embed_dim=240, depths=[6] * 9, num_heads=[8] * 9,
                       upscale=4, upsampler="nearest+conv", resi_connection="3conv"))
    for c, what in ((1, "gray"), (3, "color")):
        out.append(_swinir(f"SwinIR {what} denoising", in_chans=c, img_size=128, upscale=1, upsampler=""))
        out.append(_swinir(f"SwinIR {what} JPEG deblocking", in_chans=c, img_size=126, window_size=7,
                           img_range=255.0, upscale=1, upsampler=""))
    for s in (2, 3, 4):
        out.append(_hat(f"HAT-S SR x{s}", embed_dim=144, compress_ratio=24, squeeze_factor=24, upscale=s))
        out.append(_hat(f"HAT SR x{s}" + (" / Real-HAT GAN x4" if s == 4 else ""), upscale=s))
        out.append(_hat(f"HAT-L SR x{s}", depths=[6] * 12, num_heads=[6] * 12, upscale=s))
    # DSwinIR has no released weights; the official class runs with heads divisible by 3 (dim 48).
    out.append(Release("MSDeformableNAIR", "DSwinIR official (MSDeformableNAIR, dim 48)", dict(
        inp_channels=3, out_channels=3, dim=48, num_blocks=[4, 6, 6, 8], kernel_size=[3, 3, 3, 3],
        dilation=[1, 1, 1, 1], num_refinement_blocks=4, heads=[3, 6, 12, 24], ffn_expansion_factor=2.0, bias=False,
        LayerNorm_type="WithBias", rel_pos_bias=True, dual_pixel_task=False, global_residual=True), free=()))
    out.append(Release("DSwinIR", "DSwinIR (paper: MS-DSwin + MSG-FFN)", dict(
        in_channels=3, out_channels=3, dim=48, num_blocks=[4, 6, 6, 8], num_refinement_blocks=4,
        heads=[3, 6, 12, 24], kernel_size=[3, 3, 3, 3], dilation=[1, 1, 1, 1], ffn_expansion_factor=2.0, bias=False,
        layer_norm_type="WithBias", rel_pos_bias=True, attn_type="msdswin", ffn_type="msg", msg_kernel_sizes=[3, 5],
        dual_pixel_task=False), free=()))
    out.append(Release("TBSN", "TBSN (SIDD, model_sidd.pth)", dict(
        in_ch=3, out_ch=3, dim=48, num_blocks=[4, 4, 4], num_refinement_blocks=4, channel_heads=[1, 2, 4],
        spatial_heads=[2, 2, 3], overlap_ratio=[0.5, 0.5, 0.5], window_size=8, spatial_dim_head=16, bias=False,
        ffn_expansion_factor=1.0, LayerNorm_type="BiasFree", scale=1), free=()))
    # Real-ESRGAN (xinntao/Real-ESRGAN inference_realesrgan.py); every kwarg shows in the weights
    rrdb = dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32)
    out.append(Release("RRDBNet", "RealESRGAN_x4plus / RealESRNet_x4plus / ESRGAN_SRx4_DF2KOST_official", rrdb, free=()))
    out.append(Release("RRDBNet", "RealESRGAN_x2plus", dict(rrdb, scale=2), free=()))
    out.append(Release("RRDBNet", "RealESRGAN_x4plus_anime_6B", dict(rrdb, num_block=6), free=()))
    vgg = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type="prelu")
    out.append(Release("SRVGGNetCompact", "realesr-general-x4v3 / realesr-general-wdn-x4v3", vgg, free=()))
    out.append(Release("SRVGGNetCompact", "realesr-animevideov3", dict(vgg, num_conv=16), free=()))
    # BasicSR's EDSR (its model-zoo page and EDSR test options) and RCAN (its RCAN option files): res_scale,
    # img_range and rgb_mean are invisible in the weights
    shift = dict(num_in_ch=3, num_out_ch=3, img_range=255.0, rgb_mean=[0.4488, 0.4371, 0.404])
    for s in (2, 3, 4):
        out.append(Release("EDSR", f"EDSR_Mx{s}_f64b16_DIV2K_official (EDSR-M x{s})", dict(
            shift, num_feat=64, num_block=16, upscale=s, res_scale=1), free=()))
        out.append(Release("EDSR", f"EDSR_Lx{s}_f256b32_DIV2K_official (EDSR-L x{s})", dict(
            shift, num_feat=256, num_block=32, upscale=s, res_scale=0.1), free=()))
        out.append(Release("RCAN", f"RCAN x{s}" + (" / RCAN_BIX4-official" if s == 4 else ""), dict(
            shift, num_feat=64, num_group=10, num_block=20, squeeze_factor=16, upscale=s, res_scale=1), free=()))
    # SPAN (hongyuanyu/SPAN README: spanx4_ch48.pth, spanx2_ch48.pth); bias / img_range / rgb_mean at the defaults
    span = dict(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4)
    out.append(Release("SPAN", "SPAN x4 ch48 (spanx4_ch48.pth)", span, free=()))
    out.append(Release("SPAN", "SPAN x2 ch48 (spanx2_ch48.pth)", dict(span, upscale=2), free=()))
    # NAFNet (megvii-research/NAFNet options/test/{SIDD,GoPro}): GoPro is tested as NAFNetLocal (TLC, same weights)
    sidd = dict(img_channel=3, middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8], dec_blk_nums=[2, 2, 2, 2])
    gopro = dict(img_channel=3, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1])
    for width in (32, 64):
        out.append(Release("NAFNet", f"NAFNet-SIDD-width{width}", dict(sidd, width=width), free=()))
        out.append(Release("NAFNetLocal", f"NAFNet-GoPro-width{width} (tested with TLC)", dict(gopro, width=width),
                           free=()))
    # Restormer (swz30/Restormer {Deraining,Motion_Deblurring,Defocus_Deblurring,Denoising}/Options)
    rest = dict(inp_channels=3, out_channels=3, dim=48, num_blocks=[4, 6, 6, 8], num_refinement_blocks=4,
                heads=[1, 2, 4, 8], ffn_expansion_factor=2.66, bias=False, dual_pixel_task=False)
    out.append(Release("Restormer", "Restormer deraining / motion_deblurring / single_image_defocus_deblurring",
                       dict(rest, LayerNorm_type="WithBias"), free=()))
    out.append(Release("Restormer", "Restormer dual_pixel_defocus_deblurring",
                       dict(rest, LayerNorm_type="WithBias", inp_channels=6, dual_pixel_task=True), free=()))
    out.append(Release("Restormer", "Restormer gaussian_color_denoising (blind, sigma15/25/50) / real_denoising",
                       dict(rest, LayerNorm_type="BiasFree"), free=()))
    out.append(Release("Restormer", "Restormer gaussian_gray_denoising (blind, sigma15/25/50)",
                       dict(rest, LayerNorm_type="BiasFree", inp_channels=1, out_channels=1), free=()))
    # DAT (zhengchen1999/DAT options/Test): img_size 64 decides the stored shift masks
    dat = dict(img_size=64, in_chans=3, embed_dim=180, split_size=[8, 32], depth=[6] * 6, num_heads=[6] * 6,
               expansion_factor=4.0, qkv_bias=True, img_range=1.0, resi_connection="1conv", upsampler="pixelshuffle")
    for s in (2, 3, 4):
        out.append(Release("DAT", f"DAT_x{s}", dict(dat, upscale=s)))
        out.append(Release("DAT", f"DAT_S_x{s}", dict(dat, upscale=s, split_size=[8, 16], expansion_factor=2.0)))
        out.append(Release("DAT", f"DAT_2_x{s}", dict(dat, upscale=s, expansion_factor=2.0)))
        out.append(Release("DAT", f"DAT_light_x{s}", dict(dat, upscale=s, embed_dim=60, depth=[18], num_heads=[6],
                                                         expansion_factor=2.0, resi_connection="3conv",
                                                         upsampler="pixelshuffledirect")))
    return out


#: Every official configuration detection recognises (one entry per distinct network layout).
RELEASES: list[Release] = _releases()


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def _release_differences(release: Release, arch: str, detected: Mapping[str, Any]) -> list[str]:
    """``"embed_dim 96 (release: 180)"`` for every shown kwarg that differs from the release."""
    if release.arch != arch and _TEST_TIME_FORM_OF.get(release.arch) != arch:
        return [f"class {arch} (release: {release.arch})"]
    return [f"{key} {detected[key]!r} (release: {release.kwargs[key]!r})"
            for key in detected if key in release.kwargs and key not in release.free
            and _norm(detected[key]) != _norm(release.kwargs[key])]


# --------------------------------------------------------------------------------------------- verification
def layout_differences(network_opt: Mapping[str, Any], sd: StateDict, limit: int = 6) -> list[str]:
    """How the key/shape set of ``build_network(network_opt)`` differs from ``sd`` (empty: identical).

    The network is built on the meta device, so this costs no memory or time even for HAT-L.
    """
    try:
        with torch.device("meta"):
            net = build_network(network_opt)
    except (ValueError, TypeError) as exc:  # the constructor's own option check
        return [f"cannot build {network_opt.get('type')}: {exc}"]
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {own[k]}" for k in own if k in sd and tuple(sd[k].shape) != own[k]]
    out = []
    for label, items in (("missing in checkpoint", missing), ("not in network", unexpected), ("shape", shapes)):
        if items:
            out.append(f"{label} ({len(items)}): " + ", ".join(items[:limit]) + (" ..." if len(items) > limit else ""))
    return out


# --------------------------------------------------------------------------------------------- entry point
def detect_architecture(sd: StateDict, arch: str | None = None, overrides: Mapping[str, Any] | None = None,
                        where: str = "checkpoint") -> Detection:
    """Determine the network of state dict ``sd``.

    Args:
        sd: The state dict (prefixes already stripped, see :func:`restoration.utils.weights.read_state_dict`).
        arch: The user's ``--arch``: only this family is tried and a configuration that matches no release is
            accepted (its invisible arguments at the constructor defaults).
        overrides: The user's ``--arch-opt``: replace detected/released kwargs.
        where: Names the checkpoint in messages.

    Raises:
        DetectionError: No family recognises the keys; or the configuration matches no release (the closest
            are listed with what differs); or the detected network's keys/shapes still differ from ``sd``.
    """
    overrides = dict(overrides or {})
    if arch is not None and arch not in _FAMILY_OF:
        raise DetectionError(f"--arch {arch!r} cannot be detected from a checkpoint; detectable: "
                             f"{sorted(_FAMILY_OF)} (or give all options with -opt)")
    families = [_FAMILY_OF[arch]] if arch else list(DETECTORS)
    found: list[tuple[str, dict[str, Any]]] = []
    not_it: list[str] = []
    for family in families:
        try:
            found.append(DETECTORS[family](sd))
        except LayoutMismatch as exc:
            not_it.append(f"not {family}: {exc}")
    if not found:
        sample = ", ".join(list(sd)[:6])
        raise DetectionError(f"{where}: the keys match no supported architecture ({'; '.join(not_it)}). "
                             f"First keys: {sample}. Pass --arch NAME --arch-opt '{{...}}' or -opt options.yml")
    name, kwargs = found[0]
    if arch is not None and arch != name:  # e.g. --arch DSwinIR for a GDFN layout: the user's class decides
        name, kwargs = _rename_unet(kwargs, to=arch) if _FAMILY_OF[arch] == "DSwinIR" else (arch, kwargs)
    family = _FAMILY_OF[name]
    release = None
    if arch is None:
        ranked = sorted(((_release_differences(r, name, kwargs), r) for r in RELEASES if _FAMILY_OF[r.arch] == family),
                        key=lambda item: len(item[0]))
        best_diff, release = ranked[0]
        if best_diff:
            closest = "; ".join(f"{r.name}: " + ", ".join(d[:3]) + (" ..." if len(d) > 3 else "")
                                for d, r in ranked[:3])
            first = best_diff[0].split(" (release")[0]
            raise DetectionError(
                f"{where}: {family}-like, but {first} is not a released config (closest: {closest}). "
                f"Pass --arch {name} to use the shapes read from the checkpoint ({_brief(kwargs)}), "
                f"--arch-opt '{{json}}' for what the weights do not show, or -opt options.yml")
        kwargs = {**release.kwargs, **kwargs}
        name = release.arch  # the release's test-time form (NAFNetLocal) when it names one
    kwargs.update(overrides)
    detection = Detection(name, kwargs, release.name if release and not overrides else None,
                          "checkpoint keys" + (" + --arch-opt" if overrides else ""))
    problems = layout_differences(detection.network_opt(), sd)
    if problems:
        raise DetectionError(f"{where}: detected {name} {_brief(kwargs)}, but its layout differs from the "
                             f"checkpoint: " + "; ".join(problems) + ". Pass -opt options.yml")
    return detection


def _rename_unet(kwargs: Mapping[str, Any], to: str) -> tuple[str, dict[str, Any]]:
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


def _brief(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
