"""Which HAT network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any

from restoration.archs.layout import (
    LayoutMismatch,
    StateDict,
    group_blocks,
    shape,
    square_side,
    upscale_pixelshuffle,
    width_ratio,
)
from restoration.archs.swinir.detect import swin_heads_and_window


def detect_hat(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """HAT kwargs (HAT-S, HAT, HAT-L, Real-HAT share the layout; CAB/OCAB widths tell them apart)."""
    embed, in_chans = shape(sd, "conv_first.weight")[:2]
    depths = group_blocks(sd, "residual_group.blocks")
    if 0 in depths:
        raise LayoutMismatch("a residual group without 'residual_group.blocks.0'")
    blk = "layers.0.residual_group.blocks.0."
    cab = shape(sd, blk + "conv_block.cab.0.weight")[0]
    squeeze = shape(sd, blk + "conv_block.cab.3.attention.1.weight")[0]
    heads, ws = swin_heads_and_window(sd, len(depths))
    oca_rows = shape(sd, "layers.0.residual_group.overlap_attn.relative_position_bias_table")[0]
    ows = square_side(oca_rows, "overlap_attn.relative_position_bias_table") + 1 - ws
    hidden = shape(sd, blk + "mlp.fc1.weight")[0]
    kw: dict[str, Any] = dict(
        in_chans=in_chans, embed_dim=embed, depths=depths, num_heads=heads, window_size=ws,
        compress_ratio=embed // cab, squeeze_factor=embed // squeeze, overlap_ratio=(ows - ws) / ws,
        mlp_ratio=width_ratio([(embed, hidden)], "mlp.fc1"), qkv_bias=blk + "attn.qkv.bias" in sd,
        patch_norm="patch_embed.norm.weight" in sd, ape="absolute_pos_embed" in sd,
        upscale=upscale_pixelshuffle(sd, shape(sd, "conv_before_upsample.0.weight")[0]), upsampler="pixelshuffle",
        resi_connection="1conv" if "layers.0.conv.weight" in sd else "identity",
    )
    if kw["ape"]:
        kw["img_size"] = square_side(shape(sd, "absolute_pos_embed")[1], "absolute_pos_embed")
    return "HAT", kw
