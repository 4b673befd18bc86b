"""Which SRVGGNetCompact network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any

from restoration.archs.layout import LayoutMismatch, StateDict, count_even, shape, square_side


def detect_srvgg(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """SRVGGNetCompact kwargs: convolutions at ``body.{2k}``, PReLU slopes (``act_type`` prelu) at ``body.{2k+1}``.

    ReLU and LeakyReLU store nothing, so a layout without slopes is read as ``relu`` (no release uses either).
    """
    num_feat, num_in_ch = shape(sd, "body.0.weight")[:2]
    if len(shape(sd, "body.0.weight")) != 4 or any(not k.startswith("body.") for k in sd):
        raise LayoutMismatch("keys other than 'body.{i}.*' convolutions and PReLU slopes")
    convs = count_even(sd, "body.")
    if convs < 2:
        raise LayoutMismatch("fewer than two 'body.{2k}.weight' convolutions")
    out = shape(sd, f"body.{2 * (convs - 1)}.weight")[0]
    if out % num_in_ch:
        raise LayoutMismatch(f"the last conv's {out} channels are not a multiple of {num_in_ch} input channels")
    upscale = square_side(out // num_in_ch, "last conv channels / input channels")
    return "SRVGGNetCompact", dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, num_feat=num_feat, num_conv=convs - 2,
                                   upscale=upscale, act_type="prelu" if "body.1.weight" in sd else "relu")
