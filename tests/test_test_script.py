"""test.py: Set5 bicubic baseline through the full pipeline, metrics.json layout, saved images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restoration.tester import main as run_test_script

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
