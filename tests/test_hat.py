"""HAT: official parameter counts, strict loading of an official state dict, output equality, options.

``data/hat_official_tiny.pt.xz`` was produced by running the official ``hat/archs/hat_arch.py``
(XPixelGroup/HAT @1638a9a, basicsr imports stubbed) on a tiny config outside this repository: the
official ``state_dict()`` (with ``relative_position_index_SA/OCA``; weights on a 1/256 grid, stored
exactly in float16), an input and the official output (float32).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch

from restoration import build_network, load_weights
from restoration.archs.hat.hat_arch import HAT
from restoration.schema import bind_arguments
from restoration.options.yaml_io import load_yaml
from restoration.utils.weights import WeightsError

_COMMON = dict(in_chans=3, img_size=64, window_size=16, conv_scale=0.01, overlap_ratio=0.5, img_range=1.0,
               mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv")
VARIANTS = {
    "HAT-S": dict(embed_dim=144, depths=[6] * 6, num_heads=[6] * 6, compress_ratio=24, squeeze_factor=24),
    "HAT": dict(embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, compress_ratio=3, squeeze_factor=30),
    "HAT-L": dict(embed_dim=180, depths=[6] * 12, num_heads=[6] * 12, compress_ratio=3, squeeze_factor=30),
}
PARAM_COUNTS = {  # ../shared/reference/ARCHITECTURES.md, counted on the official classes
    ("HAT-S", 2): 9_473_471, ("HAT-S", 3): 9_658_111, ("HAT-S", 4): 9_621_183,
    ("HAT", 2): 20_624_795, ("HAT", 3): 20_809_435, ("HAT", 4): 20_772_507,
    ("HAT-L", 2): 40_698_863, ("HAT-L", 3): 40_883_503, ("HAT-L", 4): 40_846_575,
}


@pytest.mark.parametrize("variant,scale", sorted(PARAM_COUNTS), ids=[f"{v}_x{s}" for v, s in sorted(PARAM_COUNTS)])
def test_parameter_count_matches_official(meta_param_count: Callable, variant: str, scale: int) -> None:
    cfg = {"type": "HAT", **_COMMON, **VARIANTS[variant], "upscale": scale}
    assert meta_param_count(cfg) == PARAM_COUNTS[(variant, scale)]


def test_state_dict_has_official_layout() -> None:
    with torch.device("meta"):
        net = build_network({"type": "HAT", **_COMMON, **VARIANTS["HAT-S"], "upscale": 4, "depths": [2], "num_heads": [6]})
    sd = net.state_dict()
    assert sd["relative_position_index_SA"].shape == (256, 256)
    assert sd["relative_position_index_OCA"].shape == (256, 576)
    assert sd["layers.0.residual_group.overlap_attn.relative_position_bias_table"].shape == (1521, 6)
    assert sd["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"].shape == (961, 6)
    assert sd["layers.0.residual_group.blocks.1.conv_block.cab.3.attention.1.weight"].shape == (6, 144, 1, 1)
    assert "mean" not in sd and (net.spec.size_multiple, net.spec.min_size, net.spec.scale) == (16, 16, 4)


@pytest.fixture(scope="module")
def official(load_xz_fixture: Callable) -> dict:
    return load_xz_fixture("hat_official_tiny.pt.xz")["hat_x2_ws4"]


@pytest.fixture
def write_hat_checkpoint(write_checkpoint: Callable) -> Callable[[dict], str]:
    """Checkpoints in the official HAT release format (weights under ``params_ema``)."""
    return lambda params: write_checkpoint(params, param_key="params_ema", name="hat_official.pth")


@pytest.mark.parametrize("backend", ["reference", "sdpa"])
def test_reproduces_official_output(official: dict, write_hat_checkpoint: Callable, backend: str) -> None:
    net = HAT(**official["config"], attn_backend=backend).eval()
    load_weights(net, write_hat_checkpoint(official["params"]), strict=True)
    with torch.no_grad():
        out = net(official["input"].float())  # (2, 3, 12, 16): batch of 2, non-square
    assert out.shape == (2, 3, 24, 32)
    torch.testing.assert_close(out, official["output"], rtol=1e-5, atol=1e-5)


def test_wrong_relative_position_index_is_an_error(official: dict, write_hat_checkpoint: Callable) -> None:
    params = dict(official["params"])
    params["relative_position_index_OCA"] = params["relative_position_index_OCA"] + 1
    with pytest.raises(WeightsError, match="relative_position_index_OCA' differs"):
        load_weights(HAT(**official["config"]), write_hat_checkpoint(params))


def test_weights_for_a_wrong_scale_name_keys_and_shapes(official: dict, write_hat_checkpoint: Callable) -> None:
    net = HAT(**dict(official["config"], upscale=3))
    with pytest.raises(WeightsError) as err:
        load_weights(net, write_hat_checkpoint(official["params"]))
    assert "shape mismatch for 'upsample.0.weight': checkpoint (256, 64, 3, 3), network (576, 64, 3, 3)" in str(err.value)
    net4 = HAT(**dict(official["config"], upscale=4))
    with pytest.raises(WeightsError, match=r"missing in checkpoint \(2\): upsample\.2\.weight, upsample\.2\.bias"):
        load_weights(net4, write_hat_checkpoint(official["params"]))


def test_input_must_be_a_window_multiple(official: dict) -> None:
    net = HAT(**official["config"]).eval()
    assert net.spec.size_multiple == 4
    with pytest.raises(ValueError, match="multiples of window_size 4, got 10x12"):
        net(torch.rand(1, 3, 10, 12))


def test_check_options_lists_problems() -> None:
    problems = HAT.check_options(bind_arguments(HAT, {"img_size": 60, "window_size": 16, "embed_dim": 180,
                                                      "num_heads": [7] * 6, "depths": [6] * 6, "upscale": 4}))
    assert "window_size 16 does not divide img_size 60" in problems
    assert "num_heads 7 does not divide embed_dim 180" in problems
    assert HAT.check_options(bind_arguments(HAT, {**_COMMON, **VARIANTS["HAT"], "upscale": 4})) == []
    with pytest.raises(ValueError, match="HAT only has the 'pixelshuffle' head"):
        HAT(img_size=16, window_size=4, embed_dim=12, depths=[1], num_heads=[2], squeeze_factor=4, upsampler="")


OPTION_FILES = sorted((Path(__file__).parents[1] / "options").glob("*/HAT/*.yml"))


def test_option_files_use_official_configs(meta_param_count: Callable) -> None:
    """Every HAT option file builds an official network (validity: tests/test_option_files.py)."""
    assert len(OPTION_FILES) >= 10
    for path in OPTION_FILES:
        assert meta_param_count(load_yaml(path)["network_g"]) in PARAM_COUNTS.values(), path.name
