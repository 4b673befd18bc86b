"""Restormer and DAT against the official code (swz30/Restormer @df766d5, zhengchen1999/DAT @1645c64).

``data/restormer_dat_official_tiny.pt.xz`` holds, for six tiny configs, the official ``state_dict()`` (float16,
exact), a float64 input and the official float64 eval-mode output (``data/restormer_dat_make_fixtures.py`` runs the
unmodified official files). The DAT cases cover the stored shift masks (input = ``img_size``), padded q/k/v with
recomputed masks (10 x 13 input), ``qkv_bias=False``, '3conv', 'pixelshuffledirect' x3, one channel and
``img_range`` 255. Released parameter counts were counted on the official classes.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch

from restoration import build_network, zoo
from restoration.archs import register_archs
from restoration.archs.dat.dat_arch import DAT, shifted_rect_mask
from tests.helpers import assert_unreleased_detection
from restoration.archs.detect import DetectionError, detect_architecture, published_configs
from restoration.archs.restormer.restormer_arch import Restormer
from restoration.archs.spec import arch_spec
from restoration.layers.depthwise_conv import (
    get_depthwise_backend,
    set_depthwise_backend,
)
from restoration.utils.weights import load_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")

register_archs()

_RESTORMER = dict(inp_channels=3, out_channels=3, dim=48, num_blocks=[4, 6, 6, 8], num_refinement_blocks=4,
                  heads=[1, 2, 4, 8], ffn_expansion_factor=2.66, bias=False, dual_pixel_task=False)
_DAT = dict(img_size=64, in_chans=3, embed_dim=180, split_size=[8, 32], depth=[6] * 6, num_heads=[6] * 6,
            expansion_factor=4.0, qkv_bias=True, img_range=1.0, resi_connection="1conv", upsampler="pixelshuffle")
_DAT_LIGHT = dict(_DAT, embed_dim=60, depth=[18], num_heads=[6], expansion_factor=2.0, resi_connection="3conv",
                  upsampler="pixelshuffledirect")

# (release, network_g, trainable parameters counted on the official class)
RELEASED: list[tuple[str, dict[str, Any], int]] = [
    ("Restormer deraining", {"type": "Restormer", **_RESTORMER, "LayerNorm_type": "WithBias"}, 26_126_644),
    ("Restormer gaussian_color_denoising", {"type": "Restormer", **_RESTORMER, "LayerNorm_type": "BiasFree"},
     26_111_668),
    ("Restormer gaussian_gray_denoising", {"type": "Restormer", **_RESTORMER, "LayerNorm_type": "BiasFree",
                                           "inp_channels": 1, "out_channels": 1}, 26_109_076),
    ("Restormer dual_pixel_defocus_deblurring", {"type": "Restormer", **_RESTORMER, "LayerNorm_type": "WithBias",
                                                 "inp_channels": 6, "dual_pixel_task": True}, 26_132_548),
    ("DAT_x2", {"type": "DAT", **_DAT, "upscale": 2}, 14_654_339),
    ("DAT_x3", {"type": "DAT", **_DAT, "upscale": 3}, 14_838_979),
    ("DAT_x4", {"type": "DAT", **_DAT, "upscale": 4}, 14_802_051),
    ("DAT_S_x2", {"type": "DAT", **_DAT, "upscale": 2, "split_size": [8, 16], "expansion_factor": 2.0}, 11_064_419),
    ("DAT_2_x2", {"type": "DAT", **_DAT, "upscale": 2, "expansion_factor": 2.0}, 11_064_419),
    ("DAT_light_x2", {"type": "DAT", **_DAT_LIGHT, "upscale": 2}, 553_290),
    ("DAT_light_x3", {"type": "DAT", **_DAT_LIGHT, "upscale": 3}, 561_405),
    ("DAT_light_x4", {"type": "DAT", **_DAT_LIGHT, "upscale": 4}, 572_766),
]
CASES = ["restormer_withbias", "restormer_biasfree_gray_bias", "restormer_dual_pixel", "dat_x2_stored_mask",
         "dat_x2_padded_no_qkv_bias", "dat_light_x3_gray"]


@pytest.fixture(scope="module")
def official(load_xz_fixture: Callable[[str], Any]) -> dict:
    return load_xz_fixture("restormer_dat_official_tiny.pt.xz")


def _load(entry: dict, write_checkpoint: Callable) -> torch.nn.Module:
    net = build_network({"type": entry["arch"], **entry["config"]})
    load_weights(net, write_checkpoint(entry["params"]), strict=True)
    return net.double().eval()


def test_every_dat_release_is_in_the_zoo_with_the_papers_five_benchmarks_and_its_configuration() -> None:
    """The twelve files of zhengchen1999/DAT options/Test (DAT, DAT-S, DAT-2, DAT-light at x2, x3, x4), each with
    the paper's Set5 / Set14 / B100 / Urban100 / Manga109 PSNR and SSIM and the network of its own published
    configuration (tests/test_detect.py detects each configuration back from its keys); the x4 Urban100 scores of
    the README's model table are the paper's."""
    configs = {c.name: c for c in published_configs() if c.arch == "DAT"}
    dat = {e.name: e for e in zoo.entries() if e.network_g["type"] == "DAT"}
    assert set(dat) == {f"DAT{v}_x{s}.pth" for v in ("", "_S", "_2", "_light") for s in (2, 3, 4)}
    for name, entry in dat.items():
        assert set(entry.scores) == {"Set5", "Set14", "BSD100", "Urban100", "Manga109"}, name
        assert all(set(m) == {"psnr", "ssim"} for m in entry.scores.values()), name
        assert entry.network_g == {"type": "DAT", **configs[name.removesuffix(".pth")].kwargs}, name
    readme_x4_urban100 = {"DAT_S": (27.68, 0.8300), "DAT": (27.87, 0.8343), "DAT_2": (27.86, 0.8341),
                          "DAT_light": (26.64, 0.8033)}
    for variant, (psnr, ssim) in readme_x4_urban100.items():
        assert dat[f"{variant}_x4.pth"].scores["Urban100"] == {"psnr": psnr, "ssim": ssim}


@pytest.mark.parametrize("name, network_g, expected", RELEASED, ids=[r[0] for r in RELEASED])
def test_parameter_count_matches_official(meta_param_count: Callable, name: str, network_g: dict, expected: int) -> None:
    assert meta_param_count(network_g) == expected


@pytest.mark.parametrize("case", CASES)
def test_reproduces_official_output_in_float64(official: dict, write_checkpoint: Callable, case: str) -> None:
    entry = official[case]
    net = _load(entry, write_checkpoint)
    with torch.no_grad():
        out = net(entry["input"])
    assert out.shape == entry["output"].shape
    # measured max abs diff: 0.0 (Restormer), <= 4e-15 (DAT: the same sums in another association order)
    torch.testing.assert_close(out, entry["output"], rtol=0, atol=1e-12)


def test_mdta_depthwise_fast_path_equals_reference_forward_and_backward(official: dict,
                                                                          write_checkpoint: Callable) -> None:
    """Restormer's q/k/v depth-wise conv goes through depthwise_conv2d: its CPU backward must give F.conv2d's."""
    entry = official["restormer_withbias"]
    results = []
    before = get_depthwise_backend()
    try:
        for backend in ("reference", "cpu"):
            set_depthwise_backend(backend)
            net = _load(entry, write_checkpoint).train()
            x = entry["input"].clone().requires_grad_(True)
            out = net(x)
            out.square().mean().backward()
            results.append((out.detach(), x.grad, {k: p.grad for k, p in net.named_parameters()}))
    finally:
        set_depthwise_backend(before)
    (out_a, gx_a, g_a), (out_b, gx_b, g_b) = results
    assert torch.equal(out_a, out_b)
    torch.testing.assert_close(gx_a, gx_b, rtol=0, atol=1e-12)
    for key in g_a:
        torch.testing.assert_close(g_a[key], g_b[key], rtol=0, atol=1e-12, msg=key)


def test_float32_stays_close_to_official(official: dict, write_checkpoint: Callable) -> None:
    for case in ("restormer_withbias", "dat_x2_stored_mask"):
        entry = official[case]
        net = _load(entry, write_checkpoint).float()
        with torch.no_grad():
            out = net(entry["input"].float())
        torch.testing.assert_close(out.double(), entry["output"], rtol=0, atol=1e-4, msg=case)


def test_dat_stored_mask_equals_the_formula(official: dict) -> None:
    params = official["dat_x2_stored_mask"]["params"]
    # rg 0 block 2 shifts; window (2, 4) for the first half of the channels, (4, 2) for the second
    assert torch.equal(params["layers.0.blocks.2.attn.attn_mask_0"].double(), shifted_rect_mask(16, 16, 2, 4).double())
    assert torch.equal(params["layers.0.blocks.2.attn.attn_mask_1"].double(), shifted_rect_mask(16, 16, 4, 2).double())
    assert "layers.0.blocks.0.attn.attn_mask_0" not in params
    assert "layers.1.blocks.0.attn.attn_mask_0" in params  # odd groups shift at b_idx % 4 == 0


@pytest.mark.parametrize("name, network_g, count", RELEASED, ids=[r[0] for r in RELEASED])
def test_every_release_is_detected_from_its_state_dict(name: str, network_g: dict, count: int) -> None:
    with torch.device("meta"):
        sd = build_network(network_g).state_dict()
    detection = detect_architecture(sd)
    assert detection.arch == network_g["type"]
    assert {k: v for k, v in detection.network_opt().items()} == network_g
    assert name.split(" ")[-1].split("_x")[0] in (detection.release or "")


def test_detection_reads_the_tiny_official_configs(official: dict) -> None:
    for case in CASES:
        entry = official[case]
        assert_unreleased_detection(entry["params"])
        detection = detect_architecture(entry["params"], arch=entry["arch"])
        expected = {k: v for k, v in entry["config"].items() if k != "img_range"}
        got = {k: detection.kwargs[k] for k in expected}
        assert got == expected, case


def test_restormer_spec_and_size_check() -> None:
    net = Restormer(dim=4, num_blocks=[1, 1, 1, 1], num_refinement_blocks=0, heads=[1, 1, 1, 1])
    spec = arch_spec(net)
    assert (spec.scale, spec.size_multiple, spec.min_size) == (1, 8, 8)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 3, 8, 12))


def test_dat_spec_any_size() -> None:
    spec = DAT.spec_from_options(dict(upscale=3, in_chans=1))
    assert (spec.scale, spec.size_multiple, spec.in_channels, spec.out_channels) == (3, 1, 1, 1)


@pytest.mark.parametrize("bad, message", [
    (dict(split_size=[3, 6]), r"split_size \[3, 6\] has an odd side"),
    (dict(split_size=[4, 6]), r"split_size \[4, 6\]: 4 does not divide 6"),
    (dict(num_heads=[3, 3, 3, 3]), r"num_heads\[0\]=3 must be even"),
    (dict(upscale=5), "upscale 5 needs upsampler 'pixelshuffledirect'"),
    (dict(embed_dim=16, num_heads=[2] * 4), "embed_dim must be >= 32"),
])
def test_dat_bad_options(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DAT(**bad)


@pytest.mark.parametrize("bad, message", [
    (dict(LayerNorm_type="Bias"), r"LayerNorm_type must be one of \['WithBias', 'BiasFree'\]"),
    (dict(heads=[1, 2, 4]), "heads must list 4 positive integers"),
    (dict(out_channels=1), "inp_channels 3 != out_channels 1"),
    (dict(dim=6, heads=[4, 1, 1, 1]), r"heads\[0\]=4 does not divide the 6 channels"),
])
def test_restormer_bad_options(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Restormer(**bad)


def test_dat_split_size_is_an_options_error_at_start_up() -> None:
    from restoration.options.validate import check_component
    from restoration.registry import ARCH_REGISTRY

    problems: list[str] = []
    check_component(ARCH_REGISTRY, {"type": "DAT", "split_size": [3, 6]}, "network_g", problems)
    check_component(ARCH_REGISTRY, {"type": "DAT", "split_size": [4, 6]}, "network_g", problems)
    assert problems == ["'network_g': split_size [3, 6] has an odd side: shifted windows move by half a window",
                        "'network_g': split_size [4, 6]: 4 does not divide 6, the multiple the features are padded "
                        "to, so the windows would not tile them"]
