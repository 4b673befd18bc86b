"""Which TBSN network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any

from restoration.archs.layout import LayoutMismatch, StateDict, count, shape, square_side, width_ratio


def detect_tbsn(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """TBSN kwargs: the masked first conv, M-WSA masks ``(1, ws^2, ow^2)`` and factorised position tables."""
    shape(sd, "patch_embed.proj.mask")
    dim, in_ch = shape(sd, "patch_embed.proj.weight")[:2]
    levels = ("encoder_level1", "encoder_level2", "latent")
    blocks = [count(sd, f"{name}.") for name in levels]
    if 0 in blocks:
        raise LayoutMismatch(f"a U-Net level without blocks: {dict(zip(levels, blocks))}")
    _, q, k = shape(sd, f"{levels[0]}.0.spatial_attn.fixed_pos_emb.attention_mask")
    ws = square_side(q, "attention_mask queries")
    channel_heads, spatial_heads, overlap = [], [], []
    dim_head = shape(sd, f"{levels[0]}.0.spatial_attn.rel_pos_emb.rel_height")[1]
    for name in levels:
        channel_heads.append(shape(sd, f"{name}.0.channel_attn.temperature")[0])
        inner = shape(sd, f"{name}.0.spatial_attn.project_out.weight")[1]
        spatial_heads.append(inner // dim_head)
        ow = square_side(shape(sd, f"{name}.0.spatial_attn.fixed_pos_emb.attention_mask")[2], "attention_mask keys")
        overlap.append((ow - ws) / ws)
    hidden = shape(sd, f"{levels[0]}.0.channel_ffn.project_in.weight")[0]
    return "TBSN", dict(
        in_ch=in_ch, out_ch=shape(sd, "output.weight")[0], dim=dim, num_blocks=blocks,
        num_refinement_blocks=count(sd, "refinement."), channel_heads=channel_heads, spatial_heads=spatial_heads,
        overlap_ratio=overlap, window_size=ws, spatial_dim_head=dim_head, bias="output.bias" in sd,
        ffn_expansion_factor=width_ratio([(dim, hidden)], "channel_ffn.project_in"),
        LayerNorm_type="WithBias" if f"{levels[0]}.0.norm1.body.bias" in sd else "BiasFree",
    )
