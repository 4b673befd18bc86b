"""Discriminators of the GAN trainers: Real-ESRGAN's ``UNetDiscriminatorSN`` (spectral norm, per-pixel scores) and
ESRGAN's ``VGGStyleDiscriminator`` (one score per image). Nothing to detect."""

from __future__ import annotations

from restoration.archs.family import Family, TinyConfig

FAMILY = Family(
    name="discriminators",
    archs={"UNetDiscriminatorSN": "restoration.archs.discriminators.discriminator_arch:UNetDiscriminatorSN",
           "VGGStyleDiscriminator": "restoration.archs.discriminators.discriminator_arch:VGGStyleDiscriminator"},
    tiny={"UNetDiscriminatorSN": TinyConfig(dict(num_in_ch=3, num_feat=4), (3, 16, 16)),
          "VGGStyleDiscriminator": TinyConfig(dict(num_in_ch=3, num_feat=2, input_size=128), (3, 128, 128))},
)
