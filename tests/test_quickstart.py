"""The README quickstart, for real: demo data built from scikit-image, train, test, beat bicubic.

Takes a few minutes on 2 CPU cores, so it is marked slow: ``python -m pytest -m slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restoration.cli.test import main as run_test_script
from restoration.cli.train import main as run_train_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_trains_above_bicubic(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the option files use paths relative to the working directory
    assert run_train_script(["-opt", str(ROOT / "options/train/demo/train_SwinIR_light_SRx2_demo.yml")]) == 0
    exp = tmp_path / "experiments" / "SwinIR_light_SRx2_demo"
    assert (exp / "models" / "net_g_latest.pth").is_file()
    assert list((tmp_path / "tb_logger" / "SwinIR_light_SRx2_demo").glob("events.out.tfevents.*"))
    assert run_test_script(["-opt", str(ROOT / "options/test/demo/test_SwinIR_light_SRx2_demo.yml")]) == 0
    results = tmp_path / "results" / "SwinIR_light_SRx2_demo"
    model = json.loads((results / "metrics.json").read_text())["demo_val"]
    bicubic = json.loads((results / "baselines.json").read_text())["Bicubic"]["demo_val"]
    assert model["psnr"] > bicubic["psnr"] + 0.1, (model["psnr"], bicubic["psnr"])
    assert model["ssim"] > bicubic["ssim"]
