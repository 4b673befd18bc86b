"""Restormer (Zamir et al., CVPR 2022): transposed (channel) attention and gated-Dconv FFN in a U-Net, for
deraining, motion and defocus deblurring and denoising (BiasFree or WithBias LayerNorm)."""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

_REST = dict(inp_channels=3, out_channels=3, dim=48, num_blocks=[4, 6, 6, 8], num_refinement_blocks=4,
             heads=[1, 2, 4, 8], ffn_expansion_factor=2.66, bias=False, dual_pixel_task=False)

FAMILY = Family(
    name="Restormer",
    archs={"Restormer": "restoration.archs.restormer.restormer_arch:Restormer"},
    detect="restoration.archs.restormer.detect:detect_restormer",
    configs=(  # swz30/Restormer {Deraining,Motion_Deblurring,Defocus_Deblurring,Denoising}/Options
        Config("Restormer", "Restormer deraining / motion_deblurring / single_image_defocus_deblurring",
               dict(_REST, LayerNorm_type="WithBias"), free=()),
        Config("Restormer", "Restormer dual_pixel_defocus_deblurring",
               dict(_REST, LayerNorm_type="WithBias", inp_channels=6, dual_pixel_task=True), free=()),
        Config("Restormer", "Restormer gaussian_color_denoising (blind, sigma15/25/50) / real_denoising",
               dict(_REST, LayerNorm_type="BiasFree"), free=()),
        Config("Restormer", "Restormer gaussian_gray_denoising (blind, sigma15/25/50)",
               dict(_REST, LayerNorm_type="BiasFree", inp_channels=1, out_channels=1), free=()),
    ),
    zoo="zoo.yaml",
    tiny={"Restormer": TinyConfig(dict(dim=4, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 2, 2],
                                       ffn_expansion_factor=1.5), (3, 16, 8))},
)
