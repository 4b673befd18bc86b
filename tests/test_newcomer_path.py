"""A newcomer's first day, end to end on tiny images: a folder of TIFF photos -> generate_lr.py -> train a few
iterations -> test.py -> restoration-infer, each step as the docs tell it, each step's files checked."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from restoration.cli.infer import main as infer_main
from restoration.cli.test import main as run_test_py
from restoration.cli.train import main as train_main
from restoration.utils.image_io import imread, imwrite
from tests.helpers import train_options, write_options

ROOT = Path(__file__).resolve().parents[1]


def _generate_lr():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("_newcomer_generate_lr", ROOT / "scripts" / "data" / "generate_lr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_tiff_folder_to_restored_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for i in range(4):  # the user's own photos: TIFF, sizes that are not multiples of the scale
        base = rng.integers(0, 256, (5, 6, 3)).astype(np.float32)
        photo = np.kron(base, np.ones((8, 8, 1)))[: 37 + i, : 41 + i] + rng.normal(0, 4, (37 + i, 41 + i, 3))
        imwrite(Path("photos") / f"shot_{i}.tif", np.clip(photo, 0, 255).astype(np.uint8))

    # 1. LR images for training
    assert _generate_lr()(["--input", "photos", "--output", "photos_LRx2", "--scale", "2"]) == 4
    assert "filename_tmpl: '{}x2'" in capsys.readouterr().out

    # 2. a few iterations of training on them, validating on the same pairs (relative paths, as the docs say)
    opt = train_options((Path("photos"), Path("photos_LRx2")), "first_day", **{
        "datasets.train.filename_tmpl": "{}x2", "datasets.val_1.filename_tmpl": "{}x2", "train.total_iter": 4,
        "logger.save_checkpoint_freq": 4, "val.val_freq": 4, "val.save_img": True})
    assert train_main(["-opt", str(write_options(opt, Path("train.yml")))]) == 0
    exp = Path("experiments/first_day")
    weights = exp / "models" / "net_g_latest.pth"
    assert weights.is_file() and any((exp / "visualization").rglob("*_grid.png"))
    log = next(exp.glob("train_first_day_*.log")).read_text()
    assert "validation tiny_val @ iter 4: psnr" in log

    # 3. scores on a test set, with the results page
    test_opt = {"name": "first_day_test", "model_type": "SRModel", "scale": 2, "num_gpu": 0,
                "datasets": {"test_1": {"name": "mine", "type": "PairedImageDataset", "dataroot_gt": "photos",
                                        "dataroot_lq": "photos_LRx2", "filename_tmpl": "{}x2",
                                        "io_backend": {"type": "disk"}}},
                "network_g": opt["network_g"], "path": {"pretrain_network_g": str(weights)},
                "val": {"save_img": True, "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2,
                                                               "test_y_channel": True}}}}
    assert run_test_py(["-opt", str(write_options(test_opt, Path("test.yml")))]) == 0
    results = Path("results/first_day_test")
    scores = json.loads((results / "metrics.json").read_text())
    assert len(scores["mine"]["per_image"]) == 4 and np.isfinite(scores["mine"]["psnr"])
    assert "shot_0" in (results / "index.md").read_text()

    # 4. restore a folder with the trained weights (no option file: read from the checkpoint's folder)
    assert infer_main(["-i", "photos_LRx2", "-o", "restored", "--weights", str(weights), "--no-progress"]) == 0
    out = sorted(Path("restored").iterdir())
    assert len(out) == 4
    first = imread(out[0])
    lq = imread(Path("photos_LRx2") / "shot_0x2.png")
    assert first.shape[:2] == (lq.shape[0] * 2, lq.shape[1] * 2)
