"""Every network a trainer holds gets BasicSR's weight files: a GAN run writes ``net_d_<iter>.pth`` and
``net_d_latest.pth`` beside net_g's (what ``path.pretrain_network_d`` starts a fine-tuning from, as Real-ESRGAN's
RealESRGAN_x4plus_netD.pth does), pruned by ``logger.keep_last`` and written all or nothing with the rest of the
checkpoint. A tiny ESRGAN (128² patches: VGGStyleDiscriminator scores whole patches of its input_size)."""

from __future__ import annotations

import errno
import logging
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

from restoration.cli.train import main as train_main
from restoration.errors import WeightsError
from restoration.models import register_models
from restoration.registry import MODEL_REGISTRY
from tests.helpers import make_sr_pairs, write_options

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_G = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 4, "num_block": 1,
          "num_grow_ch": 2}
TINY_D = {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 4, "input_size": 128}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("gan_weights"), n=2, size=128, scale=4)


def _options(data: tuple[Path, Path], name: str, **logger: Any) -> dict[str, Any]:
    hr, lr = data
    adam = {"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99], "weight_decay": 0}
    return {
        "name": name, "model_type": "ESRGANModel", "scale": 4, "num_gpu": 0, "manual_seed": 0,
        "datasets": {"train": {"type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                               "io_backend": {"type": "disk"}, "gt_size": 128, "num_worker_per_gpu": 0,
                               "batch_size_per_gpu": 1}},
        "network_g": dict(TINY_G), "network_d": dict(TINY_D),
        "train": {"ema_decay": 0.999, "optim_g": dict(adam), "optim_d": dict(adam), "total_iter": 4,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1e-2},
                  "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 5e-3}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": False, **logger},
    }


def _train(opt: dict[str, Any], tmp_path: Path) -> int:
    return train_main(["-opt", str(write_options(opt, tmp_path / f"{opt['name']}.yml")), "--root", str(tmp_path)])


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 iterations, a checkpoint every 2, keep_last 1: the experiment folder."""
    root = tmp_path_factory.mktemp("gan_run")
    assert _train(_options(data, "gan", keep_last=1), root) == 0
    return root / "experiments" / "gan"


def test_a_gan_run_writes_net_d_files_beside_net_g_and_keep_last_prunes_both(run: Path) -> None:
    assert sorted(p.name for p in (run / "models").iterdir()) == [
        "net_d_4.pth", "net_d_latest.pth", "net_g_4.pth", "net_g_latest.pth"]  # net_*_2.pth pruned
    assert sorted(p.name for p in (run / "training_states").iterdir()) == ["4.state"]


def test_the_weight_files_hold_the_state_s_networks_in_basicsr_s_layout(run: Path) -> None:
    state = _load(run / "training_states" / "4.state")
    net_d, latest_d = _load(run / "models" / "net_d_4.pth"), _load(run / "models" / "net_d_latest.pth")
    assert list(net_d) == ["params"]  # no EMA of the discriminator
    assert _equal(net_d["params"], state["net_d"]) and _equal(latest_d["params"], state["net_d"])
    net_g = _load(run / "models" / "net_g_4.pth")
    assert list(net_g) == ["params", "params_ema"]
    assert _equal(net_g["params"], state["net_g"]) and _equal(net_g["params_ema"], state["ema"])


def _trainer(opt: dict[str, Any]) -> Any:
    register_models()
    return MODEL_REGISTRY.get("ESRGANModel")(opt, torch.device("cpu"))


def test_pretrain_network_d_starts_from_a_net_d_file(data, run: Path, caplog) -> None:
    file = run / "models" / "net_d_latest.pth"
    saved = _load(file)["params"]
    opt = _options(data, "finetune")
    fresh = _trainer(opt).networks["d"].state_dict()
    assert not _equal(fresh, saved)  # so the next check can fail
    opt["path"] = {"pretrain_network_d": str(file)}
    with caplog.at_level(logging.INFO, logger="restoration"):
        model = _trainer(opt)
    assert _equal(model.networks["d"].state_dict(), saved)
    assert any(r.getMessage().startswith(f"pretrained net_d: {file}") for r in caplog.records)
    opt["path"]["param_key_d"] = "params"  # BasicSR's param_key_d names the entry explicitly
    assert _equal(_trainer(opt).networks["d"].state_dict(), saved)


def test_pretrain_network_d_is_strict_by_default(data, run: Path) -> None:
    opt = _options(data, "wrong")
    opt["path"] = {"pretrain_network_d": str(run / "models" / "net_g_latest.pth")}  # the generator's file
    with pytest.raises(WeightsError):
        _trainer(opt)


@pytest.mark.parametrize("failing", ["net_d_4.pth", ".tmp_net_g_latest.pth"])
def test_a_failed_save_removes_every_file_of_its_iteration_and_keeps_the_latest_files(
        data, tmp_path: Path, monkeypatch, capsys, failing: str) -> None:
    """The disk fills up while iteration 4's net_d file, or the last staged latest file, is written: the run
    stops with one line, and the folder holds iteration 2's checkpoint only, latest files included."""
    real_mkstemp = tempfile.mkstemp
    calls = {"n": 0}

    def full_at_4(*args, **kwargs):
        if kwargs.get("suffix") == failing:
            calls["n"] += 1
            if failing == "net_d_4.pth" or calls["n"] == 2:  # the staged latest file: on iteration 4's save
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", full_at_4)
    assert _train(_options(data, "full"), tmp_path) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    exp = tmp_path / "experiments" / "full"
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["2.state"]
    assert sorted(p.name for p in (exp / "models").iterdir()) == [
        "net_d_2.pth", "net_d_latest.pth", "net_g_2.pth", "net_g_latest.pth"]
    state = _load(exp / "training_states" / "2.state")
    assert _equal(_load(exp / "models" / "net_d_latest.pth")["params"], state["net_d"])
    assert _equal(_load(exp / "models" / "net_g_latest.pth")["params"], state["net_g"])
