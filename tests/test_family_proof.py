"""Proof of the family design: a family defined here, outside the package, is registered with one call and then
works everywhere a family of ours does: the architecture sweep's checks, checkpoint detection (a release and a
configuration no release has), ``restoration-infer``, ``test.py`` and ``restoration.export``, with no package edit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest
import torch
from torch import nn

from restoration import build_network
from restoration.archs import family_of, register_family
from restoration.archs.detect import detect_architecture
from restoration.archs.family import Config, Family, TinyConfig
from restoration.archs.layout import LayoutMismatch, StateDict, shape
from restoration.archs.spec import ArchSpec, arch_spec
from restoration.inference import restore
from restoration.registry import ARCH_REGISTRY
from restoration.utils.image_io import imread, imwrite, img2tensor, tensor2img
from tests.helpers import make_sr_pairs, write_options


class PlainUp(nn.Module):
    """A tiny SR network: conv, ``num_conv`` conv+ReLU, conv to ``scale**2 * 3`` channels, pixel shuffle.

    ``gain`` multiplies the residual and leaves no trace in the weights (like SwinIR's ``img_range``).
    """

    def __init__(self, num_feat: int = 8, num_conv: int = 1, scale: int = 2, gain: float = 1.0) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, num_feat, 3, padding=1)
        self.body = nn.Sequential(*[m for _ in range(num_conv) for m in (nn.Conv2d(num_feat, num_feat, 3, padding=1),
                                                                         nn.ReLU())])
        self.tail = nn.Conv2d(num_feat, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        self.scale, self.gain = scale, gain
        self.spec = self.spec_from_options(dict(num_feat=num_feat, num_conv=num_conv, scale=scale, gain=gain))

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any size, 3 channels in and out, ``scale`` times larger."""
        return ArchSpec(scale=int(opt["scale"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, h, w)`` in [0, 1] → ``(B, 3, h*s, w*s)``."""
        up = nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")
        return up + self.gain * self.shuffle(self.tail(self.body(self.head(x))))


def detect_plain_up(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """PlainUp kwargs from its keys: ``head`` gives ``num_feat``, the ``body`` convs ``num_conv``, ``tail`` the scale."""
    if "head.weight" not in sd or "tail.weight" not in sd or "shuffle" in "".join(sd):
        raise LayoutMismatch("no 'head.weight' / 'tail.weight'")
    num_feat = shape(sd, "head.weight")[0]
    num_conv = sum(1 for k in sd if k.startswith("body.") and k.endswith(".weight"))
    scale = int(round((shape(sd, "tail.weight")[0] // 3) ** 0.5))
    return "PlainUp", dict(num_feat=num_feat, num_conv=num_conv, scale=scale)


FAMILY = Family(
    name="PlainUp",
    archs={"PlainUp": f"{__name__}:PlainUp"},
    detect=f"{__name__}:detect_plain_up",
    configs=(Config("PlainUp", "PlainUp-x2 (the released one)", dict(num_feat=8, num_conv=1, scale=2, gain=0.5),
                    free=()),),
    tiny={"PlainUp": TinyConfig(dict(num_feat=4, num_conv=1, scale=2), (3, 5, 7))},
)


@pytest.fixture(scope="module", autouse=True)
def registered() -> Any:
    if family_of("PlainUp") is None:
        register_family(FAMILY, package=__name__)
    yield
    # the family stays registered for the rest of the session: its names are unique to this file


def _released(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_network({"type": "PlainUp", **FAMILY.configs[0].kwargs}).eval()


def test_the_family_joins_the_registry_and_the_sweep_checks(tmp_path: Path) -> None:
    from restoration.utils.weights import load_weights

    assert "PlainUp" in ARCH_REGISTRY.names() and family_of("PlainUp") is not None
    tiny = FAMILY.tiny["PlainUp"]
    torch.manual_seed(0)
    net = build_network({"type": "PlainUp", **tiny.kwargs})
    x = torch.rand(2, *tiny.chw)
    out = net(x)
    spec = arch_spec(net)
    assert out.shape == (2, 3, tiny.chw[1] * spec.scale, tiny.chw[2] * spec.scale)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    torch.save({"params": net.state_dict()}, tmp_path / "w.pth")
    fresh = build_network({"type": "PlainUp", **tiny.kwargs})
    load_weights(fresh, str(tmp_path / "w.pth"), strict=True)
    assert torch.equal(fresh(x), net(x))
    assert torch.equal(restore(net.eval(), x, spec=spec), net(x))


def test_detection_reads_a_release_and_a_configuration_no_release_has() -> None:
    det = detect_architecture(_released().state_dict(), where="plain.pth")
    assert (det.arch, det.release, det.kwargs["gain"]) == ("PlainUp", "PlainUp-x2 (the released one)", 0.5)
    torch.manual_seed(0)
    own = build_network({"type": "PlainUp", "num_feat": 6, "num_conv": 2, "scale": 2})
    det = detect_architecture(own.state_dict(), where="mine.pth")
    assert det.release is None and det.kwargs == {"num_feat": 6, "num_conv": 2, "scale": 2, "gain": 0.5}
    assert "not shown by the weights, assumed as in it: gain=0.5" in det.notice


def test_infer_restores_with_the_detected_release(tmp_path: Path) -> None:
    from restoration.cli import infer

    net = _released()
    weights = tmp_path / "plain.pth"
    torch.save({"params": net.state_dict()}, weights)
    img = (np.random.default_rng(0).random((9, 11, 3)) * 255).astype(np.uint8)
    imwrite(tmp_path / "in.png", img)
    assert infer.main(["-i", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "--no-progress"]) == 0
    with torch.no_grad():
        expected = tensor2img(net(img2tensor(img).unsqueeze(0))[0])
    np.testing.assert_array_equal(imread(tmp_path / "out" / "in.png"), expected)


def test_test_py_benchmarks_the_family(tmp_path: Path) -> None:
    from restoration.cli.test import main as test_main

    net = _released()
    weights = tmp_path / "plain.pth"
    torch.save({"params": net.state_dict()}, weights)
    gt, lq = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)
    opt = {"name": "plain", "scale": 2, "network_g": {"type": "PlainUp", **FAMILY.configs[0].kwargs},
           "path": {"pretrain_network_g": str(weights)},
           "datasets": {"test_1": {"type": "PairedImageDataset", "name": "pairs", "dataroot_gt": str(gt),
                                   "dataroot_lq": str(lq)}},
           "val": {"metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2}}}}
    assert test_main(["-opt", str(write_options(opt, tmp_path / "t.yml")), "--root", str(tmp_path)]) == 0
    scores = json.loads((tmp_path / "results" / "plain" / "metrics.json").read_text())
    assert "pairs" in json.dumps(scores) and "psnr" in json.dumps(scores)


def test_export_writes_an_onnx_model_equal_to_the_network(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    if not hasattr(torch.export.Dim, "DYNAMIC"):
        pytest.skip("the dynamo exporter needs torch >= 2.6")
    from restoration.cli.export import main as export_main

    net = _released()
    weights = tmp_path / "plain.pth"
    torch.save({"params": net.state_dict()}, weights)
    out = tmp_path / "plain.onnx"
    assert export_main(["--weights", str(weights), "-o", str(out), "--no-check"]) == 0
    x = torch.rand(1, 3, 10, 12)
    y = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(["output"], {"input": x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(y - net(x).numpy()).max() < 1e-5
