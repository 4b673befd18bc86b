"""SwinIR (Liang et al., ICCVW 2021): Swin Transformer blocks in residual groups, for SR, denoising and JPEG."""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

_BASE = dict(in_chans=3, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=8, mlp_ratio=2.0, qkv_bias=True,
             patch_norm=True, ape=False, img_range=1.0, resi_connection="1conv")


def _config(name: str, **kw: object) -> Config:
    return Config("SwinIR", name, {**_BASE, **kw})


def _configs() -> tuple[Config, ...]:
    out = []
    for s in (2, 3, 4, 8):  # 001_classicalSR_{DIV2K_s48w8,DF2K_s64w8}_SwinIR-M_x{s}
        out.append(_config(f"SwinIR-M classical SR x{s}", img_size=64, upscale=s, upsampler="pixelshuffle"))
    for s in (2, 3, 4):  # 002_lightweightSR_DIV2K_s64w8_SwinIR-S_x{s}
        out.append(_config(f"SwinIR-S lightweight SR x{s}", img_size=64, embed_dim=60, depths=[6] * 4,
                           num_heads=[6] * 4, upscale=s, upsampler="pixelshuffledirect"))
    out.append(_config("SwinIR-M real-world SR x4", img_size=64, upscale=4, upsampler="nearest+conv"))
    out.append(_config("SwinIR-L real-world SR x4", img_size=64, embed_dim=240, depths=[6] * 9, num_heads=[8] * 9,
                       upscale=4, upsampler="nearest+conv", resi_connection="3conv"))
    for c, what in ((1, "gray"), (3, "color")):
        out.append(_config(f"SwinIR {what} denoising", in_chans=c, img_size=128, upscale=1, upsampler=""))
        out.append(_config(f"SwinIR {what} JPEG deblocking", in_chans=c, img_size=126, window_size=7,
                           img_range=255.0, upscale=1, upsampler=""))
    return tuple(out)


FAMILY = Family(
    name="SwinIR",
    archs={"SwinIR": "restoration.archs.swinir.swinir_arch:SwinIR"},
    detect="restoration.archs.swinir.detect:detect_swinir",
    configs=_configs(),
    zoo="zoo.yaml",
    tiny={"SwinIR": TinyConfig(dict(img_size=8, embed_dim=8, depths=[2], num_heads=[2], window_size=4, mlp_ratio=2,
                                    upscale=2, upsampler="pixelshuffledirect", drop_path_rate=0.0), (3, 7, 9))},
)
