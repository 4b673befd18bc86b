"""Transformer feed-forward network (Linear - GELU - Linear), official key names ``fc1``/``fc2``."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Mlp"]


class Mlp(nn.Module):
    """Two-layer MLP applied to the last dimension.

    Args:
        in_features: Input channels C.
        hidden_features: Hidden channels (default C).
        out_features: Output channels (default C).
        act_layer: Activation class.
        drop: Dropout after each linear layer.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., out_features)."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
