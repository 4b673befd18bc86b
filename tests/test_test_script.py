"""test.py: Set5 bicubic baseline through the full pipeline, metrics.json layout, saved images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restoration.cli.test import main as run_test_script

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_bicubic_baseline_through_test_py(benchmarks: Path, tmp_path: Path, scale: int) -> None:
    cfg = ROOT / "options" / "test" / "Bicubic" / f"test_Bicubic_Set5_x{scale}.yml"
    set5 = benchmarks / "Set5"
    code = run_test_script(["-opt", str(cfg), "--root", str(tmp_path), "--force_yml",
                      f"datasets.test_1.dataroot_gt={set5 / 'HR'}",
                      f"datasets.test_1.dataroot_lq={set5 / 'LR_bicubic' / f'X{scale}'}",
                      "val.save_img=true"])
    assert code == 0
    res_dir = tmp_path / "results" / f"Bicubic_Set5_x{scale}"
    result = json.loads((res_dir / "metrics.json").read_text())["Set5"]
    psnr, ssim = PUBLISHED[scale]
    assert abs(result["psnr"] - psnr) <= 0.03 and abs(result["ssim"] - ssim) <= 0.0015, result
    assert sorted(result["per_image"]) == ["baby", "bird", "butterfly", "head", "woman"]
    assert set(result["per_image"]["baby"]) == {"psnr", "ssim"}
    assert len(list((res_dir / "visualization" / "Set5").glob("*.png"))) == 5
    log = next(res_dir.glob("test_Bicubic_Set5_*.log")).read_text()
    assert "Set5 (5 images)" in log and "baby" in log


def test_a_dataset_without_ground_truth_is_scored_by_no_reference_metrics(tmp_path: Path) -> None:
    """RealSRSet-like folders: images and no-reference scores; PSNR is skipped with one notice, not a '-' column."""
    import yaml

    from tests.helpers import make_sr_pairs

    _, lr = make_sr_pairs(tmp_path / "data", n=2, size=32, scale=2)
    opt = {
        "name": "nogt", "model_type": "SRModel", "scale": 2, "num_gpu": 0,
        "datasets": {"test_1": {"name": "photos", "type": "SingleImageDataset", "dataroot_lq": str(lr),
                                "io_backend": {"type": "disk"}}},
        "network_g": {"type": "Bicubic", "upscale": 2},
        "val": {"save_img": True, "metrics": {
            "psnr": {"type": "calculate_psnr", "crop_border": 2},
            "sharpness": {"type": "calculate_sharpness"}, "noise": {"type": "calculate_noise_sigma"}}},
    }
    cfg = tmp_path / "nogt.yml"
    cfg.write_text(yaml.safe_dump(opt))
    assert run_test_script(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    res_dir = tmp_path / "results" / "nogt"
    result = json.loads((res_dir / "metrics.json").read_text())["photos"]
    assert result["skipped"] == ["psnr"] and result["num_images"] == 2
    assert result["sharpness"] > 0 and result["noise"] >= 0
    assert all(set(scores) == {"sharpness", "noise"} for scores in result["per_image"].values())
    log = next(res_dir.glob("test_nogt_*.log")).read_text()
    assert log.count("no ground truth in this dataset: psnr skipped") == 1
    table = log[log.index("photos (2 images)"):]
    assert "sharpness" in table.splitlines()[1] and "psnr" not in table.splitlines()[1]
    assert len(list((res_dir / "visualization" / "photos").glob("*.png"))) == 2


def _tiny_swinir_test(tmp_path: Path, **extra: object) -> Path:
    import yaml

    from tests.helpers import make_sr_pairs

    hr, lr = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)
    opt = {
        "name": "tiny", "model_type": "SRModel", "scale": 2, "num_gpu": 0,
        "datasets": {"test_1": {"name": "pairs", "type": "PairedImageDataset", "dataroot_gt": str(hr),
                                "dataroot_lq": str(lr)}},
        "network_g": {"type": "SwinIR", "upscale": 2, "img_size": 8, "window_size": 4, "depths": [1],
                      "embed_dim": 8, "num_heads": [2], "mlp_ratio": 2, "upsampler": "pixelshuffledirect"},
        "val": {"metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2}}},
        **extra,
    }
    cfg = tmp_path / "tiny.yml"
    cfg.write_text(yaml.safe_dump(opt))
    return cfg


def test_the_log_names_the_weights_file_its_hash_and_entry_and_results_are_archived(tmp_path: Path, capsys) -> None:
    """The log says which weights produced the numbers (path, sha256 prefix, params_ema/params); a second run
    archives the first one's results like experiments/, and the progress bar is on by default."""
    import hashlib

    import torch

    from restoration.archs.build import build_network

    cfg = _tiny_swinir_test(tmp_path)
    import yaml

    net = build_network(yaml.safe_load(cfg.read_text())["network_g"])
    weights = tmp_path / "w.pth"
    torch.save({"params": net.state_dict(), "params_ema": net.state_dict()}, weights)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    args = ["-opt", str(cfg), "--root", str(tmp_path), "--force_yml", f"path.pretrain_network_g={weights}"]
    assert run_test_script(args) == 0
    res_dir = tmp_path / "results" / "tiny"
    log = next(res_dir.glob("test_tiny_*.log")).read_text()
    assert (f"loaded weights {weights} (sha256 {sha}, entry 'params_ema' (the EMA weights; chosen automatically: "
            "params_ema, then params))") in log
    assert "img/s" in capsys.readouterr().err  # tqdm's bar
    (res_dir / "marker").write_text("first run")
    assert run_test_script([*args, "path.param_key_g=params", "val.pbar=false"]) == 0
    archived = [p for p in (tmp_path / "results").iterdir() if p.name.startswith("tiny_archived_")]
    assert len(archived) == 1 and (archived[0] / "marker").read_text() == "first run"
    assert (archived[0] / "metrics.json").is_file() and (res_dir / "metrics.json").is_file()
    log = next(res_dir.glob("test_tiny_*.log")).read_text()
    assert f"loaded weights {weights} (sha256 {sha}, entry 'params' (the trained weights, no EMA; given))\n" in log
    assert f"existing results folder archived to {archived[0]}" in log
    assert "img/s" not in capsys.readouterr().err


