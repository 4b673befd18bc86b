"""The Swin/ViT weight initialisation shared by SwinIR and HAT."""

from __future__ import annotations

from torch import nn

__all__ = ["init_transformer_weights"]


def init_transformer_weights(m: nn.Module) -> None:
    """For ``net.apply``: Linear weights ~ truncated normal (std 0.02), biases 0; LayerNorm weight 1, bias 0."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.LayerNorm):
        nn.init.constant_(m.bias, 0)
        nn.init.constant_(m.weight, 1.0)
