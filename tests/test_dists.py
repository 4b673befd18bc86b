"""DISTS equals the ``dists-pytorch`` package, loads only local files, and fails readably without them.

The equality tests give both implementations the same backbone: a random-init torchvision VGG16 (seed 0,
nothing downloaded) saved to a temporary file that our :class:`DISTS` reads, and handed to the package in place of
``models.vgg16(pretrained=True)``; alpha/beta are the published ones the package ships (``DISTS_pytorch/weights.pt``).
Skipped without ``dists-pytorch``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from restoration.losses.dists import DISTS, DISTSLoss, DISTSWeightsError, L2Pooling

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _backbone(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None).eval()
    path = tmp_path / "vgg16_random.pth"
    torch.save(vgg.state_dict(), path)
    return vgg, path


def _package(vgg: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> tuple[torch.nn.Module, Path]:
    """The package's DISTS on ``vgg`` with its published alpha/beta (its own loader reads sys.prefix)."""
    dists_pt = pytest.importorskip("DISTS_pytorch.DISTS_pt")
    weights = Path(dists_pt.__file__).parent / "weights.pt"
    monkeypatch.setattr(dists_pt.models, "vgg16", lambda *args, **kwargs: vgg)
    model = dists_pt.DISTS(load_weights=False)
    state = torch.load(weights, map_location="cpu")
    model.alpha.data, model.beta.data = state["alpha"], state["beta"]
    return model.eval(), weights


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 40), indexing="ij")
    ref = torch.stack([x, y, x * y]).unsqueeze(0).repeat(2, 1, 1, 1)
    ref[1] = torch.rand(3, 48, 40, generator=gen)
    dist = (ref + 0.1 * torch.randn(ref.shape, generator=gen)).clamp(0, 1)
    return ref, dist


def test_dists_equals_the_package_value_and_gradient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vgg, backbone = _backbone(tmp_path)
    official, weights = _package(vgg, monkeypatch)
    ours = DISTS(str(backbone), str(weights))
    ref, dist = _pair()
    expected = official(dist, ref)
    got = ours(dist, ref)
    assert got.shape == (2,)
    assert 0.001 < float(got.min()) and float(got.max()) < 1  # a real distance, not a degenerate 0 or 1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)

    pred_a = dist.clone().requires_grad_(True)
    official(pred_a, ref, require_grad=True, batch_average=True).backward()
    pred_b = dist.clone().requires_grad_(True)
    loss = DISTSLoss(str(backbone), str(weights), loss_weight=2.0)
    value = loss(pred_b, ref)
    torch.testing.assert_close(value, 2 * expected.mean(), rtol=1e-5, atol=1e-7)
    value.backward()
    torch.testing.assert_close(pred_b.grad, 2 * pred_a.grad, rtol=1e-4, atol=1e-9)
    assert all(p.grad is None for p in loss.parameters())


def test_metric_equals_the_package_on_uint8_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from restoration.metrics.dists_metric import calculate_dists

    vgg, backbone = _backbone(tmp_path)
    official, weights = _package(vgg, monkeypatch)
    ref, dist = _pair()
    a, b = ((t[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for t in (dist, ref))
    expected = float(official(torch.from_numpy(a / 255.0).float().permute(2, 0, 1)[None],
                              torch.from_numpy(b / 255.0).float().permute(2, 0, 1)[None]).detach())
    assert calculate_dists(a, b, str(backbone), str(weights)) == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert calculate_dists(b, b, str(backbone), str(weights)) == pytest.approx(0.0, abs=1e-6)


def test_l2_pooling_of_a_constant_is_the_constant_inside() -> None:
    out = L2Pooling(2)(torch.full((1, 2, 6, 6), -3.0, dtype=torch.float64))
    assert out.shape == (1, 2, 3, 3)
    # interior windows cover 9 pixels of 9 (weights sum to 1); the top-left window loses a row and a column
    torch.testing.assert_close(out[..., 1:, 1:], torch.full((1, 2, 2, 2), 3.0, dtype=torch.float64))
    assert float(out[0, 0, 0, 0]) == pytest.approx(3.0 * (9 / 16) ** 0.5)


def test_bf16_under_autocast_gives_the_float32_value(tmp_path: Path) -> None:
    _, backbone = _backbone(tmp_path)
    gen = torch.Generator().manual_seed(0)
    torch.save({"alpha": torch.rand(1, 1475, 1, 1, generator=gen), "beta": torch.rand(1, 1475, 1, 1, generator=gen)},
               tmp_path / "ab.pt")
    loss = DISTSLoss(str(backbone), str(tmp_path / "ab.pt"))
    ref, dist = _pair()
    ref, dist = ref.bfloat16(), dist.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(dist, ref)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss(dist.float(), ref.float()), rtol=0, atol=0)


def test_missing_files_are_one_readable_error_at_build_and_at_option_check(tmp_path: Path) -> None:
    from restoration.losses import register_losses
    from restoration.metrics import register_metrics
    from restoration.options.validate import check_component
    from restoration.registry import LOSS_REGISTRY, METRIC_REGISTRY

    register_losses()
    register_metrics()
    missing = str(tmp_path / "vgg16-397923af.pth")
    with pytest.raises(DISTSWeightsError, match="DISTS backbone_weights_path file not found: .*vgg16-397923af.pth"):
        DISTS(missing, missing)
    with pytest.raises(DISTSWeightsError, match="DISTS needs 'dists_weights_path'"):
        DISTSLoss(backbone_weights_path=missing)
    problems: list[str] = []
    check_component(LOSS_REGISTRY, {"type": "DISTSLoss", "backbone_weights_path": missing,
                                    "dists_weights_path": missing}, "train.losses[1]", problems)
    check_component(METRIC_REGISTRY, {"type": "calculate_dists"}, "val.metrics.dists", problems,
                    call_args=("img", "img2"))
    assert len(problems) == 4 and all("\n" not in p for p in problems)
    assert problems[0] == (
        f"'train.losses[1]': DISTS backbone_weights_path file not found: '{missing}' (expected torchvision's "
        "vgg16-397923af.pth (https://download.pytorch.org/models/vgg16-397923af.pth); nothing is downloaded; "
        "docs/losses_metrics.md)")
    assert "dists-pytorch package's DISTS_pytorch/weights.pt" in problems[1]
    assert problems[3] == ("'val.metrics.dists': DISTS needs 'dists_weights_path': a local copy of the "
                           "dists-pytorch package's DISTS_pytorch/weights.pt (pip download dists-pytorch); nothing "
                           "is downloaded (docs/losses_metrics.md)")


def test_a_file_of_another_network_is_refused(tmp_path: Path) -> None:
    torch.save({"features.0.weight": torch.ones(64, 3, 11, 11)}, tmp_path / "alex.pth")
    torch.save({"alpha": torch.ones(1, 100, 1, 1), "beta": torch.ones(1, 100, 1, 1)}, tmp_path / "ab.pt")
    with pytest.raises(DISTSWeightsError, match=r"has no features.0.weight of shape \(64, 3, 3, 3\)"):
        DISTS(str(tmp_path / "alex.pth"), str(tmp_path / "ab.pt"))
    _, backbone = _backbone(tmp_path)
    with pytest.raises(DISTSWeightsError, match="needs 'alpha' with 1475 values"):
        DISTS(str(backbone), str(tmp_path / "ab.pt"))
