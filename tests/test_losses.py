"""Pixel losses against hand computations; perceptual loss on a random-init VGG19 state dict saved locally."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from restoration.losses.basic_loss import CharbonnierLoss, L1Loss, MSELoss
from restoration.losses.perceptual_loss import PerceptualLoss, vgg_layer_names
from restoration.registry import LOSS_REGISTRY, build_from_registry

PRED = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])  # (1, 1, 2, 2)
TARGET = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])  # differences -1, 0, 2, 3


# ------------------------------------------------------------------------------------------------------- pixel losses


def test_l1_and_mse_by_hand() -> None:
    assert L1Loss()(PRED, TARGET).item() == pytest.approx((1 + 0 + 2 + 3) / 4)
    assert L1Loss(reduction="sum")(PRED, TARGET).item() == pytest.approx(6.0)
    assert MSELoss()(PRED, TARGET).item() == pytest.approx((1 + 0 + 4 + 9) / 4)
    assert MSELoss(loss_weight=0.5, reduction="sum")(PRED, TARGET).item() == pytest.approx(7.0)
    none = L1Loss(loss_weight=2.0, reduction="none")(PRED, TARGET)
    assert none.shape == PRED.shape
    assert none.flatten().tolist() == [2.0, 0.0, 4.0, 6.0]


def test_charbonnier_eps_and_value() -> None:
    zero = torch.zeros(1, 3, 4, 4)
    assert CharbonnierLoss()(zero, zero).item() == pytest.approx(1e-6, rel=1e-6)  # sqrt(1e-12)
    assert CharbonnierLoss(eps=1e-6)(zero, zero).item() == pytest.approx(1e-3, rel=1e-6)
    expected = sum(math.sqrt(d * d + 1e-2) for d in (-1, 0, 2, 3)) / 4
    assert CharbonnierLoss(eps=1e-2)(PRED, TARGET).item() == pytest.approx(expected, rel=1e-6)
    assert "eps=1e-12" in repr(CharbonnierLoss())


def test_weight_map_reductions() -> None:
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2).repeat(1, 2, 1, 1)  # (1, 2, 2, 2)
    target = torch.zeros_like(pred)
    w1 = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 2, 2)
    # One-channel weight applies to both channels: sum = 2 * (1 + 4) = 10; mean divides by sum(w) * C = 4.
    assert L1Loss(reduction="sum")(pred, target, weight=w1).item() == pytest.approx(10.0)
    assert L1Loss()(pred, target, weight=w1).item() == pytest.approx(10.0 / 4)
    w2 = torch.ones_like(pred)
    w2[:, 1] = 0  # per-channel weights: only channel 0 counts
    assert L1Loss()(pred, target, weight=w2).item() == pytest.approx(10.0 / 4)
    assert L1Loss(reduction="none")(pred, target, weight=w1)[0, 1].flatten().tolist() == [1.0, 0.0, 0.0, 4.0]
    with pytest.raises(ValueError, match="weight shape"):
        L1Loss()(pred, target, weight=torch.ones(1, 3, 2, 2))


def test_loss_argument_errors() -> None:
    with pytest.raises(ValueError, match="unsupported reduction 'avg'"):
        L1Loss(reduction="avg")
    with pytest.raises(ValueError, match=r"\(1, 1, 2, 2\).*\(1, 1, 2, 3\)"):
        MSELoss()(PRED, torch.zeros(1, 1, 2, 3))


def test_losses_build_from_registry() -> None:
    loss = build_from_registry(LOSS_REGISTRY, {"type": "CharbonnierLoss", "loss_weight": 2.0, "eps": 1e-6})
    assert isinstance(loss, CharbonnierLoss) and loss.loss_weight == 2.0 and loss.eps == 1e-6
    assert LOSS_REGISTRY.get("L1Loss") is L1Loss and LOSS_REGISTRY.get("MSELoss") is MSELoss
    assert LOSS_REGISTRY.get("PerceptualLoss") is PerceptualLoss


# --------------------------------------------------------------------------------------------------- perceptual loss


# torchvision's vgg19().features: 3x3 convs (each + ReLU) at these indices, 2x2 max-pools at 4, 9, 18, 27, 36.
VGG19_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
VGG19_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)
VGG19_POOL_INDICES = (4, 9, 18, 27, 36)


@pytest.fixture(scope="module")
def vgg19_state() -> dict[str, torch.Tensor]:
    """A random-init VGG19 state dict in torchvision's layout (``features.N.weight/bias`` + classifier).

    Layers with 256+ channels share one random 3x3 filter per output channel across input channels (a stride-0
    expanded tensor), which keeps the file ~100 KB instead of 80 MB while every key and shape is the real one.
    """
    gen = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    in_ch = 3
    for idx, out_ch in zip(VGG19_CONV_INDICES, VGG19_WIDTHS):
        if out_ch < 256:
            weight = torch.randn(out_ch, in_ch, 3, 3, generator=gen) * math.sqrt(2.0 / (9 * in_ch))
        else:
            weight = (torch.randn(out_ch, 1, 3, 3, generator=gen) * math.sqrt(2.0 / 9) / in_ch).expand(
                -1, in_ch, -1, -1
            )
        state[f"features.{idx}.weight"] = weight
        state[f"features.{idx}.bias"] = torch.randn(out_ch, generator=gen) * 0.01
        in_ch = out_ch
    state["classifier.6.bias"] = torch.zeros(1000)  # the real file has a classifier; it must be ignored
    return state


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory: pytest.TempPathFactory, vgg19_state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(vgg19_state, path)
    return path


def _reference_features(
    state: dict[str, torch.Tensor], x: torch.Tensor, wanted: tuple[int, ...]
) -> dict[int, torch.Tensor]:
    """Outputs of ``features[i]`` for ``i`` in ``wanted``, computed with functional ops from the torchvision layout."""
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1
    )
    out = {}
    for idx in range(max(wanted) + 1):
        if idx in VGG19_CONV_INDICES:
            x = torch.nn.functional.conv2d(x, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"], padding=1)
        elif idx in VGG19_POOL_INDICES:
            x = torch.nn.functional.max_pool2d(x, 2)
        else:
            x = torch.relu(x)
        if idx in wanted:
            out[idx] = x
    return out


def test_perceptual_missing_weights_file_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty hub cache
    with pytest.raises(FileNotFoundError, match=r"vgg_weights_path is not set and vgg19-dcbb9e9d\.pth is not in "
                                                r"experiments/pretrained_models/vgg19-dcbb9e9d\.pth and .*torch_home"):
        PerceptualLoss({"conv5_4": 1.0})
    with pytest.raises(FileNotFoundError, match=r"not found: '/nonexistent/vgg\.pth' \(vgg_weights_path.*vgg19-dcbb9e9d"):
        PerceptualLoss({"conv5_4": 1.0}, vgg_weights_path="/nonexistent/vgg.pth")


def test_perceptual_weights_found_where_basicsr_users_have_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 vgg19_file: Path) -> None:
    """BasicSR's files name no VGG file (torchvision downloads it into torch's hub cache): that copy is used,
    and without one the option check reports it before anything starts."""
    from restoration.losses import register_losses
    from restoration.options.validate import check_component
    from restoration.registry import LOSS_REGISTRY

    register_losses()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    entry = {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1.0}}
    problems: list[str] = []
    check_component(LOSS_REGISTRY, dict(entry), "train.perceptual_opt", problems)
    assert len(problems) == 1 and problems[0].startswith("'train.perceptual_opt': VGG weights file not found: "
                                                         "vgg_weights_path is not set")
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "vgg19-dcbb9e9d.pth").write_bytes(vgg19_file.read_bytes())
    problems = []
    check_component(LOSS_REGISTRY, dict(entry), "train.perceptual_opt", problems)
    assert problems == []
    from_cache = PerceptualLoss({"conv5_4": 1.0})
    explicit = PerceptualLoss({"conv5_4": 1.0}, vgg_weights_path=str(vgg19_file))
    assert all(torch.equal(a, b) for a, b in zip(from_cache.state_dict().values(), explicit.state_dict().values()))
    # experiments/pretrained_models/ comes first
    local = tmp_path / "experiments" / "pretrained_models"
    local.mkdir(parents=True)
    torch.save({k: v * 2 for k, v in torch.load(vgg19_file, weights_only=True).items()}, local / "vgg19-dcbb9e9d.pth")
    first = PerceptualLoss({"conv5_4": 1.0})
    assert not torch.equal(next(iter(first.vgg.features.parameters())), next(iter(explicit.vgg.features.parameters())))


def test_perceptual_bad_options(vgg19_file: Path) -> None:
    with pytest.raises(ValueError, match="unknown VGG layer 'conv6_1'"):
        PerceptualLoss({"conv6_1": 1.0}, vgg_weights_path=str(vgg19_file))
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss({"conv1_1": 1.0}, vgg_weights_path=str(vgg19_file), criterion="l3")


def test_perceptual_truncated_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "partial.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, path)
    with pytest.raises(ValueError, match=r"lacks VGG vgg19 feature weights \['2\.bias', '2\.weight'\]"):
        PerceptualLoss({"relu1_2": 1.0}, vgg_weights_path=str(path))
    torch.save({"features.0.weight": torch.zeros(64, 1, 3, 3), "features.0.bias": torch.zeros(64)}, path)
    with pytest.raises(ValueError, match=r"(?s)does not match VGG vgg19.*size mismatch for 0.weight"):
        PerceptualLoss({"conv1_1": 1.0}, vgg_weights_path=str(path))


def test_perceptual_loss_matches_functional_reference(vgg19_file: Path, vgg19_state: dict) -> None:
    assert vgg_layer_names("vgg19")[34] == "conv5_4" and len(vgg_layer_names("vgg19")) == 37
    torch.manual_seed(1)
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    gt = torch.rand(1, 3, 16, 16)

    loss = PerceptualLoss({"conv5_4": 1.0, "relu2_2": 0.5}, vgg_weights_path=str(vgg19_file), perceptual_weight=2.0)
    percep, style = loss(x, gt)
    assert style is None
    with torch.no_grad():
        ref = _reference_features(vgg19_state, torch.cat([x, gt]), (8, 34))  # relu2_2 = 8, conv5_4 = 34
    expected = 2.0 * ((ref[34][0] - ref[34][1]).abs().mean() + 0.5 * (ref[8][0] - ref[8][1]).abs().mean())
    assert ref[34].abs().mean() > 1e-3  # the random net does not collapse to its biases
    assert percep.item() == pytest.approx(expected.item(), rel=1e-5)
    # KAIR-style integer indices (also as YAML strings) select the same layers.
    kair = PerceptualLoss({34: 1.0, "8": 0.5}, vgg_weights_path=str(vgg19_file))
    assert sorted(kair.vgg.layer_indices.values()) == sorted(loss.vgg.layer_indices.values()) == [8, 34]
    # Gradients reach the prediction only; the VGG stays frozen.
    percep.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())
    assert not loss.vgg.training and not loss.train().vgg.training


def test_style_loss_and_criteria(vgg19_file: Path) -> None:
    torch.manual_seed(2)
    x, gt = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    common = dict(vgg_weights_path=str(vgg19_file), use_input_norm=False)
    l2 = PerceptualLoss({"conv1_1": 1.0}, criterion="l2", style_weight=3.0, **common)
    fro = PerceptualLoss({"conv1_1": 1.0}, criterion="fro", perceptual_weight=0.0, style_weight=1.0, **common)
    conv = l2.vgg.features[0]
    with torch.no_grad():
        fx, fg = conv(x), conv(gt)
        gram_x = fx.flatten(2) @ fx.flatten(2).transpose(1, 2) / (64 * 16 * 16)
        gram_g = fg.flatten(2) @ fg.flatten(2).transpose(1, 2) / (64 * 16 * 16)
        percep, style = l2(x, gt)
        assert percep.item() == pytest.approx(((fx - fg) ** 2).mean().item(), rel=1e-5)
        assert style.item() == pytest.approx(3.0 * ((gram_x - gram_g) ** 2).mean().item(), rel=1e-5)
        p_fro, s_fro = fro(x, gt)
        assert p_fro is None
        assert s_fro.item() == pytest.approx(torch.sqrt(((gram_x - gram_g) ** 2).sum()).item(), rel=1e-5)
    # range_norm maps [-1, 1] inputs to [0, 1] first.
    rn = PerceptualLoss({"conv1_1": 1.0}, range_norm=True, **common)
    base = PerceptualLoss({"conv1_1": 1.0}, **common)
    assert rn(x * 2 - 1, gt * 2 - 1)[0].item() == pytest.approx(base(x, gt)[0].item(), rel=1e-5)
