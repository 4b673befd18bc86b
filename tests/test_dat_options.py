"""DAT's own option files (zhengchen1999/DAT options/Train/train_DAT_x2.yml, options/Test/test_DAT_x2.yml and
test_single_x2.yml) run with only their data paths changed. The files here are small equivalents: the upstream
keys and values, a tiny DAT, data from make_sr_pairs, iteration counts of 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from restoration import build_network
from restoration.options.parse import OptionsError, parse_options
from restoration.options.upstream import translate_upstream
from tests.helpers import make_sr_pairs, train_and_read_log, write_options

# DAT's network_g keys, tiny widths
TINY_DAT = {"type": "DAT", "upscale": 2, "in_chans": 3, "img_size": 8, "img_range": 1.0, "split_size": [2, 4],
            "depth": [2], "embed_dim": 32, "num_heads": [2], "expansion_factor": 1, "resi_connection": "1conv"}

MODEL_NOTICE = ("model_type DATModel is SRModel here (DAT's SRModel; its test-time partition val.use_chop is "
                "translated by restoration/options/upstream_dat.py)")
CHOP_OFF_NOTICE = "val.use_chop: false ignored (whole images, as here)"


def task_notice(*phases: str) -> str:
    names = ", ".join(f"datasets.{p}.task" for p in phases)
    return f"{names} ('SR') ignored: DAT's dataset tag, which no DAT code reads either"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("dat_options"), n=2, size=32, scale=2)


def _paired(name: str, hr: Path, lr: Path) -> dict[str, Any]:
    return {"task": "SR", "name": name, "type": "PairedImageDataset", "dataroot_gt": str(hr),
            "dataroot_lq": str(lr), "filename_tmpl": "{}", "io_backend": {"type": "disk"}}


def dat_train(hr: Path, lr: Path) -> dict[str, Any]:
    """options/Train/train_DAT_x2.yml: its keys and values (data paths, sizes and iteration counts changed)."""
    train_set = _paired("DF2K", hr, lr) | {
        "gt_size": 16, "use_hflip": True, "use_rot": True, "use_shuffle": True, "num_worker_per_gpu": 0,
        "batch_size_per_gpu": 2, "dataset_enlarge_ratio": 1, "prefetch_mode": None}
    return {
        "name": "train_DAT_x2", "model_type": "DATModel", "scale": 2, "num_gpu": "auto", "manual_seed": 10,
        "datasets": {"train": train_set, "val": _paired("Set5", hr, lr)},
        "network_g": dict(TINY_DAT),
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {"optim_g": {"type": "Adam", "lr": 2e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
                  "scheduler": {"type": "MultiStepLR", "milestones": [1, 2], "gamma": 0.5},
                  "total_iter": 2, "warmup_iter": -1,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}},
        "val": {"val_freq": 2.0, "save_img": False,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 2.0, "use_tb_logger": False,
                   "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "nccl", "port": 29500},
    }


def dat_test(hr: Path, lr: Path, weights: Path) -> dict[str, Any]:
    """options/Test/test_DAT_x2.yml (two of its five sets) plus test_single_x2.yml's SingleImageDataset."""
    return {
        "name": "test_DAT_x2", "model_type": "DATModel", "scale": 2, "num_gpu": 1, "manual_seed": 10,
        "datasets": {
            "test_1": _paired("Set5", hr, lr),
            "test_2": _paired("Set14", hr, lr),
            "test_3": {"name": "Single", "type": "SingleImageDataset", "dataroot_lq": str(lr),
                       "io_backend": {"type": "disk"}},
        },
        "network_g": dict(TINY_DAT),
        "path": {"pretrain_network_g": str(weights), "strict_load_g": True},
        "val": {"save_img": True, "suffix": None, "use_chop": False, "metrics": {
            "psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True},
            "ssim": {"type": "calculate_ssim", "crop_border": 2, "test_y_channel": True}}},
    }


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DAT's weights as DAT's released files store them ({'params': ...})."""
    torch.manual_seed(0)
    net = build_network(TINY_DAT)
    path = tmp_path_factory.mktemp("dat_weights") / "DAT_x2.pth"
    torch.save({"params": net.state_dict()}, path)
    return path


def test_dat_train_file_parses_with_one_notice_per_translation(data, tmp_path: Path) -> None:
    notices: list[str] = []
    opt = parse_options(str(write_options(dat_train(*data), tmp_path / "t.yml")), is_train=True, root=tmp_path,
                        notices=notices)
    assert notices == [MODEL_NOTICE, task_notice("train", "val")]
    assert "task" not in opt["datasets"]["train"] and "task" not in opt["datasets"]["val"]


def test_dat_train_file_trains_two_iterations_through_train_py(data, tmp_path: Path) -> None:
    _, head = train_and_read_log(write_options(dat_train(*data), tmp_path / "t.yml"), tmp_path, "train_DAT_x2")
    for notice in (MODEL_NOTICE, task_notice("train", "val")):
        assert head.count(notice) == 1, notice


def test_dat_test_file_parses_with_one_notice_per_translation(data, weights, tmp_path: Path) -> None:
    notices: list[str] = []
    opt = parse_options(str(write_options(dat_test(*data, weights), tmp_path / "t.yml")), is_train=False,
                        overrides=["num_gpu=0"], root=tmp_path, notices=notices)
    assert notices == [MODEL_NOTICE, task_notice("test_1", "test_2"), CHOP_OFF_NOTICE]
    assert "use_chop" not in opt["val"] and "tile" not in opt["val"]


def test_dat_test_file_runs_through_test_py(data, weights, tmp_path: Path) -> None:
    from restoration.cli.test import main as run_test_script

    cfg = write_options(dat_test(*data, weights), tmp_path / "t.yml")
    assert run_test_script(["-opt", str(cfg), "--root", str(tmp_path), "--force_yml", "num_gpu=0"]) == 0
    res = tmp_path / "results" / "test_DAT_x2"
    metrics = json.loads((res / "metrics.json").read_text())
    assert metrics["Set5"]["num_images"] == metrics["Set14"]["num_images"] == metrics["Single"]["num_images"] == 2
    assert metrics["Set5"]["psnr"] == metrics["Set14"]["psnr"]  # the same images and weights
    assert "notes" not in metrics["Set5"]  # whole images: use_chop false
    assert len(list((res / "visualization" / "Single").glob("*.png"))) == 2
    log = next(res.glob("test_*.log")).read_text()
    for notice in (MODEL_NOTICE, task_notice("test_1", "test_2"), CHOP_OFF_NOTICE):
        assert log.count(notice) == 1, notice


def test_use_chop_true_is_tiled_validation_of_the_same_largest_piece() -> None:
    """DAT's pieces are at most 200 px plus 16-px margins on both sides: 232-px tiles overlapping by 32."""
    opt = {"model_type": "DATModel", "val": {"use_chop": True}}
    notices, problems = translate_upstream(opt)
    assert problems == [] and opt["val"] == {"tile": {"tile_size": 232, "tile_overlap": 32}}
    assert notices[1] == ("val.use_chop: true (DAT's partition into pieces of at most 200 px with 16-px margins) is "
                          "val.tile {tile_size: 232, tile_overlap: 32} here: tiles of the same largest size, but the "
                          "seams differ from DAT's (other places, blended over the overlap instead of cut)")


@pytest.mark.parametrize("val, problem", [
    ({"use_chop": True, "tile": {"tile_size": 64}}, "'val.use_chop' true (DAT's test-time partition) and 'val.tile' "
                                                    "are both set; keep only val.tile"),
    ({"use_chop": "yes"}, "'val.use_chop' (DAT's test-time partition) is true or false, got 'yes'"),
])
def test_use_chop_that_cannot_be_translated_is_an_options_error(data, tmp_path: Path, val: dict, problem: str) -> None:
    opt = {"model_type": "DATModel", "val": dict(val)}
    assert translate_upstream(opt)[1] == [problem]
    full = dat_test(*data, tmp_path / "absent.pth") | {"val": dict(val)}
    full["path"] = {}
    with pytest.raises(OptionsError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("'", "'")):
        parse_options(str(write_options(full, tmp_path / "t.yml")), is_train=False, overrides=["num_gpu=0"],
                      root=tmp_path)
