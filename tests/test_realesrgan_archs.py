"""RRDBNet (ESRGAN / Real-ESRGAN) and SRVGGNetCompact against the official BasicSR code.

``data/realesrgan_official_tiny.pt.xz`` was produced by running the official ``rrdbnet_arch.py`` and
``srvgg_arch.py`` (XPixelGroup/BasicSR @8d56e3a) on six tiny configs (``data/realesrgan_make_fixtures.py``):
per config the official ``state_dict()`` (float16, exact), a float64 input and the official float64 output.
The released parameter counts were counted on the official classes (meta device).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch

from restoration import build_network
from restoration.archs import register_archs
from tests.helpers import assert_unreleased_detection
from restoration.archs.detect import DetectionError, detect_architecture
from restoration.archs.rrdbnet.rrdbnet_arch import RRDBNet
from restoration.archs.spec import arch_spec
from restoration.archs.srvgg.srvgg_arch import SRVGGNetCompact
from restoration.utils.weights import load_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")

register_archs()

_X4PLUS = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4)
_GENERAL_X4V3 = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type="prelu")
_ANIMEVIDEO_V3 = dict(_GENERAL_X4V3, num_conv=16)

# (released file, network_g, trainable parameters counted on the official BasicSR class)
RELEASED: list[tuple[str, dict[str, Any], int]] = [
    ("RealESRGAN_x4plus", {"type": "RRDBNet", **_X4PLUS}, 16_697_987),
    ("RealESRGAN_x2plus", {"type": "RRDBNet", **_X4PLUS, "scale": 2}, 16_703_171),
    ("RealESRGAN_x4plus_anime_6B", {"type": "RRDBNet", **_X4PLUS, "num_block": 6}, 4_467_779),
    ("realesr-general-x4v3", {"type": "SRVGGNetCompact", **_GENERAL_X4V3}, 1_213_296),
    ("realesr-animevideov3", {"type": "SRVGGNetCompact", **_ANIMEVIDEO_V3}, 621_424),
]
CASES = ["rrdb_x4", "rrdb_x2", "rrdb_x1_gray", "srvgg_prelu_x4", "srvgg_leakyrelu_x3_gray", "srvgg_relu_x2"]


@pytest.fixture(scope="module")
def official(load_xz_fixture: Callable[[str], Any]) -> dict:
    return load_xz_fixture("realesrgan_official_tiny.pt.xz")


@pytest.mark.parametrize("name, network_g, expected", RELEASED, ids=[r[0] for r in RELEASED])
def test_parameter_count_matches_official(meta_param_count: Callable, name: str, network_g: dict, expected: int) -> None:
    assert meta_param_count(network_g) == expected


@pytest.mark.parametrize("case", CASES)
def test_reproduces_official_output_in_float64(official: dict, write_checkpoint: Callable, case: str) -> None:
    entry = official[case]
    net = build_network({"type": entry["arch"], **entry["config"]})
    load_weights(net, write_checkpoint(entry["params"], param_key="params_ema"), strict=True)
    net = net.double().eval()
    with torch.no_grad():
        out = net(entry["input"])
    assert out.shape == entry["output"].shape
    # same operations in the same order: equal to float64 rounding
    torch.testing.assert_close(out, entry["output"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", ["rrdb_x4", "srvgg_prelu_x4"])
def test_float32_stays_close_to_official(official: dict, write_checkpoint: Callable, case: str) -> None:
    entry = official[case]
    net = build_network({"type": entry["arch"], **entry["config"]})
    load_weights(net, write_checkpoint(entry["params"]), strict=True)
    with torch.no_grad():
        out = net.eval()(entry["input"].float())
    torch.testing.assert_close(out.double(), entry["output"], rtol=0, atol=1e-5)


def test_released_layouts_have_the_official_keys() -> None:
    with torch.device("meta"):
        rrdb = build_network(RELEASED[0][1]).state_dict()
        x2 = build_network(RELEASED[1][1]).state_dict()
        vgg = build_network(RELEASED[3][1]).state_dict()
    assert len(rrdb) == 2 + 23 * 3 * 5 * 2 + 5 * 2
    assert rrdb["body.22.rdb3.conv5.weight"].shape == (64, 64 + 4 * 32, 3, 3)
    assert rrdb["conv_first.weight"].shape == (64, 3, 3, 3)
    assert x2["conv_first.weight"].shape == (64, 12, 3, 3)  # pixel-unshuffled input: 3 * 2 * 2 channels
    assert vgg["body.1.weight"].shape == (64,)  # PReLU slopes between the convs
    assert vgg["body.66.weight"].shape == (48, 64, 3, 3)  # the last conv: 3 * 4^2 channels
    assert len(vgg) == 34 * 2 + 33


@pytest.mark.parametrize("scale, multiple", [(4, 1), (2, 2), (1, 4)])
def test_rrdbnet_spec_states_the_unshuffle_multiple(scale: int, multiple: int) -> None:
    net = RRDBNet(3, 3, scale=scale, num_feat=4, num_block=1, num_grow_ch=2)
    spec = arch_spec(net)
    assert (spec.scale, spec.size_multiple, spec.min_size) == (scale, multiple, multiple)
    assert net(torch.rand(1, 3, 4, 8)).shape == (1, 3, 4 * scale, 8 * scale)
    if multiple > 1:
        with pytest.raises(ValueError, match=f"multiple of {multiple}"):
            net(torch.rand(1, 3, 4, 8 + multiple // 2))


def test_pixel_unshuffle_channel_order_is_basicsr() -> None:
    """BasicSR's pixel_unshuffle puts channel c's sub-pixel (i, j) at c*s*s + i*s + j."""
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    out = torch.nn.functional.pixel_unshuffle(x, 2)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                assert torch.equal(out[0, c * 4 + i * 2 + j], x[0, c, i::2, j::2])


@pytest.mark.parametrize("bad, message", [
    (dict(num_block=0), "num_block must be >= 1, got 0"),
    (dict(scale=3), r"scale must be one of \[1, 2, 4\]"),
])
def test_rrdbnet_bad_options(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RRDBNet(3, 3, **bad)


@pytest.mark.parametrize("bad, message", [
    (dict(num_out_ch=1), "num_out_ch 1 must equal num_in_ch 3"),
    (dict(act_type="gelu"), r"act_type must be one of \['relu', 'prelu', 'leakyrelu'\], got 'gelu'"),
    (dict(num_conv=-1), "num_conv must be >= 0"),
])
def test_srvgg_bad_options(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SRVGGNetCompact(**bad)


def _meta_sd(network_g: dict) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_network(network_g).state_dict()


@pytest.mark.parametrize("name, network_g, count", RELEASED, ids=[r[0] for r in RELEASED])
def test_every_release_is_detected_from_its_state_dict(name: str, network_g: dict, count: int) -> None:
    detection = detect_architecture(_meta_sd(network_g))
    assert detection.network_opt() == network_g
    assert name in (detection.release or "")


def test_detection_reads_the_tiny_official_configs(official: dict) -> None:
    """A non-released shape is detected with a notice, or refused when the closest releases disagree on what
    the weights do not show; --arch accepts it."""
    for case in CASES:
        entry = official[case]
        sd = entry["params"]
        assert_unreleased_detection(sd)
        detection = detect_architecture(sd, arch=entry["arch"])
        expected = dict(entry["config"])
        if expected.get("act_type") == "leakyrelu":  # relu and leakyrelu leave no key: read as relu
            expected["act_type"] = "relu"
        assert detection.kwargs == expected, case


def test_rrdb_detection_is_not_fooled_by_swinir_nearest_conv_keys() -> None:
    sd = _meta_sd({"type": "SwinIR", "img_size": 8, "embed_dim": 8, "depths": [2], "num_heads": [2],
                   "window_size": 4, "upscale": 4, "upsampler": "nearest+conv"})
    with pytest.raises(DetectionError) as info:
        detect_architecture(sd, arch="RRDBNet")
    assert "body.0.rdb1.conv1.weight" in str(info.value)
