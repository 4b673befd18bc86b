"""The installed commands (``restoration-train``, ``restoration-test``, ``restoration-infer``) from any folder,
and what they tell the user at start: the ``--force_yml`` override behind an option error, a schedule that does
not fit ``total_iter``."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT, make_sr_pairs, train_options, write_options


def _console_scripts() -> dict[str, str]:
    setup = (ROOT / "setup.py").read_text()
    return dict(re.findall(r'"(restoration-[a-z]+)=([\w.:]+)"', setup))


def test_console_scripts_name_importable_mains() -> None:
    scripts = _console_scripts()
    assert set(scripts) >= {"restoration-train", "restoration-test", "restoration-infer"}
    for target in scripts.values():
        module, attr = target.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), target


def test_train_then_test_from_another_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    """Run in a fresh folder: relative paths in the option files and ``experiments/``, ``results/`` resolve
    against the current folder; a milestone after ``total_iter`` is a warning in the log, not an error."""
    scripts = _console_scripts()
    mains = {name: getattr(importlib.import_module(t.split(":")[0]), t.split(":")[1]) for name, t in scripts.items()}
    work = tmp_path / "work"
    work.mkdir()
    make_sr_pairs(work / "data", n=2, size=16, scale=2)
    monkeypatch.chdir(work)
    opt = train_options((Path("data/HR"), Path("data/LR_x2")), "cmd", **{
        "train.total_iter": 2, "train.warmup_iter": -1, "val": None, "logger.save_checkpoint_freq": 2,
        "logger.use_tb_logger": False, "train.scheduler": {"type": "MultiStepLR", "milestones": [1, 5, 9],
                                                           "gamma": 0.5}})
    del opt["datasets"]["val_1"]
    write_options(opt, Path("train.yml"))

    assert mains["restoration-train"](["-opt", "train.yml"]) == 0
    log = next(Path("experiments/cmd").glob("train_cmd_*.log")).read_text()
    assert "WARNING: train.scheduler.milestones [5, 9] come after train.total_iter 2: they are never reached" in log
    assert Path("experiments/cmd/models/net_g_latest.pth").is_file()

    test_opt = {"name": "cmd_test", "model_type": "SRModel", "scale": 2, "num_gpu": 0,
                "datasets": {"test_1": {"name": "tiny", "type": "PairedImageDataset", "dataroot_gt": "data/HR",
                                        "dataroot_lq": "data/LR_x2", "io_backend": {"type": "disk"}}},
                "network_g": opt["network_g"],
                "path": {"pretrain_network_g": "experiments/cmd/models/net_g_latest.pth"},
                "val": {"save_img": False, "pbar": False,
                        "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2}}}}
    write_options(test_opt, Path("test.yml"))
    assert mains["restoration-test"](["-opt", "test.yml"]) == 0
    assert Path("results/cmd_test/metrics.json").is_file()


def test_an_option_error_from_force_yml_names_the_override(tmp_path: Path, capsys) -> None:
    from restoration.cli.train import main as train_main

    data = make_sr_pairs(tmp_path / "data", n=1, size=16, scale=2)
    cfg = write_options(train_options(data, "force"), tmp_path / "o.yml")
    code = train_main(["-opt", str(cfg), "--root", str(tmp_path), "--force_yml", "train.total_iter=abc",
                       "datasets.train.batch_size_per_gpu=x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--force_yml train.total_iter=abc: 'train': 'total_iter' must be int, got str 'abc'" in err
    assert "--force_yml datasets.train.batch_size_per_gpu=x: 'datasets.train': 'batch_size_per_gpu' must be int" in err


@pytest.mark.parametrize("scheduler, expected", [
    ({"type": "CosineAnnealingRestartLR", "periods": [10, 20]},
     ["train.scheduler.periods sum to 30 but train.total_iter is 20: training stops before the schedule ends"]),
    ({"type": "MultiStepRestartLR", "milestones": [5, 25], "restarts": [30]},
     ["train.scheduler.milestones [25] come after train.total_iter 20: it is never reached",
      "train.scheduler.restarts [30] come after train.total_iter 20: it is never reached"]),
    ({"type": "MultiStepLR", "milestones": [5, 20]}, []),
    ({"type": "CosineAnnealingRestartLR", "periods": [20]}, []),
])
def test_schedule_warnings(scheduler: dict, expected: list[str]) -> None:
    from restoration.options.schedule_warnings import schedule_warnings

    notes = schedule_warnings({"train": {"total_iter": 20, "scheduler": scheduler}})
    assert len(notes) == len(expected) and all(n.startswith(e) for n, e in zip(notes, expected)), notes
