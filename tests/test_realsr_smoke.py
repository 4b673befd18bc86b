"""The real-world SR smoke recipe on the demo pictures (docs/realsr.md): stage 1 (RealESRNet), stage 2
(RealESRGAN, from stage 1's weights) and test.py, through the same entry points as the commands.

The fast test checks that the three option files chain (each one reads what the previous one writes);
that each file passes the start-up check is tests/test_option_files.py's job. The slow test runs the
recipe shortened with ``--force_yml`` (about a minute on 2 CPU cores): ``python -m pytest -m slow``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from restoration.options.yaml_io import load_yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE1 = ROOT / "options/train/demo/train_RealESRNet_SwinIR_tiny_x4_demo.yml"
STAGE2 = ROOT / "options/train/demo/train_RealESRGAN_SwinIR_tiny_x4_demo.yml"
TEST = ROOT / "options/test/demo/test_RealESRGAN_SwinIR_tiny_x4_demo.yml"


def test_the_demo_files_chain_stage1_stage2_test() -> None:
    s1, s2, test = (load_yaml(p) for p in (STAGE1, STAGE2, TEST))
    assert (s1["model_type"], s2["model_type"]) == ("RealESRNetModel", "RealESRGANModel")
    assert s2["path"]["pretrain_network_g"] == f"experiments/{s1['name']}/models/net_g_latest.pth"
    assert test["path"]["pretrain_network_g"] == f"experiments/{s2['name']}/models/net_g_latest.pth"
    assert s1["train"]["ema_decay"] > 0 and s2["train"]["ema_decay"] > 0  # params_ema exists in both files
    assert s2["path"]["param_key_g"] == test["path"]["param_key_g"] == "params_ema"
    assert s1["network_g"] == s2["network_g"] == test["network_g"]
    assert s1["scale"] == s2["scale"] == test["scale"] == s1["demo_data"]["scale"] == 4
    assert s1["datasets"]["train"] == s2["datasets"]["train"]
    assert s1["datasets"]["val_1"]["degradation"] == test["datasets"]["test_1"]["degradation"]
    assert s1["datasets"]["val_1"]["seed"] == test["datasets"]["test_1"]["seed"]


_STAGE2_LR = 1e-4


def _train_both_stages_short() -> None:
    """Stage 1 (8 iterations) then stage 2 (4) in the working directory, through train.py's entry point."""
    from restoration.cli.train import main as train_main

    short = ["logger.print_freq=4", "train.warmup_iter=-1"]
    assert train_main(["-opt", str(STAGE1), "--force_yml", *short, "train.total_iter=8", "train.scheduler.periods=[8]",
                       "val.val_freq=8", "logger.save_checkpoint_freq=8"]) == 0
    assert train_main(["-opt", str(STAGE2), "--force_yml", *short, "train.total_iter=4",
                       "train.scheduler.milestones=[4]", f"train.optim_g.lr={_STAGE2_LR}", "val.val_freq=4",
                       "logger.save_checkpoint_freq=4"]) == 0


