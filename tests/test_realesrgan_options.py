"""The Real-ESRGAN option files and upstream names: RRDBNet / SRVGGNetCompact options checked before anything starts.

Validity of every file under options/ is swept by tests/test_option_files.py; here what is specific to the
Real-ESRGAN recipe: the networks are the released ones, upstream spellings are translated with one notice,
BasicSR's ESRGANModel is our own trainer, and a bad network option is an options error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch

from restoration.archs.build import build_network
from restoration.options.parse import OptionsError, parse_options
from restoration.options.upstream import translate_upstream
from restoration.options.yaml_io import dump_yaml, load_yaml
from restoration.utils.weights import load_weights_report

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "options" / "train" / "RealESRGAN"
TEST = ROOT / "options" / "test" / "RealESRGAN"


def test_train_files_build_the_x4plus_network_and_chain_the_two_stages(meta_param_count: Callable) -> None:
    net = load_yaml(TRAIN / "train_realesrnet_x4plus.yml")
    gan = load_yaml(TRAIN / "train_realesrgan_x4plus.yml")
    assert (net["model_type"], gan["model_type"]) == ("RealESRNetModel", "RealESRGANModel")
    for opt in (net, gan):
        assert meta_param_count(opt["network_g"]) == 16_697_987  # RealESRGAN_x4plus, counted on BasicSR's class
    assert gan["path"]["pretrain_network_g"].endswith("RealESRNet_x4plus.pth")
    assert (net["train"]["optim_g"]["lr"], gan["train"]["optim_g"]["lr"]) == (2e-4, 1e-4)
    assert (net["train"]["total_iter"], gan["train"]["total_iter"]) == (1_000_000, 400_000)


def test_x2plus_train_files_build_the_released_x2plus_network_and_follow_the_official_files(
        meta_param_count: Callable) -> None:
    """xinntao/Real-ESRGAN options/train_real{esrnet,esrgan}_x2plus.yml: the x4plus files with scale 2, RRDBNet
    scale 2, Real-ESRNet started non-strictly from RealESRGAN_x4plus.pth, Real-ESRGAN from Real-ESRNet x2plus."""
    for stage in ("esrnet", "esrgan"):
        x2 = load_yaml(TRAIN / f"train_real{stage}_x2plus.yml")
        x4 = load_yaml(TRAIN / f"train_real{stage}_x4plus.yml")
        assert x2["scale"] == x2["network_g"]["scale"] == 2
        assert meta_param_count(x2["network_g"]) == 16_703_171  # RealESRGAN_x2plus.pth, counted on BasicSR's class
        for section in ("train", "datasets"):  # everything else is the x4plus recipe
            assert {k: v for k, v in x2[section].items() if k != "val_1"} == \
                {k: v for k, v in x4[section].items() if k != "val_1"}, section
        assert x2.get("network_d") == x4.get("network_d")
    net = load_yaml(TRAIN / "train_realesrnet_x2plus.yml")["path"]
    gan = load_yaml(TRAIN / "train_realesrgan_x2plus.yml")["path"]
    assert (net["pretrain_network_g"].endswith("/RealESRGAN_x4plus.pth"), net["param_key_g"], net["strict_load_g"]) == (
        True, "params_ema", False)
    assert (gan["pretrain_network_g"].endswith("/RealESRNet_x2plus.pth"), gan["param_key_g"], gan["strict_load_g"]) == (
        True, "params_ema", True)


def test_x4_weights_start_the_x2_network_all_but_its_first_convolution(tmp_path: Path) -> None:
    """What train_realesrnet_x2plus.yml's non-strict start takes from RealESRGAN_x4plus.pth (tiny widths):
    conv_first's weight sees 12 channels after the unshuffle; every other tensor has the x4 network's shape."""
    tiny = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 4, "num_block": 1, "num_grow_ch": 2}
    x4, x2 = build_network({**tiny, "scale": 4}), build_network({**tiny, "scale": 2})
    torch.save({"params_ema": x4.state_dict()}, tmp_path / "x4.pth")
    report = load_weights_report(x2, str(tmp_path / "x4.pth"), "params_ema", strict=False)
    assert report.params_taken == report.params_total - 1
    for name, value in x2.state_dict().items():
        assert torch.equal(value, x4.state_dict()[name]) == (name != "conv_first.weight"), name


@pytest.mark.parametrize("name, count", [
    ("test_RealESRGAN_x4plus.yml", 16_697_987), ("test_RealESRGAN_x2plus.yml", 16_703_171),
    ("test_RealESRGAN_x4plus_anime_6B.yml", 4_467_779), ("test_realesr-general-x4v3.yml", 1_213_296),
    ("test_realesr-animevideov3.yml", 621_424),
])
def test_test_files_build_the_released_networks(meta_param_count: Callable, name: str, count: int) -> None:
    assert meta_param_count(load_yaml(TEST / name)["network_g"]) == count


def test_basicsr_suffixed_compact_name_is_translated_with_one_notice() -> None:
    opt = {"model_type": "RealESRGANModel", "network_g": {"type": "SRVGGNetCompact_basicsr", "num_conv": 16}}
    notices, problems = translate_upstream(opt)
    assert problems == []
    assert opt["network_g"]["type"] == "SRVGGNetCompact"
    assert [n for n in notices if "SRVGGNetCompact_basicsr" in n] == [
        ("network_g.type SRVGGNetCompact_basicsr is SRVGGNetCompact here (BasicSR registers Real-ESRGAN's class "
         "with a suffix; the code is the same)")]


def test_our_trainer_names_need_no_translation() -> None:
    for model_type in ("RealESRNetModel", "RealESRGANModel"):
        notices, problems = translate_upstream({"model_type": model_type, "network_g": {"type": "RRDBNet"}})
        assert (notices, problems) == ([], [])


def test_esrgan_relativistic_step_is_our_own_trainer_and_needs_no_translation() -> None:
    """BasicSR's ESRGANModel was refused by name until the relativistic step existed (tests/test_esrgan.py)."""
    assert translate_upstream({"model_type": "ESRGANModel", "network_g": {"type": "RRDBNet"}}) == ([], [])


@pytest.mark.parametrize("network_g, problem", [
    ({"num_block": 0}, "'network_g': num_block must be >= 1, got 0"),
    ({"scale": 3}, "'network_g': scale must be one of [1, 2, 4]"),
])
def test_bad_rrdbnet_option_is_an_options_error(tmp_path: Path, network_g: dict, problem: str) -> None:
    opt = load_yaml(TRAIN / "train_realesrnet_x4plus.yml")
    opt["network_g"].update(network_g)
    path = tmp_path / "bad.yml"
    dump_yaml(opt, path)
    with pytest.raises(OptionsError) as info:
        parse_options(str(path), is_train=True, root=str(tmp_path))
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems
    assert not (tmp_path / "experiments").exists()  # nothing on disk: refused before anything starts
