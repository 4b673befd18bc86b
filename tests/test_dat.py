"""DAT deformable attention layer against the original ``DAttentionBaseline`` (LeapLabTHU/DAT)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from restoration.layers.deformable_attention import DeformableAttention2d

FIXTURE = Path(__file__).parent / "data" / "dswinir" / "dat_tiny.pt"


def _ours(cfg: dict, pe_type: str) -> DeformableAttention2d:
    return DeformableAttention2d(
        dim=cfg["n_heads"] * cfg["n_head_channels"], num_heads=cfg["n_heads"], n_groups=cfg["n_groups"],
        stride=cfg["stride"], offset_kernel_size=cfg["ksize"], offset_range_factor=cfg["offset_range_factor"],
        pe_type=pe_type, q_size=cfg["q_size"])


@pytest.mark.parametrize("pe_type", ["table", "dwc"])
def test_matches_original_dat(pe_type):
    # fixture: the original class on random weights, run in float64 (see its 'source' entry)
    fix = torch.load(FIXTURE, map_location="cpu")
    case = fix[pe_type]
    net = _ours(case["config"], pe_type).eval()
    # the original wraps nn.LayerNorm in a proxy module (``conv_offset.1.norm.*``)
    sd = {k.replace("conv_offset.1.norm.", "conv_offset.1."): v for k, v in case["state_dict"].items()}
    net.load_state_dict(sd, strict=True)
    with torch.no_grad():
        out32 = net(fix["input"])
        out64 = net.double()(fix["input"].double())
    assert (out32.double() - case["output"]).abs().max() < 1e-5
    assert (out64 - case["output"]).abs().max() < 1e-10


def test_backward_shapes_and_errors():
    torch.manual_seed(0)
    net = DeformableAttention2d(8, 2, n_groups=2, stride=2, pe_type="table", q_size=(4, 4))
    x = torch.randn(1, 8, 9, 7, requires_grad=True)  # table works at any size (continuous)
    y = net(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert net.conv_offset[-1].weight.grad.abs().sum() > 0 and net.rpe_table.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 2x2"):
        DeformableAttention2d(8, 2, stride=4)(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="unknown pe_type"):
        DeformableAttention2d(8, 2, pe_type="rope")
