"""NAFNet (Chen et al., ECCV 2022): a nonlinear-activation-free U-Net (SIDD denoising, GoPro deblurring).

``NAFNetLocal`` is the same network with test-time local statistics (TLC), how the GoPro files are tested.
"""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

_SIDD = dict(img_channel=3, middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8], dec_blk_nums=[2, 2, 2, 2])
_GOPRO = dict(img_channel=3, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1])


def _configs() -> tuple[Config, ...]:
    out = []
    for width in (32, 64):  # megvii-research/NAFNet options/test/{SIDD,GoPro}
        out.append(Config("NAFNet", f"NAFNet-SIDD-width{width}", dict(_SIDD, width=width), free=()))
        out.append(Config("NAFNetLocal", f"NAFNet-GoPro-width{width} (tested with TLC)", dict(_GOPRO, width=width),
                          free=()))
    return tuple(out)


_TINY = dict(width=4, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])

FAMILY = Family(
    name="NAFNet",
    archs={"NAFNet": "restoration.archs.nafnet.nafnet_arch:NAFNet",
           "NAFNetLocal": "restoration.archs.nafnet.nafnet_arch:NAFNetLocal"},
    detect="restoration.archs.nafnet.detect:detect_nafnet",
    configs=_configs(),
    zoo="zoo.yaml",
    tiny={"NAFNet": TinyConfig(_TINY, (3, 7, 10)),
          "NAFNetLocal": TinyConfig(dict(_TINY, train_size=[1, 3, 8, 8]), (3, 20, 14))},
    test_time_forms={"NAFNetLocal": "NAFNet"},
)
