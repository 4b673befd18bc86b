"""RCAN (Zhang et al., ECCV 2018), BasicSR's form: residual groups of residual channel-attention blocks on EDSR's
mean-shift frame. BasicSR publishes no RCAN file, so the family has configurations and no zoo."""

from __future__ import annotations

from restoration.archs.edsr import MEAN_SHIFT
from restoration.archs.family import Config, Family, TinyConfig

FAMILY = Family(
    name="RCAN",
    archs={"RCAN": "restoration.archs.rcan.rcan_arch:RCAN"},
    detect="restoration.archs.rcan.detect:detect_rcan",
    configs=tuple(Config("RCAN", f"RCAN x{s}" + (" / RCAN_BIX4-official" if s == 4 else ""), dict(
        MEAN_SHIFT, num_feat=64, num_group=10, num_block=20, squeeze_factor=16, upscale=s, res_scale=1), free=())
        for s in (2, 3, 4)),
    tiny={"RCAN": TinyConfig(dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_group=1, num_block=1, squeeze_factor=2,
                                  upscale=2), (3, 5, 6))},
)
