"""EDSR and RCAN against the official BasicSR code.

``data/edsr_rcan_official_tiny.pt.xz`` was produced by running the official ``edsr_arch.py`` and ``rcan_arch.py``
(XPixelGroup/BasicSR @8d56e3a) on six tiny configs (``data/edsr_rcan_make_fixtures.py``): per config the official
``state_dict()`` (float16, exact), a float64 input and the official float64 output. The released parameter counts
were counted on the official classes (meta device) by the same script.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch

from restoration import build_network
from restoration.archs import register_archs
from tests.helpers import assert_unreleased_detection
from restoration.archs.detect import DetectionError, detect_architecture
from restoration.archs.edsr.edsr_arch import EDSR
from restoration.archs.rcan.rcan_arch import RCAN
from restoration.archs.spec import arch_spec
from restoration.layers.channel_attention import ChannelAttention
from restoration.utils.weights import load_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")

register_archs()

_SHIFT = dict(num_in_ch=3, num_out_ch=3, img_range=255.0, rgb_mean=[0.4488, 0.4371, 0.404])
_EDSR_M = dict(_SHIFT, num_feat=64, num_block=16, res_scale=1)
_EDSR_L = dict(_SHIFT, num_feat=256, num_block=32, res_scale=0.1)
_RCAN = dict(_SHIFT, num_feat=64, num_group=10, num_block=20, squeeze_factor=16, res_scale=1)

# (released configuration, network_g, trainable parameters counted on the official BasicSR class)
RELEASED: list[tuple[str, dict[str, Any], int]] = [
    ("EDSR_Mx2", {"type": "EDSR", **_EDSR_M, "upscale": 2}, 1_369_859),
    ("EDSR_Mx3", {"type": "EDSR", **_EDSR_M, "upscale": 3}, 1_554_499),
    ("EDSR_Mx4", {"type": "EDSR", **_EDSR_M, "upscale": 4}, 1_517_571),
    ("EDSR_Lx2", {"type": "EDSR", **_EDSR_L, "upscale": 2}, 40_729_603),
    ("EDSR_Lx3", {"type": "EDSR", **_EDSR_L, "upscale": 3}, 43_680_003),
    ("EDSR_Lx4", {"type": "EDSR", **_EDSR_L, "upscale": 4}, 43_089_923),
    ("RCAN x2", {"type": "RCAN", **_RCAN, "upscale": 2}, 15_444_643),
    ("RCAN x3", {"type": "RCAN", **_RCAN, "upscale": 3}, 15_629_283),
    ("RCAN x4", {"type": "RCAN", **_RCAN, "upscale": 4}, 15_592_355),
]
CASES = ["edsr_x2_res1", "edsr_x3_res01", "edsr_x4_mean", "rcan_x2", "rcan_x3_res", "rcan_x8"]


@pytest.fixture(scope="module")
def official(load_xz_fixture: Callable[[str], Any]) -> dict:
    return load_xz_fixture("edsr_rcan_official_tiny.pt.xz")


@pytest.mark.parametrize("name, network_g, expected", RELEASED, ids=[r[0] for r in RELEASED])
def test_parameter_count_matches_official(meta_param_count: Callable, name: str, network_g: dict, expected: int) -> None:
    assert meta_param_count(network_g) == expected


@pytest.mark.parametrize("case", CASES)
def test_reproduces_official_output_in_float64(official: dict, write_checkpoint: Callable, case: str) -> None:
    entry = official[case]
    net = build_network({"type": entry["arch"], **entry["config"]})
    load_weights(net, write_checkpoint(entry["params"]), strict=True)
    net = net.double().eval()
    with torch.no_grad():
        out = net(entry["input"])
    assert out.shape == entry["output"].shape
    # same operations in the same order: equal to float64 rounding
    torch.testing.assert_close(out, entry["output"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", ["edsr_x3_res01", "rcan_x2"])
def test_float32_stays_close_to_official(official: dict, write_checkpoint: Callable, case: str) -> None:
    entry = official[case]
    net = build_network({"type": entry["arch"], **entry["config"]})
    load_weights(net, write_checkpoint(entry["params"], param_key="params_ema"), strict=True)
    with torch.no_grad():
        out = net.eval()(entry["input"].float())
    torch.testing.assert_close(out.double(), entry["output"], rtol=0, atol=1e-4)


def test_mean_is_not_in_the_state_dict_but_follows_dtype_and_device() -> None:
    net = EDSR(3, 3, num_feat=4, num_block=1, upscale=2)
    assert "mean" not in net.state_dict()
    assert net.double().mean.dtype == torch.float64
    assert net.mean.flatten().tolist() == pytest.approx([0.4488, 0.4371, 0.4040])


def test_released_layouts_have_the_official_keys() -> None:
    with torch.device("meta"):
        edsr = build_network(RELEASED[5][1]).state_dict()  # EDSR_Lx4
        rcan = build_network(RELEASED[7][1]).state_dict()  # RCAN x3
    assert len(edsr) == 2 + 32 * 4 + 2 + 2 * 2 + 2
    assert edsr["upsample.2.weight"].shape == (1024, 256, 3, 3)
    assert rcan["upsample.0.weight"].shape == (576, 64, 3, 3)
    assert rcan["body.9.residual_group.19.rcab.3.attention.1.weight"].shape == (4, 64, 1, 1)
    assert rcan["body.9.residual_group.19.rcab.3.attention.3.weight"].shape == (64, 4, 1, 1)
    assert "body.9.conv.weight" in rcan and "body.9.residual_group.20.rcab.0.weight" not in rcan


def test_rcan_uses_the_shared_channel_attention() -> None:
    net = RCAN(3, 3, num_feat=8, num_group=1, num_block=1, squeeze_factor=4, upscale=2)
    assert isinstance(net.body[0].residual_group[0].rcab[3], ChannelAttention)


@pytest.mark.parametrize("arch, upscale", [(EDSR, 3), (RCAN, 8)])
def test_spec_any_size(arch: type, upscale: int) -> None:
    kw = dict(num_feat=8, num_block=1, upscale=upscale)
    if arch is RCAN:
        kw.update(num_group=1, squeeze_factor=4)
    net = arch(3, 3, **kw)
    spec = arch_spec(net)
    assert (spec.scale, spec.size_multiple, spec.min_size, spec.value_range) == (upscale, 1, 1, 1.0)
    assert net(torch.rand(1, 3, 3, 5)).shape == (1, 3, 3 * upscale, 5 * upscale)


@pytest.mark.parametrize("arch, bad, message", [
    (EDSR, dict(num_block=0), "num_block must be >= 1, got 0"),
    (EDSR, dict(upscale=5), r"upscale must be 2\^n and 3 \(sub-pixel Upsample\), got 5"),
    (EDSR, dict(num_in_ch=1), "num_in_ch must be 3"),
    (EDSR, dict(rgb_mean=[0.5]), r"rgb_mean must be 3 values"),
    (RCAN, dict(num_group=0), "num_group must be >= 1, got 0"),
    (RCAN, dict(num_block=0), "num_block must be >= 1, got 0"),
    (RCAN, dict(upscale=6), "upscale must be 2\\^n and 3"),
    (RCAN, dict(num_feat=8, squeeze_factor=16), r"squeeze_factor 16 leaves no channel-attention channels"),
])
def test_bad_options(arch: type, bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"invalid {arch.__name__} options: .*{message}"):
        arch(**{"num_in_ch": 3, "num_out_ch": 3, **bad})


def _meta_sd(network_g: dict) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_network(network_g).state_dict()


@pytest.mark.parametrize("name, network_g, count", RELEASED, ids=[r[0] for r in RELEASED])
def test_every_release_is_detected_from_its_state_dict(name: str, network_g: dict, count: int) -> None:
    detection = detect_architecture(_meta_sd(network_g))
    assert detection.network_opt() == network_g  # res_scale 0.1 of EDSR-L comes from the release
    assert name.replace(" ", "") in (detection.release or "").replace(" ", "")


def test_detection_reads_the_tiny_official_configs(official: dict) -> None:
    """A non-released shape is detected with a notice, or refused when the closest releases disagree on what
    the weights do not show; --arch accepts it."""
    for case in CASES:
        entry = official[case]
        assert_unreleased_detection(entry["params"])
        detection = detect_architecture(entry["params"], arch=entry["arch"])
        shown = {k: v for k, v in entry["config"].items() if k not in ("res_scale", "img_range", "rgb_mean")}
        assert {k: detection.kwargs[k] for k in shown} == shown, case


def test_edsr_and_rcan_are_not_read_as_swinir_or_each_other() -> None:
    swinir = _meta_sd({"type": "SwinIR", "img_size": 8, "embed_dim": 8, "depths": [2], "num_heads": [2],
                       "window_size": 4, "upscale": 2, "upsampler": "pixelshuffle"})
    for arch in ("EDSR", "RCAN"):
        with pytest.raises(DetectionError, match="Swin layers|no 'body.0"):
            detect_architecture(swinir, arch=arch)
    with pytest.raises(DetectionError, match="no 'body.0.residual_group.0.rcab.0.weight'"):
        detect_architecture(_meta_sd(RELEASED[0][1]), arch="RCAN")
    assert detect_architecture(swinir).arch == "SwinIR"  # not EDSR or RCAN (a SwinIR no release has)
