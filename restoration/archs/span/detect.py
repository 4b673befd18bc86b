"""Which SPAN network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any

from restoration.archs.layout import LayoutMismatch, StateDict, shape, square_side


def detect_span(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """SPAN kwargs: Conv3XC ``conv_1`` / ``block_{1..6}.c{1,2,3}_r`` / ``conv_2``, 1x1 ``conv_cat``, ``upsampler.0``.

    ``upsampler.0`` has ``num_out_ch * upscale^2`` outputs; the output channels are taken equal to the input's
    (3, as in both releases). ``bias``, ``img_range`` and ``rgb_mean`` leave no trace.
    """
    feature_channels, num_in_ch = shape(sd, "conv_1.sk.weight")[:2]
    for key in ("conv_1.eval_conv.weight", "block_6.c3_r.conv.2.weight", "conv_2.sk.weight", "conv_cat.weight"):
        shape(sd, key)
    out = shape(sd, "upsampler.0.weight")[0]
    if out % num_in_ch:
        raise LayoutMismatch(f"upsampler.0's {out} channels are not a multiple of {num_in_ch} input channels")
    upscale = square_side(out // num_in_ch, "upsampler.0 channels / input channels")
    return "SPAN", dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, feature_channels=feature_channels, upscale=upscale)
