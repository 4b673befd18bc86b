"""Upstream option files (BasicSR's options/train/SwinIR, HAT's options/train and options/test) run with only their
data paths changed. The files here are small equivalents: the upstream keys and values, tiny networks and data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from restoration.options.parse import OptionsError, apply_overrides, parse_options
from restoration.schema import did_you_mean
from tests.helpers import make_sr_pairs, train_and_read_log, write_options

TINY_SWINIR = {"type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 8, "window_size": 4, "img_range": 1.0,
               "depths": [2], "embed_dim": 8, "num_heads": [2], "mlp_ratio": 2, "upsampler": "pixelshuffle",
               "resi_connection": "1conv"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("upstream"), n=2, size=32, scale=2)


def basicsr_swinir_train(hr: Path, lr: Path) -> dict[str, Any]:
    """BasicSR options/train/SwinIR/train_SwinIR_SRx4_scratch.yml, its keys and values (data paths, sizes and
    iteration counts changed); HAT's train_HAT_SRx2_from_scratch.yml has the same keys plus pbar and better."""
    return {
        "name": "train_SwinIR_SRx2_scratch", "model_type": "SwinIRModel", "scale": 2, "num_gpu": "auto",
        "manual_seed": 0,
        "datasets": {
            "train": {"name": "DIV2K", "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                      "meta_info_file": "basicsr/data/meta_info/meta_info_DIV2K800sub_GT.txt", "filename_tmpl": "{}",
                      "io_backend": {"type": "disk"}, "gt_size": 16, "use_hflip": True, "use_rot": True,
                      "use_shuffle": True, "num_worker_per_gpu": 0, "batch_size_per_gpu": 2,
                      "dataset_enlarge_ratio": 1, "prefetch_mode": None},
            "val": {"name": "Set5", "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                    "io_backend": {"type": "disk"}},
        },
        "network_g": dict(TINY_SWINIR),
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {"ema_decay": 0.999, "optim_g": {"type": "Adam", "lr": 2e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
                  "scheduler": {"type": "MultiStepLR", "milestones": [2, 3], "gamma": 0.5},
                  "total_iter": 2, "warmup_iter": -1,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}},
        "val": {"val_freq": 2.0, "save_img": False, "pbar": False,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": False,
                                     "better": "higher"}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 2.0, "use_tb_logger": False,
                   "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "nccl", "port": 29500},
    }


def hat_tile_test(hr: Path, lr: Path) -> dict[str, Any]:
    """HAT options/test/HAT_tile_example.yml plus the no-ground-truth dataset of HAT_GAN_Real_SRx4.yml."""
    return {
        "name": "HAT_tile_example", "model_type": "HATModel", "scale": 2, "num_gpu": 0, "manual_seed": 0,
        "tile": {"tile_size": 16, "tile_pad": 4},
        "datasets": {
            "test_1": {"name": "Set5", "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                       "io_backend": {"type": "disk"}},
            "test_2": {"name": "custom", "type": "SingleImageDataset", "dataroot_gt": None, "dataroot_lq": str(lr),
                       "io_backend": {"type": "disk"}},
        },
        "network_g": dict(TINY_SWINIR),
        "path": {"strict_load_g": True, "param_key_g": "params_ema"},
        "val": {"save_img": True, "suffix": None, "metrics": {
            "psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True}}},
    }


def test_basicsr_swinir_train_file_parses_with_one_notice_per_translation(data, tmp_path: Path) -> None:
    notices: list[str] = []
    opt = parse_options(str(write_options(basicsr_swinir_train(*data), tmp_path / "s.yml")), is_train=True,
                        root=tmp_path, notices=notices)
    assert notices == [
        "model_type SwinIRModel is SRModel here (its window padding at test time is done by SRModel for every network)",
        "datasets.train.meta_info_file basicsr/data/meta_info/meta_info_DIV2K800sub_GT.txt ships with the upstream "
        f"package and is not here: using every image in {data[0]} instead (the same images when the folder holds "
        "exactly the listed sub-images)",
    ]
    assert "meta_info_file" not in opt["datasets"]["train"]
    assert list(tmp_path.iterdir()) == [tmp_path / "s.yml"]  # nothing written


def test_basicsr_swinir_file_trains_and_the_log_starts_with_versions_notices_and_options(data, tmp_path: Path) -> None:
    cfg = write_options(basicsr_swinir_train(*data), tmp_path / "s.yml")
    log, head = train_and_read_log(cfg, tmp_path, "train_SwinIR_SRx2_scratch")
    assert f"torch {torch.__version__}" in head and "python 3." in head and "device: cpu" in head
    assert "option translated: model_type SwinIRModel is SRModel here" in head
    assert "  total_iter: 2\n" in log and "model_type: SwinIRModel\n" in log
    assert log.count("option translated: model_type") == 1


def test_hat_tile_example_runs_through_test_py(data, tmp_path: Path) -> None:
    from restoration.cli.test import main as run_test_script

    cfg = write_options(hat_tile_test(*data), tmp_path / "h.yml")
    assert run_test_script(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    res = tmp_path / "results" / "HAT_tile_example"
    metrics = json.loads((res / "metrics.json").read_text())
    assert metrics["Set5"]["notes"] == ["tiled inference: tile 24, overlap 8"]
    assert metrics["custom"]["num_images"] == 2
    log = next(res.glob("test_*.log")).read_text()
    for notice in ("model_type HATModel is SRModel here",
                   "HAT's tile {tile_size: 16, tile_pad: 4} is val.tile {tile_size: 24, tile_overlap: 8} here",
                   "datasets.test_2.dataroot_gt: ~ ignored (SingleImageDataset has no dataroot_gt)"):
        assert log.count(notice) == 1, notice


def test_hat_tile_and_val_tile_together_is_an_error(data, tmp_path: Path) -> None:
    opt = hat_tile_test(*data)
    opt["val"]["tile"] = {"tile_size": 16}
    with pytest.raises(OptionsError, match=r"'tile' \(HAT's place\) and 'val.tile' are both set"):
        parse_options(str(write_options(opt, tmp_path / "h.yml")), is_train=False, root=tmp_path)


def test_an_upstream_feature_we_do_not_have_names_it_and_our_equivalent(data, tmp_path: Path) -> None:
    opt = basicsr_swinir_train(*data)
    opt["datasets"]["train"]["type"] = "ImageNetPairedDataset"  # HAT's ImageNet pre-training files
    with pytest.raises(OptionsError) as info:
        parse_options(str(write_options(opt, tmp_path / "i.yml")), is_train=True, root=tmp_path)
    assert ("'datasets.train.type' ImageNetPairedDataset is HAT's ImageNet pre-training (LQ made on the fly from "
            "ImageNet), which this framework does not have; train on DF2K with PairedImageDataset as "
            "options/train/HAT/train_HAT_SRx2_from_scratch.yml does") in str(info.value)
    assert Path("options/train/HAT/train_HAT_SRx2_from_scratch.yml").is_file()


def test_a_missing_meta_info_file_of_our_own_stays_an_error(data, tmp_path: Path) -> None:
    opt = basicsr_swinir_train(*data)
    opt["datasets"]["train"]["meta_info_file"] = str(tmp_path / "mine.txt")
    with pytest.raises(OptionsError, match="mine.txt does not exist"):
        parse_options(str(write_options(opt, tmp_path / "m.yml")), is_train=True, root=tmp_path)


def test_home_and_environment_variables_in_paths_are_expanded(data, tmp_path: Path, monkeypatch) -> None:
    hr, lr = data
    monkeypatch.setenv("SR_DATA", str(hr.parent))
    monkeypatch.setenv("HOME", str(hr.parent.parent))
    opt = basicsr_swinir_train(hr, lr)
    opt["datasets"]["train"]["dataroot_gt"] = "$SR_DATA/HR"
    opt["datasets"]["train"]["dataroot_lq"] = f"~/{lr.parent.name}/{lr.name}"
    opt["path"]["experiments_root"] = "${SR_DATA}/exp"
    opt = parse_options(str(write_options(opt, tmp_path / "e.yml")), is_train=True, root=tmp_path)
    assert opt["datasets"]["train"]["dataroot_gt"] == str(hr)
    assert opt["datasets"]["train"]["dataroot_lq"] == str(lr)
    assert opt["path"]["experiments_root"] == str(hr.parent / "exp")


def test_a_json_option_file_points_to_the_tbsn_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "SIDD.json"
    cfg.write_text(json.dumps({"model": {"type": "TBSN"}}))
    with pytest.raises(OptionsError, match="JSON option file .* options/train/TBSN/train_TBSN_SIDD.yml"):
        parse_options(str(cfg), is_train=True, root=tmp_path)
    assert Path("options/train/TBSN/train_TBSN_SIDD.yml").is_file()


def test_force_yml_tilde_removes_an_optional_key() -> None:
    opt = {"val": {"tile": {"tile_size": 64}, "save_img": True}, "path": {"pretrain_network_g": "w.pth"}}
    assert apply_overrides(opt, ["val.tile=~", "path:pretrain_network_g=null", "val.save_img=false"]) == []
    assert opt == {"val": {"save_img": False}, "path": {}}


@pytest.mark.parametrize("key, candidates", [
    ("tile", ["time", "name", "scale"]),
    ("noise_range", ["is_train", "name", "datasets", "network_g"]),
])
def test_did_you_mean_proposes_no_unrelated_key(key: str, candidates: list[str]) -> None:
    assert did_you_mean(key, candidates) == ""


@pytest.mark.parametrize("typo, meant", [
    ("gt_sise", "gt_size"), ("pixel_otp", "pixel_opt"), ("lr_sheduler", "lr_scheduler"), ("trian", "train"),
    ("tpye", "type"), ("embed_dims", "embed_dim"), ("loss_wieght", "loss_weight"), ("Scale", "scale"),
])
def test_did_you_mean_still_catches_typos(typo: str, meant: str) -> None:
    candidates = ["gt_size", "pixel_opt", "lr_scheduler", "train", "type", "embed_dim", "loss_weight", "scale", "time"]
    assert did_you_mean(typo, candidates) == f" (did you mean '{meant}'?)"


def test_real_hat_degradation_keys_at_the_top_level_are_read_as_train_options(tmp_path: Path) -> None:
    """HAT's train_Real_HAT_SRx4_mse_model.yml keeps the degradation settings at the top level (BasicSR's place)."""
    import yaml

    opt = yaml.safe_load(Path("options/train/HAT/train_Real_HAT_SRx4_mse_model.yml").read_text())
    upstream_top = ("gt_usm", "resize_prob", "noise_range", "jpeg_range", "second_blur_prob", "gt_size", "queue_size")
    hr, _ = make_sr_pairs(tmp_path / "d", n=2, size=64, scale=4)
    opt["datasets"] = {"train": {**opt["datasets"]["train"], "dataroot_gt": str(hr)}}
    opt.pop("val", None)
    opt["model_type"] = "RealHATMSEModel"
    for key in upstream_top:
        opt[key] = opt["train"].pop(key)
    # HAT's MSE file also keeps the GAN file's optim_d, which BasicSR never reads without a discriminator
    opt["train"]["optim_d"] = {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]}
    notices: list[str] = []
    parsed = parse_options(str(write_options(opt, tmp_path / "r.yml")), is_train=True, root=tmp_path, notices=notices)
    assert all(parsed["train"][key] == opt[key] for key in upstream_top)
    assert f"top-level {', '.join(upstream_top)} (BasicSR's place for RealHATMSEModel's options) read as train.<key>" \
        in notices
    assert "optim_d" not in parsed["train"]
    assert "train.optim_d ignored: RealHATMSEModel trains no discriminator (BasicSR does not read it either)" in notices


def test_a_gan_trainer_without_a_discriminator_is_an_options_error(tmp_path: Path) -> None:
    """optim_d is only dropped where nothing reads it: the GAN trainer without network_d stays an error."""
    import yaml

    opt = yaml.safe_load(Path("options/train/HAT/train_Real_HAT_GAN_SRx4_finetune_from_mse_model.yml").read_text())
    hr, _ = make_sr_pairs(tmp_path / "d", n=2, size=64, scale=4)
    opt["datasets"] = {"train": {**opt["datasets"]["train"], "dataroot_gt": str(hr)}}
    opt.pop("val", None)
    opt["path"] = {}
    del opt["network_d"]
    with pytest.raises(OptionsError) as info:
        parse_options(str(write_options(opt, tmp_path / "g.yml")), is_train=True, root=tmp_path)
    assert "needs 'network_d'" in str(info.value) and "optim_d ignored" not in str(info.value)
