"""Which RRDBNet network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any

from restoration.archs.layout import StateDict, count, shape


#: Input channels of ``conv_first`` / image channels -> RRDBNet scale (pixel-unshuffle by 1, 2, 4).
_RRDB_SCALE_OF_RATIO = {1: 4, 4: 2, 16: 1}


def detect_rrdbnet(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """RRDBNet kwargs (BasicSR layout: ESRGAN, Real-ESRGAN x4plus / x2plus / anime_6B).

    ``conv_first`` takes ``num_in_ch * f^2`` channels after a pixel-unshuffle by ``f`` (scale 4: f = 1,
    2: 2, 1: 4); the image channels are taken equal to ``num_out_ch`` (``conv_last``), as in every release.
    """
    num_grow_ch, num_feat = shape(sd, "body.0.rdb1.conv1.weight")[:2]
    for key in ("conv_body.weight", "conv_up1.weight", "conv_up2.weight", "conv_hr.weight"):
        shape(sd, key)
    first_in = shape(sd, "conv_first.weight")[1]
    num_out_ch = shape(sd, "conv_last.weight")[0]
    ratio, rest = divmod(first_in, num_out_ch)
    scale = _RRDB_SCALE_OF_RATIO.get(ratio, 4) if rest == 0 else 4
    return "RRDBNet", dict(num_in_ch=first_in // {4: 1, 2: 4, 1: 16}[scale], num_out_ch=num_out_ch, scale=scale,
                           num_feat=num_feat, num_block=count(sd, "body."), num_grow_ch=num_grow_ch)
