"""Which SwinIR network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any, Sequence

from restoration.archs.layout import (
    LayoutMismatch,
    StateDict,
    group_blocks,
    shape,
    square_side,
    upscale_pixelshuffle,
    width_ratio,
)


def swin_heads_and_window(sd: StateDict, groups: int) -> tuple[list[int], int]:
    """Heads per residual group and the window size, from each group's first relative-position table
    ((2 ws - 1)^2 rows, one column per head): SwinIR and HAT store them alike."""
    heads, ws = [], 0
    for i in range(groups):
        rows, h = shape(sd, f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table")
        ws = (square_side(rows, "attn.relative_position_bias_table") + 1) // 2
        heads.append(h)
    return heads, ws


def swin_img_size(sd: StateDict, depths: Sequence[int], ws: int) -> int:
    """Training patch size: ``absolute_pos_embed`` ``(1, img^2, C)``, else a stored ``attn_mask`` ``((img/ws)^2, ...)``.

    Without either, 64 (the official default); when blocks exist that would be shifted but have no mask,
    the training map was no larger than one window (``fit_window``), so ``img_size == window_size``.
    """
    if "absolute_pos_embed" in sd:
        return square_side(shape(sd, "absolute_pos_embed")[1], "absolute_pos_embed")
    for i, depth in enumerate(depths):
        if depth > 1:
            key = f"layers.{i}.residual_group.blocks.1.attn_mask"
            if key in sd:
                return square_side(shape(sd, key)[0], key) * ws
            return ws
    return 64


def detect_swinir(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """SwinIR kwargs from its keys (classical, lightweight, real-SR, denoising, JPEG layouts)."""
    if "relative_position_index_SA" in sd or any(".conv_block.cab." in k for k in sd):
        raise LayoutMismatch("has HAT's 'relative_position_index_SA' / 'conv_block.cab' (HAT, not SwinIR)")
    embed, in_chans = shape(sd, "conv_first.weight")[:2]
    depths = group_blocks(sd, "residual_group.blocks")
    if 0 in depths:
        raise LayoutMismatch("a residual group without 'residual_group.blocks.0'")
    heads, ws = swin_heads_and_window(sd, len(depths))
    hidden = shape(sd, "layers.0.residual_group.blocks.0.mlp.fc1.weight")[0]
    kw: dict[str, Any] = dict(in_chans=in_chans, embed_dim=embed, depths=depths, num_heads=heads, window_size=ws,
                              mlp_ratio=width_ratio([(embed, hidden)], "mlp.fc1"),
                              qkv_bias="layers.0.residual_group.blocks.0.attn.qkv.bias" in sd,
                              patch_norm="patch_embed.norm.weight" in sd, ape="absolute_pos_embed" in sd)
    kw["img_size"] = swin_img_size(sd, depths, ws)
    if "layers.0.conv.weight" in sd:
        kw["resi_connection"] = "1conv"
    elif "layers.0.conv.0.weight" in sd:
        kw["resi_connection"] = "3conv"
    else:
        raise LayoutMismatch("no 'layers.0.conv.weight' (1conv) or 'layers.0.conv.0.weight' (3conv)")
    if "conv_up1.weight" in sd:
        kw.update(upsampler="nearest+conv", upscale=4 if "conv_up2.weight" in sd else 2)
    elif "conv_before_upsample.0.weight" in sd:
        kw.update(upsampler="pixelshuffle", upscale=upscale_pixelshuffle(sd, shape(sd, "conv_before_upsample.0.weight")[0]))
    elif "upsample.0.weight" in sd:
        out = shape(sd, "upsample.0.weight")[0]
        kw.update(upsampler="pixelshuffledirect", upscale=square_side(out // in_chans, "upsample.0.weight / in_chans"))
    else:
        kw.update(upsampler="", upscale=1)
    return "SwinIR", kw
