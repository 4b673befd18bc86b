"""SwinIR: official parameter counts, strict loading of official state dicts, output equality, options.

``data/swinir_official_tiny.pt.xz`` was produced by running the official ``network_swinir.py``
(JingyunLiang/SwinIR @6545850) on four tiny configs, outside this repository: per config the
official ``state_dict()`` (buffers included; weights on a 1/256 grid, stored exactly in float16),
an input and the official output (float32).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch

from restoration import build_network, load_weights
from restoration.archs.swinir.swinir_arch import SwinIR
from restoration.schema import bind_arguments
from restoration.options.yaml_io import load_yaml
from restoration.utils.weights import WeightsError

# (network_g, parameter count) for every row of ../shared/reference/ARCHITECTURES.md (counts of the official classes).
_CLASSICAL = dict(in_chans=3, window_size=8, img_range=1.0, depths=[6] * 6, embed_dim=180, num_heads=[6] * 6,
                  mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv")
_LIGHT = dict(in_chans=3, img_size=64, window_size=8, img_range=1.0, depths=[6] * 4, embed_dim=60,
              num_heads=[6] * 4, mlp_ratio=2, upsampler="pixelshuffledirect", resi_connection="1conv")
_RESTORE = dict(upscale=1, window_size=8, img_range=1.0, depths=[6] * 6, embed_dim=180, num_heads=[6] * 6,
                mlp_ratio=2, upsampler="", resi_connection="1conv")
PARAM_COUNTS = [
    ("classical_x2", dict(_CLASSICAL, upscale=2, img_size=48), 11_752_487),
    ("classical_x3", dict(_CLASSICAL, upscale=3, img_size=48), 11_937_127),
    ("classical_x4", dict(_CLASSICAL, upscale=4, img_size=64), 11_900_199),
    ("classical_x8", dict(_CLASSICAL, upscale=8, img_size=48), 12_047_911),
    ("lightweight_x2", dict(_LIGHT, upscale=2), 910_152),
    ("lightweight_x3", dict(_LIGHT, upscale=3), 918_267),
    ("lightweight_x4", dict(_LIGHT, upscale=4), 929_628),
    ("realsr_M_x4", dict(_CLASSICAL, upscale=4, img_size=64, upsampler="nearest+conv"), 11_715_559),
    ("realsr_L_x4", dict(_CLASSICAL, upscale=4, img_size=64, upsampler="nearest+conv", depths=[6] * 9,
                         embed_dim=240, num_heads=[8] * 9, resi_connection="3conv"), 28_013_059),
    ("denoise_gray", dict(_RESTORE, in_chans=1, img_size=128), 11_497_681),
    ("denoise_color", dict(_RESTORE, in_chans=3, img_size=128), 11_504_163),
    ("jpeg_gray", dict(_RESTORE, in_chans=1, img_size=126, window_size=7, img_range=255.0), 11_485_585),
    ("jpeg_color", dict(_RESTORE, in_chans=3, img_size=126, window_size=7, img_range=255.0), 11_492_067),
]


@pytest.mark.parametrize("name,cfg,expected", PARAM_COUNTS, ids=[p[0] for p in PARAM_COUNTS])
def test_parameter_count_matches_official(meta_param_count: Callable, name: str, cfg: dict, expected: int) -> None:
    assert meta_param_count({"type": "SwinIR", **cfg}) == expected


def test_classical_state_dict_has_official_layout() -> None:
    with torch.device("meta"):
        net = build_network({"type": "SwinIR", **PARAM_COUNTS[0][1]})
    sd = net.state_dict()
    assert len(sd) == 548
    assert sd["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"].shape == (225, 6)
    assert sd["layers.0.residual_group.blocks.0.attn.qkv.weight"].shape == (540, 180)
    assert sd["layers.5.residual_group.blocks.5.attn_mask"].shape == (36, 64, 64)  # img_size 48 / ws 8
    assert "layers.5.residual_group.blocks.4.attn_mask" not in sd  # unshifted blocks have none
    assert "mean" not in sd


@pytest.fixture(scope="module")
def official(load_xz_fixture: Callable) -> dict:
    return load_xz_fixture("swinir_official_tiny.pt.xz")


@pytest.mark.parametrize("backend", ["reference", "sdpa"])
@pytest.mark.parametrize(
    "case", ["pixelshuffle_x2_3conv", "pixelshuffledirect_x3", "nearest_conv_x4", "gray_jpeg_x1"]
)
def test_reproduces_official_output(official: dict, write_checkpoint: Callable, case: str, backend: str) -> None:
    entry = official[case]
    net = SwinIR(**entry["config"], attn_backend=backend).eval()
    load_weights(net, write_checkpoint(entry["params"]), strict=True)
    with torch.no_grad():
        out = net(entry["input"].float())
    assert out.shape == entry["output"].shape
    torch.testing.assert_close(out, entry["output"], rtol=1e-5, atol=1e-5)


def test_loads_checkpoint_trained_at_another_patch_size(official: dict, write_checkpoint: Callable) -> None:
    """The stored attn_mask (img_size 16 -> 16 windows) is checked, then replaced by ours (32 -> 64)."""
    entry = official["pixelshuffle_x2_3conv"]
    net = SwinIR(**dict(entry["config"], img_size=32)).eval()
    assert net.layers[0].residual_group.blocks[1].attn_mask.shape == (64, 16, 16)
    load_weights(net, write_checkpoint(entry["params"]), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(net(entry["input"].float()), entry["output"], rtol=1e-5, atol=1e-5)


def test_wrong_relative_position_index_is_an_error(official: dict, write_checkpoint: Callable) -> None:
    entry = official["pixelshuffledirect_x3"]
    params = dict(entry["params"])
    key = "layers.1.residual_group.blocks.0.attn.relative_position_index"
    params[key] = params[key].flip(0)
    net = SwinIR(**entry["config"])
    with pytest.raises(WeightsError, match=r"layers\.1\.residual_group\.blocks\.0\.attn\.relative_position_index"):
        load_weights(net, write_checkpoint(params))


def test_wrong_attn_mask_is_an_error(official: dict, write_checkpoint: Callable) -> None:
    entry = official["pixelshuffledirect_x3"]
    params = dict(entry["params"])
    key = "layers.0.residual_group.blocks.1.attn_mask"
    params[key] = torch.zeros_like(params[key])
    with pytest.raises(WeightsError, match="is not a shifted-window mask"):
        load_weights(SwinIR(**entry["config"]), write_checkpoint(params))


def test_wrong_scale_names_mismatched_keys_and_shapes(official: dict, write_checkpoint: Callable) -> None:
    entry = official["pixelshuffledirect_x3"]
    net = SwinIR(**dict(entry["config"], upscale=2))
    with pytest.raises(WeightsError, match=r"shape mismatch for 'upsample\.0\.weight': checkpoint \(27, 12, 3, 3\), "
                                           r"network \(12, 12, 3, 3\)"):
        load_weights(net, write_checkpoint(entry["params"]))


@pytest.mark.parametrize("in_chans,size", [(1, (9, 14)), (3, (8, 8)), (3, (2, 5))])
def test_pads_internally_and_crops_back(in_chans: int, size: tuple[int, int]) -> None:
    net = SwinIR(img_size=8, in_chans=in_chans, embed_dim=8, depths=[2], num_heads=[2], window_size=4,
                 mlp_ratio=2, upscale=2, upsampler="pixelshuffledirect").eval()
    assert (net.spec.size_multiple, net.spec.min_size, net.spec.scale) == (1, 1, 2)  # no padding asked of callers
    x = torch.rand(2, in_chans, *size)
    with torch.no_grad():
        y = net(x)
        y_single = net(x[1:])
    assert y.shape == (2, in_chans, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(y[1:], y_single, rtol=1e-5, atol=1e-6)  # windows never mix images


def test_check_options_lists_problems() -> None:
    problems = SwinIR.check_options(bind_arguments(SwinIR,
        {"img_size": 50, "window_size": 8, "embed_dim": 60, "num_heads": [7, 6], "depths": [2, 2],
         "upsampler": "pixelshuffle", "upscale": 5, "resi_connection": "2conv"}
    ))
    assert "window_size 8 does not divide img_size 50" in problems
    assert "num_heads 7 does not divide embed_dim 60" in problems
    assert "upsampler 'pixelshuffle' supports upscale 2^n and 3, got 5" in problems
    assert any("resi_connection '2conv'" in p for p in problems)
    assert SwinIR.check_options(bind_arguments(SwinIR, PARAM_COUNTS[0][1])) == []
    with pytest.raises(ValueError, match="upsampler 'bicubic'"):
        SwinIR(upsampler="bicubic")


OPTION_FILES = sorted((Path(__file__).parents[1] / "options").glob("*/SwinIR/*.yml"))


def test_option_files_use_official_configs(meta_param_count: Callable) -> None:
    """Every SwinIR option file builds an official network (validity: tests/test_option_files.py)."""
    assert len(OPTION_FILES) >= 40
    official_counts = {count for _, _, count in PARAM_COUNTS}
    for path in OPTION_FILES:
        assert meta_param_count(load_yaml(path)["network_g"]) in official_counts, path.name
