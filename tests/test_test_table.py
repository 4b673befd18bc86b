"""The table test.py logs states its protocol: channel (Y or RGB), border crop and which way each metric is better."""

from __future__ import annotations

from pathlib import Path

import yaml

from restoration.cli.test import main as run_test_script
from tests.helpers import make_sr_pairs


def test_the_table_states_channel_crop_and_better_direction(tmp_path: Path) -> None:
    hr, lr = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)
    opt = {
        "name": "protocol", "model_type": "SRModel", "scale": 2, "num_gpu": 0,
        "datasets": {"test_1": {"name": "pairs", "type": "PairedImageDataset", "dataroot_gt": str(hr),
                                "dataroot_lq": str(lr)}},
        "network_g": {"type": "Bicubic", "upscale": 2},
        "val": {"save_img": False, "metrics": {
            "psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True},
            "ssim": {"type": "calculate_ssim", "crop_border": 0},  # RGB: the metric's own default
            "noise": {"type": "calculate_noise_sigma", "better": "lower"}}},  # Y and crop 0 by its defaults
    }
    cfg = tmp_path / "protocol.yml"
    cfg.write_text(yaml.safe_dump(opt))
    assert run_test_script(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    log = next((tmp_path / "results" / "protocol").glob("test_protocol_*.log")).read_text()
    table = log[log.index("pairs (2 images)"):].splitlines()
    assert table[2].startswith("Bicubic ")  # header, one row, then the protocol line
    assert table[3] == ("protocol: noise Y channel, crop 0, lower is better; psnr Y channel, crop 2, higher is better; "
                        "ssim RGB, crop 0, higher is better")  # in the table's column order
