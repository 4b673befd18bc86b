"""TBSN loads official state dicts strictly and reproduces the official outputs."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
import torch

from restoration import build_network
from restoration.archs.tbsn.tbsn_arch import TBSN, ParityShuffle, ParityUnshuffle
from restoration.archs.spec import ArchSpec
from restoration.schema import bind_arguments
from restoration.utils.weights import WeightsError, load_weights


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: see tests/conftest.py


DATA = Path(__file__).parent / "data"
FIXTURES = ["tbsn_tiny_ws8", "tbsn_tiny_ws4_bias"]


def _fixture(name: str) -> dict:
    with gzip.open(DATA / f"{name}.pt.gz", "rb") as f:
        return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)


@pytest.mark.parametrize("impl", ["reference", "sdpa", "parity"])
@pytest.mark.parametrize("name", FIXTURES)
def test_matches_official_outputs(name: str, impl: str, tmp_path: Path) -> None:
    fx = _fixture(name)
    net = build_network({"type": "TBSN", **fx["config"], "attn_impl": impl})
    # Through the framework loader (plain state dict file, strict).
    path = tmp_path / "official.pth"
    torch.save(fx["state_dict"], path)
    load_weights(net, str(path), strict=True)
    net = net.double().eval()
    with torch.no_grad():
        out = net(fx["input"].double())
    assert out.shape == fx["output"].shape
    err = (out - fx["output"]).abs().max().item()
    assert err <= 1e-5, f"{name}/{impl}: max abs error {err:.3g} (outputs are ~1e2)"
    # float32 stays close too (values in [0, 255]).
    net = net.float()
    with torch.no_grad():
        out32 = net(fx["input"])
    assert (out32.double() - fx["output"]).abs().max().item() < 1e-2


def test_default_parameter_count_and_layout() -> None:
    net = TBSN()
    total = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert (total, trainable) == (12_967_964, 12_746_780)
    assert net.spec == ArchSpec(scale=1, in_channels=3, out_channels=3, size_multiple=32, min_size=32, value_range=255.0)
    sd = net.state_dict()
    masks = [k for k in sd if k.endswith("fixed_pos_emb.attention_mask")]
    assert len(masks) == 24 and all(sd[k].shape == (1, 64, 144) for k in masks)
    assert sd["patch_embed.proj.mask"].shape == (48, 3, 3, 3)
    assert sd["patch_embed.proj.mask"][:, :, 1, 1].abs().sum() == 0
    # 36 of 144 keys allowed per query, the query's own position among them.
    mask = sd[masks[0]][0]
    assert torch.equal(torch.isfinite(mask).sum(-1), torch.full((64,), 36))
    q = 3 * 8 + 5  # query (3, 5) sits at key (3 + 2, 5 + 2) of the 12x12 window
    assert mask[q, (3 + 2) * 12 + (5 + 2)] == 0 and mask[q, (3 + 2) * 12 + (5 + 3)] == float("-inf")


def test_wrong_mask_in_checkpoint_is_refused(tmp_path: Path) -> None:
    fx = _fixture("tbsn_tiny_ws8")
    sd = dict(fx["state_dict"])
    key = next(k for k in sd if k.endswith("attention_mask"))
    sd[key] = torch.zeros_like(sd[key])  # a mask that lets every key through
    torch.save(sd, tmp_path / "bad.pth")
    net = TBSN(**fx["config"])
    with pytest.raises(WeightsError, match="attention_mask"):
        load_weights(net, str(tmp_path / "bad.pth"))
    del sd[key]
    torch.save(sd, tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="missing in checkpoint"):
        load_weights(net, str(tmp_path / "missing.pth"))


def test_parity_shuffle_layout_and_inverse() -> None:
    x = torch.arange(2 * 8 * 12, dtype=torch.float32).reshape(1, 2, 8, 12)
    y = ParityUnshuffle()(x)
    assert y.shape == (1, 8, 4, 6)
    # out[c*4 + e*2 + f, 2k + a, 2l + b] = in[c, 4k + 2e + a, 4l + 2f + b]
    for c, e, f, k, a, l, b in [(0, 0, 0, 0, 0, 0, 0), (1, 1, 0, 1, 1, 2, 0), (1, 0, 1, 0, 1, 1, 1)]:
        assert y[0, c * 4 + e * 2 + f, 2 * k + a, 2 * l + b] == x[0, c, 4 * k + 2 * e + a, 4 * l + 2 * f + b]
    assert torch.equal(ParityShuffle()(y), x)


def test_size_and_option_errors() -> None:
    net = TBSN(dim=4, num_blocks=[1, 1, 1], num_refinement_blocks=0, channel_heads=[1, 1, 1],
               spatial_heads=[1, 1, 1], spatial_dim_head=2)
    with pytest.raises(ValueError, match="multiple of 32"):
        net(torch.zeros(1, 3, 32, 40))
    problems = TBSN.check_options(bind_arguments(TBSN, {"overlap_ratio": [0.25, 0.5, 0.375], "attn_backend": "flash"}))
    text = "\n".join(problems)
    assert "no longer blind-spot" in text and "ow - ws must be even" in text and "attn_backend 'flash' is not available" in text
    with pytest.raises(ValueError, match="ow - ws must be even"):
        TBSN(overlap_ratio=[0.5, 0.5, 0.375])
    # The bilinear input upsampling comes first: at scale 2 a 16x16 input is a 32x32 body input.
    assert TBSN.spec_from_options(bind_arguments(TBSN, {"scale": 2})).size_multiple == 16
    up = TBSN(dim=4, num_blocks=[1, 1, 1], num_refinement_blocks=0, channel_heads=[1, 1, 1], spatial_heads=[1, 1, 1],
              spatial_dim_head=2, scale=2)
    assert (up.spec.scale, up.spec.size_multiple) == (2, 16)
    assert up(torch.zeros(1, 3, 16, 16)).shape == (1, 3, 32, 32)
