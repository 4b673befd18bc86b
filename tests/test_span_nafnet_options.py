"""The SPAN and NAFNet option files, NAFNet's upstream spellings and its PSNRLoss.

Validity of every file under options/ is swept by tests/test_option_files.py; here: the files build the released
networks (GoPro as NAFNetLocal, the published protocol), each NAFNet spelling of the pristine upstream files is
translated with exactly one notice, and PSNRLoss gives the official numbers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import pytest
import torch

from restoration.losses.psnr_loss import PSNRLoss
from restoration.options.upstream import translate_upstream
from restoration.options.yaml_io import load_yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path, arch, count", [
    ("train/NAFNet/train_NAFNet-SIDD-width32.yml", "NAFNet", 29_159_715),
    ("test/NAFNet/test_NAFNet-SIDD-width32.yml", "NAFNet", 29_159_715),
    ("train/NAFNet/train_NAFNet-GoPro-width64.yml", "NAFNetLocal", 67_888_835),
    ("test/NAFNet/test_NAFNet-GoPro-width64.yml", "NAFNetLocal", 67_888_835),
    ("train/SPAN/train_SPAN_x4_ch48_DIV2K.yml", "SPAN", 1_840_488),
    ("test/SPAN/test_SPAN_x4_ch48.yml", "SPAN", 1_840_488),
    ("test/SPAN/test_SPAN_x2_ch48.yml", "SPAN", 1_824_900),
])
def test_files_build_the_released_networks(meta_param_count: Callable, path: str, arch: str, count: int) -> None:
    opt = load_yaml(ROOT / "options" / path)
    assert opt["network_g"]["type"] == arch
    assert meta_param_count(opt["network_g"]) == count  # counted on the official classes


def test_nafnet_recipe_is_the_official_one() -> None:
    sidd = load_yaml(ROOT / "options/train/NAFNet/train_NAFNet-SIDD-width32.yml")
    gopro = load_yaml(ROOT / "options/train/NAFNet/train_NAFNet-GoPro-width64.yml")
    assert sidd["model_type"] == gopro["model_type"] == "ImageRestorationModel"
    assert (sidd["train"]["total_iter"], gopro["train"]["total_iter"]) == (200_000, 400_000)
    assert sidd["train"]["scheduler"] == {"type": "CosineAnnealingLR", "T_max": 200_000, "eta_min": 1e-7}
    assert sidd["train"]["optim_g"] == {"type": "AdamW", "lr": 1e-3, "weight_decay": 0.0, "betas": [0.9, 0.9]}
    assert gopro["train"]["optim_g"]["weight_decay"] == 1e-3
    assert sidd["train"]["pixel_opt"]["type"] == gopro["train"]["pixel_opt"]["type"] == "PSNRLoss"
    assert (sidd["datasets"]["train"]["use_hflip"], gopro["datasets"]["train"]["use_hflip"]) == (False, True)


@pytest.mark.parametrize("name", ["train_NAFNet-SIDD-width32.yml", "train_NAFNet-GoPro-width64.yml"])
def test_nafnet_files_clip_the_gradient_norm_to_0_01_as_its_trainer_does(name: str) -> None:
    """NAFNet's ImageRestorationModel reads train.use_grad_clip with the default true (norm bound 0.01); the
    official files never set it, so they train clipped, and so do ours."""
    opt = load_yaml(ROOT / "options/train/NAFNet" / name)
    notices, problems = translate_upstream(opt)
    assert problems == [] and opt["train"]["grad_clip"] == 0.01 and "use_grad_clip" not in opt["train"]
    assert sum("train.use_grad_clip: true is train.grad_clip: 0.01" in n for n in notices) == 1
    unclipped = load_yaml(ROOT / "options/train/NAFNet" / name)
    unclipped["train"]["use_grad_clip"] = False
    translate_upstream(unclipped)
    assert "grad_clip" not in unclipped["train"]
    own = load_yaml(ROOT / "options/train/NAFNet" / name)
    own["train"]["grad_clip"] = 0.5  # our own spelling wins, without a notice
    notices, _ = translate_upstream(own)
    assert own["train"]["grad_clip"] == 0.5 and not any("grad_clip" in n for n in notices)


def test_nafnet_upstream_spellings_are_translated_with_one_notice_each() -> None:
    """The keys of the pristine megvii-research/NAFNet files that differ from ours."""
    opt = {"model_type": "ImageRestorationModel", "network_g": {"type": "NAFNetLocal", "width": 64},
           "datasets": {"train": {"type": "PairedImageDataset", "use_flip": True, "use_rot": True}},
           "train": {"scheduler": {"type": "TrueCosineAnnealingLR", "T_max": 400000, "eta_min": 1e-7}},
           "val": {"save_img": False, "grids": False, "use_image": False}}
    notices, problems = translate_upstream(opt)
    assert problems == []
    assert opt["datasets"]["train"] == {"type": "PairedImageDataset", "use_hflip": True, "use_rot": True}
    assert opt["train"]["scheduler"]["type"] == "CosineAnnealingLR"
    assert opt["val"] == {"save_img": False}
    assert len(notices) == 5
    assert notices[0] == ("model_type ImageRestorationModel is SRModel here (NAFNet's paired-image step: one pixel "
                          "loss, the network pads itself)")
    for fragment in ("TrueCosineAnnealingLR is CosineAnnealingLR", "val.grids: false ignored",
                     "val.use_image False ignored", "datasets.train.use_flip is use_hflip"):
        assert sum(fragment in n for n in notices) == 1, fragment


def test_nafnet_grid_testing_is_refused_by_name() -> None:
    _, problems = translate_upstream({"model_type": "ImageRestorationModel", "val": {"grids": True}})
    assert len(problems) == 1 and problems[0].startswith("'val.grids' true (NAFNet's test on overlapping")


def test_psnr_loss_is_minus_the_mean_per_image_psnr() -> None:
    target = torch.zeros(2, 3, 4, 5, dtype=torch.float64)
    pred = target.clone()
    pred[0] += 0.1  # MSE 1e-2: 20 dB
    pred[1] += 0.01  # MSE 1e-4: 40 dB
    loss = PSNRLoss(loss_weight=0.5)(pred, target)
    expected = 0.5 * (10 * math.log10(1e-2 + 1e-8) + 10 * math.log10(1e-4 + 1e-8)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(-15.0, abs=2e-4)  # -(20 + 40) / 2 dB, halved; the 1e-8 shows at 40 dB


def test_psnr_loss_on_y_compares_luma_only() -> None:
    target = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    chroma = torch.tensor([0.1, -0.1 * 65.481 / 128.553, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    assert PSNRLoss(toY=True)(target + chroma, target).item() == pytest.approx(10 * math.log10(1e-8), abs=1e-6)
    luma = PSNRLoss(toY=True)(target + 0.1, target).item()  # Y moves by 0.1 * 219 / 255
    # the coefficients are float32, as in the official loss: equal to ~1e-7 dB
    assert luma == pytest.approx(10 * math.log10((0.1 * 219 / 255) ** 2 + 1e-8), abs=1e-6)
    with pytest.raises(ValueError, match="only reduction 'mean'"):
        PSNRLoss(reduction="sum")
