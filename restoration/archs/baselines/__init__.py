"""Baselines without learned detail: ``Bicubic`` (MATLAB-exact bicubic up-sampling), ``Identity`` (nearest
up-sampling) and ``SimpleSRNet`` (a small residual CNN for smoke tests and the quickstart). Nothing to detect."""

from __future__ import annotations

from restoration.archs.family import Family, TinyConfig

FAMILY = Family(
    name="baselines",
    archs={"SimpleSRNet": "restoration.archs.baselines.simple_sr_arch:SimpleSRNet",
           "Bicubic": "restoration.archs.baselines.bicubic_arch:Bicubic",
           "Identity": "restoration.archs.baselines.identity_arch:Identity"},
    tiny={"Bicubic": TinyConfig(dict(upscale=2), (3, 8, 8)),
          "Identity": TinyConfig(dict(upscale=2), (3, 5, 6)),
          "SimpleSRNet": TinyConfig(dict(num_feat=8, num_block=1, upscale=2), (3, 8, 8))},
)
