"""DSwinIR: multi-scale deformable sliding-window attention (MS-DSwin) and MSG-FFN in a Restormer-style U-Net.

``DSwinIR`` is the paper's network; ``MSDeformableNAIR`` the official code's class (same layout, the official
argument names). No weights were released: the configurations are the paper's and the official code's.
"""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

FAMILY = Family(
    name="DSwinIR",
    archs={"DSwinIR": "restoration.archs.dswinir.dswinir_arch:DSwinIR",
           "MSDeformableNAIR": "restoration.archs.dswinir.msdeformable_nair_arch:MSDeformableNAIR"},
    detect="restoration.archs.dswinir.detect:detect_dswinir",
    configs=(
        # the official class runs with heads divisible by 3 (dim 48)
        Config("MSDeformableNAIR", "DSwinIR official (MSDeformableNAIR, dim 48)", dict(
            inp_channels=3, out_channels=3, dim=48, num_blocks=[4, 6, 6, 8], kernel_size=[3, 3, 3, 3],
            dilation=[1, 1, 1, 1], num_refinement_blocks=4, heads=[3, 6, 12, 24], ffn_expansion_factor=2.0,
            bias=False, LayerNorm_type="WithBias", rel_pos_bias=True, dual_pixel_task=False, global_residual=True),
            free=()),
        Config("DSwinIR", "DSwinIR (paper: MS-DSwin + MSG-FFN)", dict(
            in_channels=3, out_channels=3, dim=48, num_blocks=[4, 6, 6, 8], num_refinement_blocks=4,
            heads=[3, 6, 12, 24], kernel_size=[3, 3, 3, 3], dilation=[1, 1, 1, 1], ffn_expansion_factor=2.0,
            bias=False, layer_norm_type="WithBias", rel_pos_bias=True, attn_type="msdswin", ffn_type="msg",
            msg_kernel_sizes=[3, 5], dual_pixel_task=False), free=()),
    ),
    adapt="restoration.archs.dswinir.detect:adapt",
    tiny={
        "DSwinIR": TinyConfig(dict(dim=6, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[3, 3, 3, 3],
                                   kernel_size=[3, 3, 1, 1], ffn_expansion_factor=1), (3, 24, 24)),
        "MSDeformableNAIR": TinyConfig(dict(dim=6, num_blocks=[1, 1, 1, 1], num_refinement_blocks=0, heads=[3, 3, 3, 3],
                                            kernel_size=[3, 3, 1, 1], ffn_expansion_factor=1), (3, 24, 24)),
    },
)