def test_the_log_starts_with_the_versions_and_the_resolved_options(tmp_path: Path) -> None:
    import platform

    import torch

    cfg = _tiny_swinir_test(tmp_path)
    assert run_test_script(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    log = next((tmp_path / "results" / "tiny").glob("test_tiny_*.log")).read_text()
    first = log.splitlines()[0]
    assert f"python {platform.python_version()}, torch {torch.__version__}, torchvision " in first
    assert log.index("device: cpu") < log.index("options:\n")
    options = log[log.index("options:\n"):]
    assert "  pbar: true\n" in options and "name: tiny\n" in options
    assert "randomly initialised weights" in log


def test_a_released_checkpoint_is_compared_with_its_published_score(tmp_path: Path) -> None:
    """test.py puts the paper's score beside ours and flags a difference above 0.05 dB / 0.001 SSIM."""
    import torch
    import yaml

    from restoration import build_network, zoo
    from tests.helpers import make_sr_pairs

    entry = zoo.get("001_classicalSR_DIV2K_s48w8_SwinIR-M_x2.pth")
    torch.manual_seed(0)
    weights = tmp_path / entry.name  # random weights under the release's file name: far from the paper
    torch.save({"params": build_network(entry.network_g).state_dict()}, weights)
    hr, lr = make_sr_pairs(tmp_path / "data", n=1, size=32, scale=2)
    opt = {
        "name": "vs_paper", "model_type": "SRModel", "scale": 2, "num_gpu": 0,
        "datasets": {"test_1": {"name": "Set5", "type": "PairedImageDataset", "dataroot_gt": str(hr),
                                "dataroot_lq": str(lr), "io_backend": {"type": "disk"}}},
        "network_g": entry.network_g, "path": {"pretrain_network_g": str(weights)},
        "val": {"save_img": False, "pbar": False, "metrics": {
            "psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True},
            "psnr_rgb": {"type": "calculate_psnr", "crop_border": 2}}},  # not the papers' protocol: no comparison
    }
    cfg = tmp_path / "vs_paper.yml"
    cfg.write_text(yaml.safe_dump(opt))
    assert run_test_script(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    res_dir = tmp_path / "results" / "vs_paper"
    result = json.loads((res_dir / "metrics.json").read_text())["Set5"]
    assert result["published"] == {"psnr": 38.35}
    assert len(result["differs_from_published"]) == 1 and "differs from the published 38.3500" in \
        result["differs_from_published"][0]
    log = next(res_dir.glob("test_vs_paper_*.log")).read_text()
    assert "published (paper)" in log and "38.3500" in log
