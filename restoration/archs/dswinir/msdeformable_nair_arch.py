"""``MSDeformableNAIR``: the official DSwinIR release class (Aitical/DSwinIR), constructor names,
state-dict layout and forward reproduced so official checkpoints load strictly.

Differences from :class:`~restoration.archs.dswinir.dswinir_arch.DSwinIR` are only the ones of the release:
CamelCase/official argument names, Restormer's GDFN instead of MSG-FFN, and the input added *twice*
(``output(x) + inp`` and again ``+ inp`` when ``global_residual``) -- a quirk kept for fidelity.
The release cannot run its own defaults (``heads=[2, 4, 8, 8]`` is not divisible by 3); they are
kept here so the signature matches, and :meth:`check_options` explains the problem.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from restoration.archs.dswinir.dswinir_arch import DSwinIR, attention_backend, check_unet_options
from restoration.archs.spec import ArchSpec

__all__ = ["MSDeformableNAIR"]

_OFFICIAL_NAMES = {"dim": "dim", "heads": "heads"}


class MSDeformableNAIR(DSwinIR):
    """Official DSwinIR network (``basicsr/archs/MSDeformableNAIR.py``).

    Args:
        inp_channels: Input channels.
        out_channels: Output channels.
        dim: Level-1 width.
        num_blocks: Blocks per level.
        kernel_size: Neighbourhood size per level.
        dilation: Dilation per level.
        num_refinement_blocks: Refinement blocks.
        heads: Heads per level; must be divisible by 3 (e.g. ``[3, 6, 12, 24]`` with ``dim=48``:
            22,388,332 parameters).
        ffn_expansion_factor: GDFN width factor.
        bias: Conv bias (FFN, patch embed, reductions, output).
        LayerNorm_type: ``'WithBias'`` or ``'BiasFree'``.
        rel_pos_bias: Relative-position bias (the release only runs with ``True``).
        dual_pixel_task: Dual-pixel skip connection.
        global_residual: Add the input a second time.
        attn_backend: Neighbourhood-attention backend (not an official argument; see :class:`DSwinIR`).
        na_backend: The first name of ``attn_backend``, still accepted.

    Shapes:
        ``(B, inp_channels, H, W) -> (B, out_channels, H, W)``, ``H, W`` multiples of 8 and >= 48 for
        ``kernel_size=3``.
    """

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 32,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        kernel_size: Sequence[int] = (3, 3, 3, 3),
        dilation: Sequence[int] = (1, 1, 1, 1),
        num_refinement_blocks: int = 4,
        heads: Sequence[int] = (2, 4, 8, 8),
        ffn_expansion_factor: float = 2,
        bias: bool = False,
        LayerNorm_type: str = "WithBias",  # noqa: N803 -- official name
        rel_pos_bias: bool = True,
        dual_pixel_task: bool = False,
        global_residual: bool = True,
        attn_backend: str | None = None,
        na_backend: str | None = None,
    ) -> None:
        super().__init__(
            in_channels=inp_channels, out_channels=out_channels, dim=dim, num_blocks=num_blocks,
            num_refinement_blocks=num_refinement_blocks, heads=heads, kernel_size=kernel_size,
            dilation=dilation, ffn_expansion_factor=ffn_expansion_factor, bias=bias,
            layer_norm_type=LayerNorm_type, rel_pos_bias=rel_pos_bias, attn_type="msdswin",
            ffn_type="gdfn", offset_range_factor=1.0, centered_grid=False,
            dual_pixel_task=dual_pixel_task, attn_backend=attn_backend, na_backend=na_backend,
        )
        self.global_residual = global_residual

    @classmethod
    def check_options(cls, opt: dict[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt`` (official argument names)."""
        return check_unet_options(opt["dim"], opt["heads"], opt["num_blocks"], opt["kernel_size"], opt["dilation"],
                                  "msdswin", "gdfn", names=_OFFICIAL_NAMES,
                                  na_backend=attention_backend(opt))

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """DSwinIR's contract under the official argument names (MS-DSwin attention only)."""
        return DSwinIR.spec_from_options(dict(in_channels=opt["inp_channels"], out_channels=opt["out_channels"],
                                              kernel_size=opt["kernel_size"], dilation=opt["dilation"],
                                              attn_type="msdswin", dat_strides=(1, 1, 1, 1)))

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        out = self.forward_features(inp_img)
        if not self.dual_pixel_task:
            out = out + inp_img
        if self.global_residual:
            out = out + inp_img
        return out
