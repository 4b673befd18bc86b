"""SPAN (Wan et al., NTIRE 2024 efficient SR): swift parameter-free attention; ``bias``, ``img_range`` and
``rgb_mean`` at the defaults (hongyuanyu/SPAN: spanx4_ch48.pth, spanx2_ch48.pth)."""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

_SPAN = dict(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4)

FAMILY = Family(
    name="SPAN",
    archs={"SPAN": "restoration.archs.span.span_arch:SPAN"},
    detect="restoration.archs.span.detect:detect_span",
    configs=(Config("SPAN", "SPAN x4 ch48 (spanx4_ch48.pth)", _SPAN, free=()),
             Config("SPAN", "SPAN x2 ch48 (spanx2_ch48.pth)", dict(_SPAN, upscale=2), free=())),
    zoo="zoo.yaml",
    tiny={"SPAN": TinyConfig(dict(feature_channels=4, upscale=2), (3, 5, 6))},
)
