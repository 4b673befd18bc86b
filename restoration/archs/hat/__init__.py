"""HAT (Chen et al., CVPR 2023): SwinIR's groups with channel attention and overlapping cross-attention."""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

_BASE = dict(img_size=64, in_chans=3, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=16,
             compress_ratio=3, squeeze_factor=30, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, qkv_bias=True,
             patch_norm=True, ape=False, img_range=1.0, upsampler="pixelshuffle", resi_connection="1conv")


def _configs() -> tuple[Config, ...]:
    out = []
    for s in (2, 3, 4):
        out.append(Config("HAT", f"HAT-S SR x{s}", dict(_BASE, embed_dim=144, compress_ratio=24, squeeze_factor=24,
                                                         upscale=s)))
        out.append(Config("HAT", f"HAT SR x{s}" + (" / Real-HAT GAN x4" if s == 4 else ""), dict(_BASE, upscale=s)))
        out.append(Config("HAT", f"HAT-L SR x{s}", dict(_BASE, depths=[6] * 12, num_heads=[6] * 12, upscale=s)))
    return tuple(out)


FAMILY = Family(
    name="HAT",
    archs={"HAT": "restoration.archs.hat.hat_arch:HAT"},
    detect="restoration.archs.hat.detect:detect_hat",
    configs=_configs(),
    zoo="zoo.yaml",
    tiny={"HAT": TinyConfig(dict(img_size=8, embed_dim=8, depths=[2], num_heads=[2], window_size=4, compress_ratio=2,
                                 squeeze_factor=4, mlp_ratio=2, upscale=2, drop_path_rate=0.0), (3, 8, 12))},
)
