"""EDSR (Lim et al., CVPRW 2017), BasicSR's form: mean shift, residual blocks without batch norm (``res_scale``),
EDSR-M and EDSR-L. ``res_scale``, ``img_range`` and ``rgb_mean`` leave no trace in the weights."""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

#: BasicSR's mean shift, shared with RCAN (:mod:`restoration.archs.rcan`).
MEAN_SHIFT = dict(num_in_ch=3, num_out_ch=3, img_range=255.0, rgb_mean=[0.4488, 0.4371, 0.404])


def _configs() -> tuple[Config, ...]:
    out = []
    for s in (2, 3, 4):
        out.append(Config("EDSR", f"EDSR_Mx{s}_f64b16_DIV2K_official (EDSR-M x{s})",
                          dict(MEAN_SHIFT, num_feat=64, num_block=16, upscale=s, res_scale=1), free=()))
        out.append(Config("EDSR", f"EDSR_Lx{s}_f256b32_DIV2K_official (EDSR-L x{s})",
                          dict(MEAN_SHIFT, num_feat=256, num_block=32, upscale=s, res_scale=0.1), free=()))
    return tuple(out)


FAMILY = Family(
    name="EDSR",
    archs={"EDSR": "restoration.archs.edsr.edsr_arch:EDSR"},
    detect="restoration.archs.edsr.detect:detect_edsr",
    configs=_configs(),
    zoo="zoo.yaml",
    tiny={"EDSR": TinyConfig(dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, upscale=3), (3, 5, 6))},
)
