"""Option files: validation reports every problem at once, before anything touches the disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from restoration.options.parse import OptionsError, apply_overrides, parse_options
from restoration.options.yaml_io import load_yaml
from restoration.cli.train import main as train_main
from tests.helpers import make_sr_pairs, train_options, write_options


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=3, size=32, scale=2)


def test_scientific_notation_loads_as_float(tmp_path: Path) -> None:
    f = tmp_path / "a.yml"
    f.write_text("lr: 2e-4\nother: 1.5e3\nint: 7\nname: 1e-x\n")
    assert load_yaml(f) == {"lr": 2e-4, "other": 1500.0, "int": 7, "name": "1e-x"}
    assert isinstance(load_yaml(f)["lr"], float)


def test_overrides_parse_yaml_values_without_eval() -> None:
    opt = {"train": {"total_iter": 10}}
    assert apply_overrides(opt, ["train.total_iter=20", "train:optim_g:lr=1e-3", "x.y=__import__('os')"]) == []
    assert opt["train"]["total_iter"] == 20
    assert opt["train"]["optim_g"]["lr"] == 1e-3
    assert opt["x"]["y"] == "__import__('os')"  # a string, never executed
    assert apply_overrides(opt, ["novalue"]) != []


def test_every_problem_reported_and_nothing_created(data, tmp_path: Path, capsys) -> None:
    opt = train_options(data, "bad")
    opt["trian"] = {}  # typo of a top-level key
    opt["train"]["optim_g"]["lrr"] = 1  # unknown optimizer argument
    opt["train"]["total_iter"] = "many"  # wrong type
    opt["network_g"]["type"] = "SwinIr"  # unknown arch with a close name
    opt["datasets"]["train"]["dataroot_gt"] = str(tmp_path / "missing")
    opt["val"]["metrics"]["psnr"]["type"] = "calculate_psnrr"
    cfg = write_options(opt, tmp_path / "bad.yml")
    root = tmp_path / "root"
    root.mkdir()
    code = train_main(["-opt", str(cfg), "--root", str(root)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    for expected in ("unknown option 'trian' (did you mean 'train'?)", "'lrr'", "'total_iter' must be int",
                     "Did you mean 'SwinIR'", "missing", "calculate_psnrr"):
        assert expected in err, (expected, err)
    assert list(root.iterdir()) == []  # no experiment folder, no tb_logger


def test_incompatible_settings(data, tmp_path: Path) -> None:
    opt = train_options(data, "bad2")
    opt["train"]["warmup_iter"] = 10
    opt["datasets"]["train"]["gt_size"] = 15
    opt["train"]["scheduler"] = {"type": "CosineAnnealingRestartLR", "periods": [2], "restart_weights": [1, 1]}
    with pytest.raises(OptionsError) as info:
        parse_options(str(write_options(opt, tmp_path / "b.yml")), is_train=True, root=tmp_path)
    text = str(info.value)
    assert "warmup_iter" in text and "not a multiple of scale 2" in text
    assert "periods' sum to 2 < total_iter 6" in text and "restart_weights" in text


def test_arch_kwarg_typo_suggests_name(data, tmp_path: Path) -> None:
    opt = train_options(data, "bad3")
    opt["network_g"]["embed_dims"] = 8
    with pytest.raises(OptionsError, match=r"no argument 'embed_dims' \(did you mean 'embed_dim'\?\)"):
        parse_options(str(write_options(opt, tmp_path / "c.yml")), is_train=True, root=tmp_path)


def test_resolved_options_and_experiments_root(data, tmp_path: Path) -> None:
    exp = tmp_path / "elsewhere" / "exp"
    opt = train_options(data, "resolved", **{"train.total_iter": 1, "train.warmup_iter": -1})
    opt["path"] = {"experiments_root": str(exp)}
    cfg = write_options(opt, tmp_path / "r.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path / "root")]) == 0
    saved = load_yaml(exp / "options" / "r.yml")
    assert saved["train"]["optim_g"]["lr"] == 2e-3 and saved["path"]["models"] == str(exp / "models")
    assert (exp / "models" / "net_g_1.pth").is_file() and (exp / "training_states" / "1.state").is_file()
    assert any(p.name.startswith("train_resolved_") for p in exp.iterdir())
    # the saved, resolved file is itself a valid option file
    again = parse_options(str(exp / "options" / "r.yml"), is_train=True, root=tmp_path / "root")
    assert again["path"]["experiments_root"] == str(exp)
    # a second run archives the folder instead of overwriting it
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path / "root")]) == 0
    assert len([p for p in exp.parent.iterdir() if p.name.startswith("exp_archived_")]) == 1
    assert not os.path.exists(tmp_path / "root" / "experiments")


def test_trainer_options_are_checked_in_train(data, tmp_path: Path) -> None:
    opt = train_options(data, "mo")
    opt["model_type"], opt["scale"] = "TBSNModel", 1
    opt["train"]["pd_trainn"] = 5  # the trainer declares its train: keys
    with pytest.raises(OptionsError, match=r"'train': unknown key 'pd_trainn' \(did you mean 'pd_train'\?\)"):
        parse_options(str(write_options(opt, tmp_path / "m3.yml")), is_train=True, root=tmp_path)
    opt["train"] = {**opt["train"], "pd_trainn": None}
    del opt["train"]["pd_trainn"]
    opt["train"]["refine_prob"] = 16
    with pytest.raises(OptionsError, match=r"'train' \(TBSNModel\): refine_prob must be in \[0, 1\], got 16"):
        parse_options(str(write_options(opt, tmp_path / "m4.yml")), is_train=True, root=tmp_path)


def test_a_trainer_s_options_outside_train_are_an_unknown_key(data, tmp_path: Path) -> None:
    """``model_opt`` was our own early name of the trainer's options; they live in ``train:`` only."""
    opt = train_options(data, "old", model_opt={"pd_test": 3})
    with pytest.raises(OptionsError, match=r"unknown .*'model_opt'"):
        parse_options(str(write_options(opt, tmp_path / "a.yml")), is_train=True, root=tmp_path)


