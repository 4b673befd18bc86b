"""Which RCAN network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any

from restoration.archs.layout import StateDict, count, shape
from restoration.archs.edsr.detect import mean_shift_sr


def detect_rcan(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """RCAN kwargs (BasicSR layout): ``body.{g}.residual_group.{b}.rcab``; the channel attention's first 1x1
    conv has ``num_feat // squeeze_factor`` outputs, read back as ``num_feat // that`` (exact for the releases)."""
    kw = mean_shift_sr(sd, "body.0.residual_group.0.rcab.0.weight")
    squeezed = shape(sd, "body.0.residual_group.0.rcab.3.attention.1.weight")[0]
    return "RCAN", dict(kw, num_group=count(sd, "body."), num_block=count(sd, "body.0.residual_group."),
                        squeeze_factor=kw["num_feat"] // squeezed)
