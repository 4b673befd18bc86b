"""Every code example of ``docs/extending.md`` runs, and does what the page says it does.

The ```` ```python ```` blocks are extracted from the page (not copied into a module: a copy would drift from
the text users read), joined in order into one module ``extending_examples.py`` in a temporary folder and
imported from there, so the training test below names them exactly as a research project would,
``model_type: extending_examples:MyGANTrainer``, through the ``module:attr`` route of the page.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest
import torch
import yaml

from restoration.data.base_dataset import DatasetOptionError
from restoration.declare import component_problems
from restoration.registry import (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY,
                                  MODEL_REGISTRY)
from tests.helpers import make_sr_pairs

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "extending.md"
MODULE = "extending_examples"
_REGISTRIES = (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY)


def python_blocks(text: str) -> list[str]:
    """The bodies of the page's ```` ```python ```` blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The page's examples as the importable module ``extending_examples``."""
    folder = tmp_path_factory.mktemp("docs")
    (folder / f"{MODULE}.py").write_text("\n\n".join(python_blocks(PAGE.read_text())))
    before = [r.names() for r in _REGISTRIES]
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(MODULE)
        assert [r.names() for r in _REGISTRIES] == before, "importing the examples registered something"
        yield module
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(MODULE, None)


def test_the_page_has_an_example_of_each_component() -> None:
    code = "\n".join(python_blocks(PAGE.read_text()))
    for name in ("class MyNet(", "class EdgeLoss(", "(BaseDataset):", "def calculate_mae(", "class MyGANTrainer("):
        assert name in code, f"docs/extending.md has no runnable example with {name!r}"


def test_the_architecture_and_loss_examples(examples: ModuleType) -> None:
    with pytest.raises(ValueError, match="embed_dim must be a multiple of 4, got 6"):
        examples.MyNet(embed_dim=6)
    net = examples.MyNet(upscale=2, embed_dim=8)
    assert net(torch.rand(2, 3, 5, 7)).shape == (2, 3, 10, 14)
    assert examples.arch_spec(net).scale == 2
    loss = examples.EdgeLoss(loss_weight=0.5)
    x = torch.rand(1, 3, 8, 8)
    assert float(loss(x, x)) == 0.0 and float(loss(x, torch.rand(1, 3, 8, 8))) > 0.0


def test_the_predictor_example_is_the_architecture_s_protocol(examples: ModuleType) -> None:
    from restoration.inference import InferenceSettings, predictor_for, restore

    torch.manual_seed(0)
    net = examples.MyDenoiser(upscale=1, embed_dim=8).eval()
    lq = torch.rand(1, 3, 20, 13)
    settings = InferenceSettings(tile=8, overlap=2, self_ensemble=True)
    half = predictor_for(net, settings, options={"strength": 0.5})
    assert type(half) is examples.BlendPredictor and half.supports_tiling
    plain = restore(net, lq, spec=examples.arch_spec(net), tile=8, overlap=2, self_ensemble=True)
    torch.testing.assert_close(half(lq), lq + 0.5 * (plain - lq), rtol=0, atol=1e-6)
    assert torch.equal(predictor_for(net, options={"strength": 0})(lq), lq)
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\], got 2"):
        predictor_for(net, options={"strength": 2})
    streamed = half.with_settings(self_ensemble=False)
    assert torch.equal(torch.cat([band for _, band in streamed.rows(lq)], -2), streamed(lq))


def test_the_dataset_example_declares_and_checks_its_options(examples: ModuleType) -> None:
    cls = examples.NoisyGradientDataset
    problems = component_problems(cls, {"type": "NoisyGradientDataset", "sigam": 5, "sigma": -1}, "datasets.train")
    assert problems[0] == "'datasets.train': unknown key 'sigam' (did you mean 'sigma'?)"
    assert "'datasets.train': sigma must be >= 0, got -1" in problems
    with pytest.raises(DatasetOptionError, match="sigam"):
        cls({"type": "NoisyGradientDataset", "sigam": 5})
    val = cls({"type": "NoisyGradientDataset", "phase": "val", "num_images": 3, "size": 16})
    a, b = val[1], val[1]
    assert len(val) == 3 and a["lq"].shape == a["gt"].shape == (3, 16, 16)
    assert torch.equal(a["lq"], b["lq"]) and not torch.equal(a["lq"], a["gt"])  # seeded noise, the same each time
    assert 0.0 <= float(a["lq"].min()) and float(a["lq"].max()) <= 1.0


def _gan_options(tmp_path: Path, name: str) -> dict:
    hr, lr = make_sr_pairs(tmp_path / "data", n=4, size=32, scale=2)
    paired = {"type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr)}
    return {
        "name": name, "model_type": f"{MODULE}:MyGANTrainer", "scale": 2, "num_gpu": 0, "manual_seed": 1,
        "datasets": {"train": {**paired, "gt_size": 16, "batch_size_per_gpu": 2},
                     "val_1": {**paired, "name": "pairs"}},
        "network_g": {"type": f"{MODULE}:MyNet", "upscale": 2, "embed_dim": 8},
        "network_d": {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4},
        "train": {"optim_g": {"type": "Adam", "lr": 1e-3}, "optim_d": {"type": "Adam", "lr": 1e-3},
                  "gan_weight": 0.05, "total_iter": 4,
                  "losses": [{"type": "L1Loss"}, {"type": f"{MODULE}:EdgeLoss", "loss_weight": 0.1}]},
        "val": {"val_freq": 4, "metrics": {"mae": {"type": "calculate_mae", "crop_border": 2, "better": "lower"}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 4, "use_tb_logger": False},
    }


def test_the_gan_trainer_trains_through_the_launcher_with_the_metric(examples: ModuleType, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "gan.yml"
    cfg.write_text(yaml.safe_dump(_gan_options(tmp_path, "gan")))
    monkeypatch.setattr(sys, "argv", ["my_train.py", "-opt", str(cfg), "--root", str(tmp_path)])
    try:
        assert examples.main() == 0
    finally:
        METRIC_REGISTRY.unregister("calculate_mae")
    log = next((tmp_path / "experiments" / "gan").glob("train_gan_*.log")).read_text()
    last = [line for line in log.splitlines() if "iter        4/4" in line][0]
    for label in ("l_pix", "l_edge", "l_gan", "l_d"):
        assert f"| {label}: " in last, last
    assert re.search(r"validation pairs @ iter 4: mae \d+\.\d+", log)
    state = torch.load(next((tmp_path / "experiments" / "gan" / "training_states").glob("4.state")),
                       weights_only=False)
    assert {"net_g", "net_d", "optimizer", "optimizer_d"} <= set(state)


def test_without_its_required_networks_the_gan_trainer_is_refused(examples: ModuleType, tmp_path: Path) -> None:
    """What the page once showed: a trainer of two networks that does not declare the second."""
    from restoration.options.parse import OptionsError, parse_options

    class Undeclared(examples.MyGANTrainer):
        required_networks = ("g",)

    opt = _gan_options(tmp_path, "undeclared")
    opt["model_type"] = "Undeclared"
    opt["val"]["metrics"] = {}
    cfg = tmp_path / "u.yml"
    cfg.write_text(yaml.safe_dump(opt))
    MODEL_REGISTRY.register(Undeclared)
    try:
        with pytest.raises(OptionsError, match="'network_d' is set but Undeclared trains only network_g"):
            parse_options(str(cfg), is_train=True, root=tmp_path)
        opt["model_type"] = f"{MODULE}:MyGANTrainer"
        cfg.write_text(yaml.safe_dump(opt))
        parse_options(str(cfg), is_train=True, root=tmp_path)  # declared: accepted
    finally:
        MODEL_REGISTRY.unregister("Undeclared")
