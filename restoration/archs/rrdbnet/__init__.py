"""RRDBNet (Wang et al., ESRGAN, ECCVW 2018): the generator of ESRGAN and Real-ESRGAN (x4plus, x2plus, anime_6B).

Every constructor argument shows in the weights; the x2 and x1 variants pixel-unshuffle the input first.
"""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

_RRDB = dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32)

FAMILY = Family(
    name="RRDBNet",
    archs={"RRDBNet": "restoration.archs.rrdbnet.rrdbnet_arch:RRDBNet"},
    detect="restoration.archs.rrdbnet.detect:detect_rrdbnet",
    configs=(
        Config("RRDBNet", "RealESRGAN_x4plus / RealESRNet_x4plus / ESRGAN_SRx4_DF2KOST_official", _RRDB, free=()),
        Config("RRDBNet", "RealESRGAN_x2plus", dict(_RRDB, scale=2), free=()),
        Config("RRDBNet", "RealESRGAN_x4plus_anime_6B", dict(_RRDB, num_block=6), free=()),
    ),
    zoo="zoo.yaml",
    tiny={"RRDBNet": TinyConfig(dict(num_in_ch=3, num_out_ch=3, scale=2, num_feat=4, num_block=1, num_grow_ch=2),
                                (3, 6, 8))},
)