@pytest.mark.slow
def test_realsr_recipe_stage1_stage2_and_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from restoration.cli.test import main as test_main

    monkeypatch.chdir(tmp_path)  # the option files use paths relative to the working directory
    _train_both_stages_short()
    exp1 = tmp_path / "experiments" / "RealESRNet_SwinIR_tiny_x4_demo"
    assert (exp1 / "models" / "net_g_latest.pth").is_file() and (exp1 / "training_states" / "8.state").is_file()
    state1 = torch.load(exp1 / "training_states" / "8.state", weights_only=True)
    pool = state1["rank_states"][0]["pair_pool"]  # queue_size 8 = two batches of 4: full, in the training state
    assert pool["ptr"] == 8 and pool["lq"].shape == (8, 3, 24, 24) and pool["gt"].shape == (8, 3, 96, 96)
    lr = _STAGE2_LR
    exp2 = tmp_path / "experiments" / "RealESRGAN_SwinIR_tiny_x4_demo"
    state2 = torch.load(exp2 / "training_states" / "4.state", weights_only=True)
    assert "net_d" in state2 and "optimizer_d" in state2
    log2 = next(exp2.glob("train_RealESRGAN_SwinIR_tiny_x4_demo_*.log")).read_text()
    assert "l_g_gan" in log2 and "l_d_real" in log2

    # Stage 2 started from stage 1's EMA weights: 4 Adam steps of lr 1e-4 move no weight by more than a
    # few 1e-4, while a fresh initialisation differs from them by orders of magnitude more.
    start = torch.load(exp1 / "models" / "net_g_latest.pth", weights_only=True)["params_ema"]
    after = torch.load(exp2 / "models" / "net_g_latest.pth", weights_only=True)["params"]
    moved = max(float((after[k].float() - v.float()).abs().max()) for k, v in start.items() if v.is_floating_point())
    assert moved < 10 * 4 * lr, moved
    torch.manual_seed(1)
    from restoration import build_network

    fresh = build_network(load_yaml(STAGE2)["network_g"]).state_dict()
    assert max(float((fresh[k] - v.float()).abs().max()) for k, v in start.items() if "weight" in k) > 100 * moved

    for name, weights in (("stage2", None), ("stage1", exp1 / "models" / "net_g_latest.pth")):
        extra = [] if weights is None else ["--force_yml", f"name={name}", f"path.pretrain_network_g={weights}"]
        assert test_main(["-opt", str(TEST), *extra]) == 0
    results = {name: tmp_path / "results" / folder for name, folder in
               (("stage2", "RealESRGAN_SwinIR_tiny_x4_demo"), ("stage1", "stage1"))}
    scores = {name: json.loads((folder / "metrics.json").read_text())["demo_val_bsrgan"]
              for name, folder in results.items()}
    for name, s in scores.items():
        assert s["num_images"] == 2 and set(s["per_image"]) == {"chelsea", "coffee"}, name
        for metric in ("psnr", "ssim", "noise_sigma", "sharpness"):
            assert math.isfinite(s[metric]), (name, metric)
        assert 10 < s["psnr"] < 50 and 0 < s["ssim"] <= 1
    assert scores["stage1"]["psnr"] != scores["stage2"]["psnr"]  # two different weight files were scored
    assert (results["stage2"] / "baselines.json").is_file()
    assert sorted(p.name for p in (results["stage2"] / "visualization" / "demo_val_bsrgan").iterdir()) == [
        "chelsea.png", "coffee.png"]


@pytest.mark.slow
def test_realsr_recipe_reports_lpips_of_both_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/realsr.md's LPIPS commands: both stages scored with LPIPS-alex (the converted official weights,
    ``$RESTORATION_LPIPS_WEIGHTS`` or experiments/pretrained_models; skipped without them)."""
    import os

    from restoration.losses.lpips_weights import OUTPUT_FILES
    from restoration.cli.test import main as test_main

    folder = Path(os.environ.get("RESTORATION_LPIPS_WEIGHTS", ROOT / "experiments" / "pretrained_models"))
    backbone, lins = (folder / name for name in OUTPUT_FILES["alex"])
    if not (backbone.is_file() and lins.is_file()):
        pytest.skip(f"LPIPS-alex weights not in {folder} (scripts/weights/convert_lpips_weights.py)")
    monkeypatch.chdir(tmp_path)
    _train_both_stages_short()
    lpips = (f"val.metrics.lpips={{type: calculate_lpips, better: lower, net: alex, crop_border: 4, "
             f"backbone_weights_path: {backbone}, lpips_weights_path: {lins}}}")
    stage1 = tmp_path / "experiments" / "RealESRNet_SwinIR_tiny_x4_demo" / "models" / "net_g_latest.pth"
    assert test_main(["-opt", str(TEST), "--force_yml", lpips]) == 0
    assert test_main(["-opt", str(TEST), "--force_yml", lpips, "name=stage1", f"path.pretrain_network_g={stage1}"]) == 0
    scores = [json.loads((tmp_path / "results" / name / "metrics.json").read_text())["demo_val_bsrgan"]
              for name in ("RealESRGAN_SwinIR_tiny_x4_demo", "stage1")]
    for s in scores:
        assert 0 < s["lpips"] < 1 and set(s["per_image"]) == {"chelsea", "coffee"}
        assert all(0 < v["lpips"] < 1 for v in s["per_image"].values())
    assert scores[0]["lpips"] != scores[1]["lpips"]
    log = next((tmp_path / "results" / "stage1").glob("test_*.log")).read_text()
    assert "lpips" in log
