"""Which Restormer network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any

from restoration.archs.layout import LayoutMismatch, StateDict, count, shape, width_ratio


def detect_restormer(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """Restormer kwargs: blocks per level from ``encoder_level{1,2,3}`` / ``latent``, heads from each level's
    ``attn.temperature`` ``(heads, 1, 1)``, the FFN ratio from ``ffn.project_in`` widths, ``LayerNorm_type`` from
    a ``norm1.body.bias``, ``bias`` from ``output.bias``, ``dual_pixel_task`` from ``skip_conv``."""
    dim, inp_channels = shape(sd, "patch_embed.proj.weight")[:2]
    out_channels = shape(sd, "output.weight")[0]
    if any(".attn.offset" in k or ".attn.relative_position" in k for k in sd):
        raise LayoutMismatch("deformable / windowed attention keys (DSwinIR, TBSN)")
    levels = ["encoder_level1", "encoder_level2", "encoder_level3", "latent"]
    num_blocks = [count(sd, f"{name}.") for name in levels]
    if 0 in num_blocks:
        raise LayoutMismatch(f"a level without blocks: {dict(zip(levels, num_blocks))}")
    heads = [shape(sd, f"{name}.0.attn.temperature")[0] for name in levels]
    pairs = [(dim * 2 ** i, shape(sd, f"{name}.0.ffn.project_in.weight")[0] // 2) for i, name in enumerate(levels)]
    return "Restormer", dict(inp_channels=inp_channels, out_channels=out_channels, dim=dim, num_blocks=num_blocks,
                             num_refinement_blocks=count(sd, "refinement."), heads=heads,
                             ffn_expansion_factor=width_ratio(pairs, "Restormer ffn.project_in"),
                             bias="output.bias" in sd,
                             LayerNorm_type="WithBias" if "encoder_level1.0.norm1.body.bias" in sd else "BiasFree",
                             dual_pixel_task="skip_conv.weight" in sd)