def test_losses_list_is_checked_through_the_registry(data, tmp_path: Path) -> None:
    opt = train_options(data, "losses")
    del opt["train"]["pixel_opt"]
    opt["train"]["losses"] = [{"type": "L1Los"}, {"type": "MSELoss", "loss_wieght": 2}, "L1Loss"]
    with pytest.raises(OptionsError) as err:
        parse_options(str(write_options(opt, tmp_path / "l.yml")), is_train=True, root=tmp_path)
    text = str(err.value)
    assert "'train.losses[0].type'" in text and "L1Loss" in text
    assert "'train.losses[1]' (MSELoss) has no argument 'loss_wieght' (did you mean 'loss_weight'?)" in text
    assert "'train.losses[2]' must be a mapping with a 'type' key" in text
    opt["train"]["losses"] = []
    with pytest.raises(OptionsError, match="'train' needs a loss"):
        parse_options(str(write_options(opt, tmp_path / "l2.yml")), is_train=True, root=tmp_path)


# ------------------------------------------------------------------------------ datasets
def test_dataset_key_typos_under_a_mistyped_type_are_reported_in_the_same_pass(data, tmp_path: Path, capsys) -> None:
    """A typo in a dataset's type does not hide the typos beneath it: they are checked against the closest
    registered dataset, each with a did-you-mean, and the accepted keys are listed once; exit code 2, no folders."""
    from restoration.data.paired_image_dataset import PairedImageDataset

    opt = train_options(data, "dtypo")
    opt["datasets"]["train"]["type"] = "PairedImageDatset"
    opt["datasets"]["train"]["gt_sise"] = 16
    opt["datasets"]["train"]["use_flip"] = True
    opt["datasets"]["train"]["batch_size_per_gpu"] = "2"
    root = tmp_path / "root"
    root.mkdir()
    code = train_main(["-opt", str(write_options(opt, tmp_path / "d.yml")), "--root", str(root)])
    err = capsys.readouterr().err
    assert code == 2 and list(root.iterdir()) == []
    where = "'datasets.train' (assuming PairedImageDataset): "
    assert "'datasets.train.type': no dataset named 'PairedImageDatset'. Did you mean 'PairedImageDataset'" in err
    assert f"{where}unknown key 'gt_sise' (did you mean 'gt_size'?)" in err
    assert f"{where}unknown key 'use_flip' (did you mean 'use_hflip'?)" in err
    assert f"{where}'batch_size_per_gpu' must be int, got str '2'" in err
    assert err.count("accepted keys:") == 1
    assert f"{where}accepted keys: {', '.join(sorted(PairedImageDataset.options))}" in err


