"""DAT (Chen et al., ICCV 2023): dual aggregation transformer, spatial-window and channel self-attention in
alternation (DAT, DAT-S, DAT-2, DAT-light); ``img_size`` only decides the stored shift masks."""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

_DAT = dict(img_size=64, in_chans=3, embed_dim=180, split_size=[8, 32], depth=[6] * 6, num_heads=[6] * 6,
            expansion_factor=4.0, qkv_bias=True, img_range=1.0, resi_connection="1conv", upsampler="pixelshuffle")


def _configs() -> tuple[Config, ...]:
    out = []
    for s in (2, 3, 4):  # zhengchen1999/DAT options/Test
        out.append(Config("DAT", f"DAT_x{s}", dict(_DAT, upscale=s)))
        out.append(Config("DAT", f"DAT_S_x{s}", dict(_DAT, upscale=s, split_size=[8, 16], expansion_factor=2.0)))
        out.append(Config("DAT", f"DAT_2_x{s}", dict(_DAT, upscale=s, expansion_factor=2.0)))
        out.append(Config("DAT", f"DAT_light_x{s}", dict(_DAT, upscale=s, embed_dim=60, depth=[18], num_heads=[6],
                                                          expansion_factor=2.0, resi_connection="3conv",
                                                          upsampler="pixelshuffledirect")))
    return tuple(out)


FAMILY = Family(
    name="DAT",
    archs={"DAT": "restoration.archs.dat.dat_arch:DAT"},
    detect="restoration.archs.dat.detect:detect_dat",
    configs=_configs(),
    zoo="zoo.yaml",
    tiny={"DAT": TinyConfig(dict(img_size=8, embed_dim=32, split_size=[2, 4], depth=[3], num_heads=[2],
                                 expansion_factor=1.0, upscale=2, drop_path_rate=0.0), (3, 7, 9))},
)
