"""TBSN (Li et al., AAAI 2025): a transformer blind-spot denoiser (masked window self-attention, M-WSA) with its
pixel-shuffle down-sampling and random-replacing refinement test protocol (``tbsn_predictor.py``)."""

from __future__ import annotations

from restoration.archs.family import Config, Family, TinyConfig

FAMILY = Family(
    name="TBSN",
    archs={"TBSN": "restoration.archs.tbsn.tbsn_arch:TBSN"},
    detect="restoration.archs.tbsn.detect:detect_tbsn",
    configs=(Config("TBSN", "TBSN (SIDD, model_sidd.pth)", dict(
        in_ch=3, out_ch=3, dim=48, num_blocks=[4, 4, 4], num_refinement_blocks=4, channel_heads=[1, 2, 4],
        spatial_heads=[2, 2, 3], overlap_ratio=[0.5, 0.5, 0.5], window_size=8, spatial_dim_head=16, bias=False,
        ffn_expansion_factor=1.0, LayerNorm_type="BiasFree", scale=1), free=()),),
    zoo="zoo.yaml",
    tiny={"TBSN": TinyConfig(dict(dim=4, num_blocks=[1, 1, 1], num_refinement_blocks=0, channel_heads=[1, 1, 1],
                                  spatial_heads=[1, 1, 1], spatial_dim_head=2), (3, 32, 32))},
)