def test_dataset_problems_name_the_dataset_and_list_the_accepted_keys_once(data, tmp_path: Path) -> None:
    opt = train_options(data, "dkeys")
    opt["datasets"]["val_1"].update(gt_sise=16, use_hfilp=True, color="grey")  # (use_flip: NAFNet's, translated)
    with pytest.raises(OptionsError) as info:
        parse_options(str(write_options(opt, tmp_path / "k.yml")), is_train=True, root=tmp_path)
    text = str(info.value)
    assert "'datasets.val_1': unknown key 'gt_sise' (did you mean 'gt_size'?)" in text
    assert "'datasets.val_1': unknown key 'use_hfilp' (did you mean 'use_hflip'?)" in text
    assert "'datasets.val_1': color 'grey' is not one of ('rgb', 'gray', 'y')" in text
    assert text.count("accepted keys:") == 1 and "assuming" not in text


def test_network_scale_must_match_the_data_scale(data, tmp_path: Path, capsys) -> None:
    """A x4 network on x2 data used to train silently (the output was cropped to the x2 target)."""
    opt = train_options(data, "x4_on_x2")
    opt["network_g"]["upscale"] = 4
    assert train_main(["-opt", str(write_options(opt, tmp_path / "s.yml")), "--root", str(tmp_path)]) == 2
    assert "'scale' is 2 but network_g (SwinIR) upscales by 4" in capsys.readouterr().err
    assert not (tmp_path / "experiments").exists()


def test_trainer_refuses_an_output_of_the_wrong_size() -> None:
    from restoration.models.sr_model import ScaleMismatchError, SRModel

    opt = {"name": "t", "scale": 2,
           "network_g": {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 4},
           "train": {"optim_g": {"type": "Adam", "lr": 1e-3}, "total_iter": 1,
                     "pixel_opt": {"type": "L1Loss"}}}
    model = SRModel(opt, torch.device("cpu"))  # built directly, past the option check
    batch = {"lq": torch.rand(1, 3, 8, 8), "gt": torch.rand(1, 3, 16, 16)}
    with pytest.raises(ScaleMismatchError, match=r"turned a \(8, 8\) input into \(32, 32\), not \(16, 16\)"):
        model.optimize_parameters(batch, 1)


@pytest.mark.parametrize("metric", ["calculate_psnr", "calculate_ssim", "calculate_noise_sigma", "calculate_niqe",
                                    "calculate_lpips", "calculate_sharpness"])
def test_a_misspelt_metric_key_is_an_options_error_not_a_silent_default(data, tmp_path: Path, metric: str) -> None:
    # metrics used to take **kwargs, so 'test_y_chanel: true' was accepted and PSNR silently scored on RGB
    opt = train_options(data, f"metric_typo_{metric}")
    opt["val"]["metrics"] = {"m": {"type": metric, "crop_border": 2, "test_y_chanel": True, "better": "higher"}}
    with pytest.raises(OptionsError, match=r"'val.metrics.m'.*'test_y_chanel'"):
        parse_options(str(write_options(opt, tmp_path / "m.yml")), is_train=True, root=tmp_path)


def test_metric_better_is_checked(data, tmp_path: Path) -> None:
    opt = train_options(data, "metric_better")
    opt["val"]["metrics"]["psnr"]["better"] = "lowr"
    with pytest.raises(OptionsError, match=r"'val.metrics.psnr.better' must be one of \['higher', 'lower'\], got 'lowr'"):
        parse_options(str(write_options(opt, tmp_path / "b.yml")), is_train=True, root=tmp_path)
