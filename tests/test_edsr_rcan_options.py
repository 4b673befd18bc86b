"""The EDSR / RCAN option files, and BasicSR's own ones run with only their data paths changed.

Validity of every file under options/ is swept by tests/test_option_files.py; here what is specific to the two
families: the files build the released networks, BasicSR's train_EDSR_Lx3.yml (x3 started from an x2 checkpoint
with ``strict_load_g: false``) trains and its stale test_RCAN.yml (pre-1.0 top-level ``save_img`` / ``suffix`` /
``crop_border``) tests, each with one notice per translation, and a bad network option is an options error.
The upstream files are small equivalents: their keys and values, with tiny networks and data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from restoration import build_network
from restoration.archs import register_archs
from restoration.options.parse import OptionsError, parse_options
from restoration.options.yaml_io import dump_yaml, load_yaml
from tests.helpers import make_sr_pairs, write_options

pytestmark = pytest.mark.usefixtures("one_torch_thread")

register_archs()

ROOT = Path(__file__).resolve().parents[1] / "options"
_SHIFT = {"num_in_ch": 3, "num_out_ch": 3, "img_range": 255.0, "rgb_mean": [0.4488, 0.4371, 0.4040]}
TINY_EDSR = {"type": "EDSR", **_SHIFT, "num_feat": 8, "num_block": 2, "upscale": 3, "res_scale": 0.1}
TINY_RCAN = {"type": "RCAN", **_SHIFT, "num_feat": 8, "num_group": 2, "num_block": 2, "squeeze_factor": 4,
             "upscale": 2, "res_scale": 1}


@pytest.mark.parametrize("path, count", [
    ("train/EDSR/train_EDSR_Mx2.yml", 1_369_859), ("train/EDSR/train_EDSR_Lx4.yml", 43_089_923),
    ("test/EDSR/test_EDSR_Mx3.yml", 1_554_499), ("test/EDSR/test_EDSR_Lx2.yml", 40_729_603),
    ("train/RCAN/train_RCAN_x2.yml", 15_444_643), ("test/RCAN/test_RCAN_x4.yml", 15_592_355),
])
def test_files_build_the_released_networks(meta_param_count: Callable, path: str, count: int) -> None:
    assert meta_param_count(load_yaml(ROOT / path)["network_g"]) == count  # counted on BasicSR's classes


def test_x3_and_x4_start_from_x2_without_its_upsampler() -> None:
    for size in ("M", "L"):
        for s in (3, 4):
            opt = load_yaml(ROOT / f"train/EDSR/train_EDSR_{size}x{s}.yml")
            assert opt["path"]["pretrain_network_g"].startswith(f"experiments/EDSR_{size}x2_DIV2K/")
            assert opt["path"]["strict_load_g"] is False
            assert opt["datasets"]["train"]["gt_size"] == 48 * s


def basicsr_edsr_lx3_train(hr: Path, lr: Path, pretrain: str) -> dict[str, Any]:
    """BasicSR options/train/EDSR/train_EDSR_Lx3.yml: its keys and values (data paths, the x2 checkpoint, sizes,
    iteration counts and the network's width changed; num_gpu 0 on this CPU-only machine)."""
    return {
        "name": "205_EDSR_Lx3_f256b32_DIV2K_300k_B16G1_204pretrain_wandb", "model_type": "SRModel", "scale": 3,
        "num_gpu": 0, "manual_seed": 10,
        "datasets": {
            "train": {"name": "DIV2K", "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                      "filename_tmpl": "{}", "io_backend": {"type": "disk"}, "gt_size": 18, "use_hflip": True,
                      "use_rot": True, "num_worker_per_gpu": 0, "batch_size_per_gpu": 2,
                      "dataset_enlarge_ratio": 1, "prefetch_mode": None},
            "val": {"name": "Set5", "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                    "io_backend": {"type": "disk"}},
        },
        "network_g": dict(TINY_EDSR),
        "path": {"pretrain_network_g": pretrain, "strict_load_g": False, "resume_state": None},
        "train": {"ema_decay": 0.999, "optim_g": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
                  "scheduler": {"type": "MultiStepLR", "milestones": [2], "gamma": 0.5},
                  "total_iter": 2, "warmup_iter": -1,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}},
        "val": {"val_freq": 2.0, "save_img": False,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 3, "test_y_channel": False}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 2.0, "use_tb_logger": False,
                   "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "nccl", "port": 29500},
    }


def basicsr_rcan_test(hr: Path, lr: Path, weights: str) -> dict[str, Any]:
    """BasicSR options/test/RCAN/test_RCAN.yml (data paths, weights and the network's size changed)."""
    return {
        "name": "RCAN_BIX4-official", "suffix": None, "model_type": "SRModel", "scale": 2, "crop_border": None,
        "num_gpu": 0, "manual_seed": 0,
        "datasets": {"test_1": {"name": "val_set5", "type": "PairedImageDataset", "dataroot_gt": str(hr),
                                "dataroot_lq": str(lr), "io_backend": {"type": "disk"}}},
        "network_g": dict(TINY_RCAN),
        "save_img": True,
        "path": {"pretrain_network_g": weights, "strict_load_g": True},
    }


def test_basicsr_edsr_x3_file_trains_from_an_x2_checkpoint(tmp_path: Path) -> None:
    from restoration.cli.train import main as train_main

    hr, lr = make_sr_pairs(tmp_path / "data", n=2, size=36, scale=3)
    torch.manual_seed(0)
    x2 = build_network({**TINY_EDSR, "upscale": 2})
    torch.save({"params": x2.state_dict()}, tmp_path / "x2.pth")
    cfg = write_options(basicsr_edsr_lx3_train(hr, lr, str(tmp_path / "x2.pth")), tmp_path / "e.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "205_EDSR_Lx3_f256b32_DIV2K_300k_B16G1_204pretrain_wandb"
    trained = torch.load(exp / "models" / "net_g_2.pth", weights_only=True)["params"]
    assert trained["upsample.0.weight"].shape == (72, 8, 3, 3)  # the x3 head: 9 * num_feat
    log = next(exp.glob("train_*.log")).read_text()
    assert "option translated" not in log  # BasicSR's EDSR files need no translation


def test_basicsr_rcan_test_file_runs_through_test_py(tmp_path: Path) -> None:
    from restoration.cli.test import main as run_test_script

    hr, lr = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)
    torch.manual_seed(0)
    torch.save({"params": build_network(TINY_RCAN).state_dict()}, tmp_path / "rcan.pth")
    cfg = write_options(basicsr_rcan_test(hr, lr, str(tmp_path / "rcan.pth")), tmp_path / "r.yml")
    assert run_test_script(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    res = tmp_path / "results" / "RCAN_BIX4-official"
    assert json.loads((res / "metrics.json").read_text())["val_set5"]["num_images"] == 2
    assert len(list((res / "visualization").rglob("*.png"))) == 2  # top-level save_img: true is val.save_img
    log = next(res.glob("test_*.log")).read_text()
    for notice in ("top-level save_img (BasicSR's old place) is val.save_img here",
                   "top-level suffix: ~ ignored (BasicSR's old place; unset here is the same)",
                   "top-level crop_border ~ (BasicSR's old place) is crop_border 2 of no metric"):
        assert log.count(notice) == 1, notice


def test_legacy_crop_border_reaches_the_metrics_without_their_own(tmp_path: Path) -> None:
    hr, lr = make_sr_pairs(tmp_path / "data", n=1, size=16, scale=2)
    opt = basicsr_rcan_test(hr, lr, None)
    opt["path"]["pretrain_network_g"] = None
    opt["val"] = {"metrics": {"psnr": {"type": "calculate_psnr", "test_y_channel": True},
                              "ssim": {"type": "calculate_ssim", "crop_border": 0}}}
    parsed = parse_options(str(write_options(opt, tmp_path / "r.yml")), is_train=False, root=tmp_path)
    assert parsed["val"]["metrics"]["psnr"]["crop_border"] == 2  # ~ = scale, BasicSR's old default
    assert parsed["val"]["metrics"]["ssim"]["crop_border"] == 0
    assert parsed["val"]["save_img"] is True


@pytest.mark.parametrize("path, network_g, problem", [
    ("train/EDSR/train_EDSR_Mx2.yml", {"num_block": 0}, "'network_g': num_block must be >= 1, got 0"),
    ("train/EDSR/train_EDSR_Lx2.yml", {"upscale": 5},
     "'network_g': upscale must be 2^n and 3 (sub-pixel Upsample), got 5"),
    ("train/RCAN/train_RCAN_x2.yml", {"num_block": 0}, "'network_g': num_block must be >= 1, got 0"),
    ("train/RCAN/train_RCAN_x2.yml", {"upscale": 6},
     "'network_g': upscale must be 2^n and 3 (sub-pixel Upsample), got 6"),
])
def test_bad_network_option_is_an_options_error(tmp_path: Path, path: str, network_g: dict, problem: str) -> None:
    opt = load_yaml(ROOT / path)
    opt["network_g"].update(network_g)
    dump_yaml(opt, tmp_path / "bad.yml")
    with pytest.raises(OptionsError) as info:
        parse_options(str(tmp_path / "bad.yml"), is_train=True, root=str(tmp_path))
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems
    assert not (tmp_path / "experiments").exists()  # refused before anything starts
