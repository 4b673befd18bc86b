"""Sweep over EVERY registered architecture: forward shape, finite gradients, every parameter trained.

A newly registered architecture must add a tiny config to ``TINY_CONFIGS`` (a few thousand
parameters, a forward of a few milliseconds); without one the sweep fails and says so.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from restoration import build_network
from restoration.archs import register_archs
from restoration.registry import ARCH_REGISTRY

register_archs()

# name -> (network_g kwargs, input shape (B, C, H, W), output scale). Keep it tiny.
TINY_CONFIGS: dict[str, tuple[dict[str, Any], tuple[int, int, int, int], int]] = {
    "Bicubic": (dict(upscale=2), (1, 3, 8, 8), 2),
    "HAT": (dict(img_size=8, embed_dim=8, depths=[2], num_heads=[2], window_size=4, compress_ratio=2, squeeze_factor=4,
                 mlp_ratio=2, upscale=2, drop_path_rate=0.0), (1, 3, 8, 12), 2),
    "Identity": (dict(upscale=2), (1, 3, 5, 6), 2),
    "SimpleSRNet": (dict(num_feat=8, num_block=1, upscale=2), (1, 3, 8, 8), 2),
    "SwinIR": (dict(img_size=8, embed_dim=8, depths=[2], num_heads=[2], window_size=4, mlp_ratio=2, upscale=2,
                    upsampler="pixelshuffledirect", drop_path_rate=0.0), (2, 3, 7, 9), 2),
    "DSwinIR": (dict(dim=6, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[3, 3, 3, 3],
                     kernel_size=[3, 3, 1, 1], ffn_expansion_factor=1), (1, 3, 24, 24), 1),
    "MSDeformableNAIR": (dict(dim=6, num_blocks=[1, 1, 1, 1], num_refinement_blocks=0, heads=[3, 3, 3, 3],
                              kernel_size=[3, 3, 1, 1], ffn_expansion_factor=1), (1, 3, 24, 24), 1),
    "TBSN": (dict(dim=4, num_blocks=[1, 1, 1], num_refinement_blocks=0, channel_heads=[1, 1, 1],
                  spatial_heads=[1, 1, 1], spatial_dim_head=2), (1, 3, 32, 32), 1),
}


@pytest.mark.parametrize("name", ARCH_REGISTRY.names())
def test_registered_arch_forward_backward(name: str) -> None:
    if name not in TINY_CONFIGS:
        pytest.fail(f"add a tiny config for registered arch '{name}' to TINY_CONFIGS in tests/test_arch_registry.py")
    cfg, shape, scale = TINY_CONFIGS[name]
    torch.manual_seed(0)
    net = build_network({"type": name, **cfg}).train()
    multiple = getattr(net, "size_multiple", 1)
    assert shape[2] % multiple == 0 and shape[3] % multiple == 0, "tiny input must respect size_multiple"
    x = torch.rand(shape, requires_grad=True)
    y = net(x)
    assert y.shape == (shape[0], y.shape[1], shape[2] * scale, shape[3] * scale)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in net.named_parameters():
        if not p.requires_grad:
            continue
        assert p.grad is not None, f"{name}: parameter {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
