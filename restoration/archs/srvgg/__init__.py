"""SRVGGNetCompact (Real-ESRGAN's compact model: realesr-general-x4v3, realesr-animevideov3): a plain VGG-style body
with PReLU and a pixel-shuffle tail; every constructor argument shows in the weights."""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

_VGG = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type="prelu")

FAMILY = Family(
    name="SRVGGNetCompact",
    archs={"SRVGGNetCompact": "restoration.archs.srvgg.srvgg_arch:SRVGGNetCompact"},
    detect="restoration.archs.srvgg.detect:detect_srvgg",
    configs=(
        Config("SRVGGNetCompact", "realesr-general-x4v3 / realesr-general-wdn-x4v3", _VGG, free=()),
        Config("SRVGGNetCompact", "realesr-animevideov3", dict(_VGG, num_conv=16), free=()),
    ),
    zoo="zoo.yaml",
    tiny={"SRVGGNetCompact": TinyConfig(dict(num_feat=4, num_conv=1, upscale=2), (3, 5, 6))},
)
