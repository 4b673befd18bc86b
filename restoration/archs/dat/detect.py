"""Which DAT network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

import math
from typing import Any

import torch

from restoration.archs.layout import (
    LayoutMismatch,
    StateDict,
    count,
    shape,
    square_side,
    upscale_pixelshuffle,
    width_ratio,
)


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
    embed_dim, in_chans = shape(sd, "conv_first.weight")[:2]
    groups = count(sd, "layers.")
    if groups == 0 or "layers.0.blocks.0.attn.attns.0.rpe_biases" not in sd:
        raise LayoutMismatch("no 'layers.0.blocks.0.attn.attns.0.rpe_biases'")
    depth = [count(sd, f"layers.{i}.blocks.") for i in range(groups)]
    split_size = _dat_split_size(sd["layers.0.blocks.0.attn.attns.0.rpe_biases"],
                                 shape(sd, "layers.0.blocks.0.attn.attns.0.relative_position_index")[0])
    heads = [2 * shape(sd, f"layers.{i}.blocks.0.attn.attns.0.pos.pos3.2.weight")[0] for i in range(groups)]
    masks = [k for k in sd if k.endswith(".attn.attn_mask_0")]
    img_size = 64
    if masks:
        windows = shape(sd, masks[0])[0]
        img_size = square_side(windows * split_size[0] * split_size[1], "shift mask windows x window area")
    hidden = shape(sd, "layers.0.blocks.0.ffn.fc1.weight")[0]
    kw: dict[str, Any] = dict(img_size=img_size, in_chans=in_chans, embed_dim=embed_dim, split_size=split_size,
                              depth=depth, num_heads=heads, expansion_factor=width_ratio([(embed_dim, hidden)], "DAT fc1"),
                              qkv_bias="layers.0.blocks.0.attn.qkv.bias" in sd,
                              resi_connection="1conv" if "conv_after_body.weight" in sd else "3conv")
    if "conv_before_upsample.0.weight" in sd:
        kw.update(upsampler="pixelshuffle", upscale=upscale_pixelshuffle(sd, shape(sd, "conv_last.weight")[1]))
    else:
        kw.update(upsampler="pixelshuffledirect",
                  upscale=square_side(shape(sd, "upsample.0.weight")[0] // in_chans, "upsample.0 channels / in"))
    return "DAT", kw
