"""A ``type: module:attr`` imports code: only from a file the user named (``-opt``), only a class of the right kind.

The options saved beside a training run's weights (``run/options/*.yml`` next to ``run/models/``) come with the
weights when someone downloads the folder; infer and export read them without being asked, so they may name
registered components only. Each test checks what a user relies on: no file created by the option file's
"network", one error line naming the file and the type, and the exit code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from restoration.cli import infer
from restoration.archs.build import build_network
from restoration.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
from restoration.registry import RegistryError
from restoration.cli.train import main as train_main
from restoration.utils.image_io import imread, imwrite
from tests.helpers import make_sr_pairs, train_options, write_options

TINY = dict(type="SwinIR", img_size=8, in_chans=3, embed_dim=8, depths=[2], num_heads=[2], window_size=4,
            mlp_ratio=2, upscale=2, upsampler="pixelshuffle", resi_connection="1conv")


class OutsideNet(nn.Module):
    """A research network outside the package, named ``tests.test_untrusted_options:OutsideNet`` (x2)."""

    upscale = 2

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class BesideNet(OutsideNet):
    """The same kind of class, only ever named from a file beside the weights (so never accepted)."""


def _run(tmp_path: Path, network_g: dict, weights: Path | None = None) -> Path:
    """``run/models/net_g_latest.pth`` (a tiny SwinIR) with ``run/options/x.yml`` holding ``network_g``."""
    run = tmp_path / "run"
    (run / "options").mkdir(parents=True)
    (run / "options" / "x.yml").write_text(yaml.safe_dump({"network_g": network_g}))
    if weights is None:
        weights = run / "models" / "net_g_latest.pth"
        weights.parent.mkdir()
        torch.save({"params": build_network(TINY).state_dict()}, weights)
    imwrite(tmp_path / "in" / "a.png", np.zeros((8, 8, 3), np.uint8))
    return weights


def test_options_beside_downloaded_weights_run_no_code(tmp_path: Path, capsys) -> None:
    """The issue's reproduction: `subprocess:getoutput` beside the weights used to run `cmd`."""
    marker = tmp_path / "x"
    weights = _run(tmp_path, {"type": "subprocess:getoutput", "cmd": f"touch {marker}"})
    code = infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert not marker.exists()
    assert code == 1
    assert len(err) == 1, err
    assert "RegistryError" in err[0] and str(tmp_path / "run" / "options" / "x.yml") in err[0]
    assert "'subprocess:getoutput'" in err[0] and "-opt" in err[0]

    from restoration.deploy.network import load_network  # export resolves the network the same way

    with pytest.raises(RegistryError, match="subprocess:getoutput"):
        load_network(str(weights))
    assert not marker.exists()


def test_even_a_real_network_class_beside_the_weights_is_refused(tmp_path: Path, capsys) -> None:
    weights = _run(tmp_path, {"type": "tests.test_untrusted_options:BesideNet"})
    code = infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "x.yml: arch type 'tests.test_untrusted_options:BesideNet' is an import path" in err
    assert not (tmp_path / "out").exists()


def test_an_import_path_to_a_network_class_works_from_an_explicit_opt_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = OutsideNet().eval()
    weights = tmp_path / "outside.pth"
    torch.save({"params": net.state_dict()}, weights)
    (tmp_path / "net.yml").write_text(yaml.safe_dump({"network_g": {"type": "tests.test_untrusted_options:OutsideNet"}}))
    img = np.random.default_rng(0).integers(0, 256, size=(8, 8, 3)).astype(np.uint8)
    imwrite(tmp_path / "in" / "a.png", img)
    code = infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "-opt", str(tmp_path / "net.yml"), "--no-progress"])
    assert code == 0
    assert imread(tmp_path / "out" / "a.png").shape == (16, 16, 3)


def test_a_function_is_refused_even_from_an_explicit_opt_file(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "x"
    weights = _run(tmp_path, TINY)
    (tmp_path / "net.yml").write_text(
        yaml.safe_dump({"network_g": {"type": "subprocess:getoutput", "cmd": f"touch {marker}"}}))
    code = infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "-opt", str(tmp_path / "net.yml"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert not marker.exists()
    assert code == 1 and len(err) == 1, err
    assert "arch type 'subprocess:getoutput' is a function, not an nn.Module subclass" in err[0]
    assert "net.yml" in err[0]


def test_train_py_accepts_only_classes_of_each_kind(tmp_path: Path, capsys) -> None:
    """A -opt file is the user's, yet a path must still name a class of the slot's kind (no callable)."""
    data = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)
    opt = train_options(data, "kinds")
    marker = tmp_path / "x"
    opt["model_type"] = "os:system"
    opt["network_g"] = {"type": "subprocess:getoutput", "cmd": f"touch {marker}"}
    opt["datasets"]["train"]["type"] = "tests.test_untrusted_options:OutsideNet"  # a class, of another kind
    opt["train"]["losses"] = [{"type": "subprocess:call", "args": ["touch", str(marker)]}]
    opt["val"]["metrics"]["psnr"]["type"] = "subprocess:check_output"
    cfg = write_options(opt, tmp_path / "kinds.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert not marker.exists() and "Traceback" not in err
    for expected in ("model type 'os:system' is a builtin_function_or_method, not a Trainer subclass",
                     "arch type 'subprocess:getoutput' is a function, not an nn.Module subclass",
                     "dataset type 'tests.test_untrusted_options:OutsideNet' is a class of another kind, "
                     "not a torch Dataset subclass",
                     "loss type 'subprocess:call' is a function, not an nn.Module subclass",
                     "metric type 'subprocess:check_output' is an import path; a metric is named by its "
                     "registered name only"):
        assert expected in err, (expected, err)
    assert not (tmp_path / "experiments").exists()


@pytest.mark.parametrize("registry,path", [
    (ARCH_REGISTRY, "torch.nn:Identity"),
    (LOSS_REGISTRY, "torch.nn:L1Loss"),
    (DATASET_REGISTRY, "torch.utils.data:TensorDataset"),
    (MODEL_REGISTRY, "restoration.models.sr_model:SRModel"),
])
def test_the_registry_imports_a_path_only_for_a_user_named_file(registry, path: str) -> None:
    with pytest.raises(RegistryError, match="beside.yml: .* is an import path .* refused"):
        registry.get(path, source="beside.yml")
    cls = registry.get(path, user_named=True, source="mine.yml")
    assert isinstance(cls, type)
    assert registry.get(path) is cls  # accepted once: the trainer's later look-ups need not say so again
    with pytest.raises(RegistryError, match="registered name only"):
        METRIC_REGISTRY.get("restoration.metrics.psnr_ssim:calculate_psnr", user_named=True)
