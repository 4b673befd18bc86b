"""What a user looks at: the degradation preview, validation grids, the test results page, the progress line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from restoration.data.degradation_preview import PAIR_GAP, PAIRS_PER_ROW
from restoration.utils.image_grid import GAP
from restoration.utils.image_io import imread
from tests.helpers import make_sr_pairs, train_options, write_options

BLUR = {"blur_kernel_size": 7, "kernel_list": ["iso", "aniso"], "kernel_prob": [0.5, 0.5], "blur_sigma": [0.2, 3],
        "betag_range": [0.5, 4], "betap_range": [1, 2], "sinc_prob": 0.1,
        "blur_kernel_size2": 7, "kernel_list2": ["iso", "aniso"], "kernel_prob2": [0.5, 0.5], "blur_sigma2": [0.2, 1.5],
        "betag_range2": [0.5, 4], "betap_range2": [1, 2], "sinc_prob2": 0.1, "final_sinc_prob": 0.8}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=3, size=32, scale=2)


def _preview_size(n: int, gt_size: int) -> tuple[int, int]:
    """(height, width) of n (GT | LQ) pairs of gt_size² patches, PAIRS_PER_ROW pairs a row."""
    per_row, rows = min(n, PAIRS_PER_ROW), -(-n // PAIRS_PER_ROW)
    return rows * gt_size + (rows - 1) * PAIR_GAP, per_row * (2 * gt_size + GAP) + (per_row - 1) * PAIR_GAP


def _realesrgan_options(data: tuple[Path, Path]) -> dict:
    opt = train_options(data, "real", **{"model_type": "RealESRNetModel"})
    opt["datasets"]["train"] = {"type": "RealESRGANDataset", "dataroot_gt": str(data[0]), "io_backend": {"type": "disk"},
                                "crop_pad_size": 32, "num_worker_per_gpu": 0, "batch_size_per_gpu": 2, **BLUR}
    opt["train"].update({"gt_size": 16, "queue_size": 0})
    return opt


def test_train_py_preview_degradations_writes_the_grid_of_a_paired_dataset_and_does_not_train(data, tmp_path) -> None:
    from restoration.train_loop import main

    cfg = write_options(train_options(data, "pv"), tmp_path / "pv.yml")
    assert main(["-opt", str(cfg), "--root", str(tmp_path), "--preview_degradations", "6"]) == 0
    exp = tmp_path / "experiments" / "pv"
    grid = imread(exp / "degradation_preview.png")
    assert grid.shape == (*_preview_size(6, 16), 3)
    assert not (exp / "models").exists() and not (exp / "training_states").exists()  # nothing trained


def test_the_preview_script_degrades_real_esrgan_samples(data, tmp_path) -> None:
    from scripts.data.preview_degradations import main

    cfg = write_options(_realesrgan_options(data), tmp_path / "real.yml")
    out = tmp_path / "preview.png"
    assert main(["-opt", str(cfg), "-n", "5", "-o", str(out)]) == 0
    grid = imread(out)
    assert grid.shape == (*_preview_size(5, 16), 3)
    gt, lq = grid[:16, :16].astype(int), grid[:16, 16 + GAP: 32 + GAP].astype(int)
    assert abs(gt - lq).mean() > 1  # the LQ half is degraded, not a copy
    # nearest upsampling: every LQ pixel is a 2x2 block
    assert (lq[0::2, 0::2] == lq[1::2, 1::2]).all()


# ------------------------------------------------------------------------------------------ the progress line
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Board:
    def __init__(self) -> None:
        self.scalars: dict[str, float] = {}

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars[tag] = value


def test_the_progress_line_gives_the_rate_of_the_last_window_and_its_eta() -> None:
    import logging

    from restoration.utils.logger import ProgressLogger

    clock, board = _Clock(), _Board()
    progress = ProgressLogger(total_iter=500_000, start_iter=1000, tb_writer=board, window=100, clock=clock)
    log = logging.getLogger("test_progress")
    clock.now = 1000.0  # a slow start (compilation, a validation) ...
    progress(log, {"iter": 1100, "epoch": 3, "lr": 2e-4, "iter_time": 0.5, "data_time": 0.1, "l_pix": 0.25})
    clock.now += 100 / 4.0  # ... then 4 it/s
    line = progress(log, {"iter": 1200, "epoch": 3, "lr": 2e-4, "iter_time": 0.25, "data_time": 0.01, "l_pix": 0.125})
    assert line == ("[epoch   3, iter    1,200/500,000, lr 2.000e-04] 4.00 it/s (last 100), eta 1 d 10:38:20 "
                    "| l_pix: 1.2500e-01")  # 498,800 iterations at 4 it/s
    assert board.scalars["train/iter_time"] == 0.25 and board.scalars["train/data_time"] == 0.01
    assert board.scalars["train/iters_per_second"] == 4.0
