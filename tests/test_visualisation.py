"""What a user looks at: the degradation preview, validation grids, the test results page, the progress line."""

from __future__ import annotations

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
    from restoration.cli.train import main

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


# ------------------------------------------------------------------------------------------ validation grids
def test_every_validation_image_gets_an_lq_sr_gt_grid_on_disk_and_in_tensorboard(data, tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from restoration.cli.train import main

    opt = train_options(data, "grid", **{"train.total_iter": 3, "logger.save_checkpoint_freq": 3})
    assert main(["-opt", str(write_options(opt, tmp_path / "grid.yml")), "--root", str(tmp_path)]) == 0
    vis = tmp_path / "experiments" / "grid" / "visualization"
    for i in range(3):  # every image, not only the first
        assert imread(vis / f"img{i}" / f"img{i}_3.png").shape == (32, 32, 3)
        grid = imread(vis / f"img{i}" / f"img{i}_3_grid.png")
        assert grid.shape == (32, 3 * 32 + 2 * GAP, 3)  # LQ (upsampled) | SR | GT
        assert (grid[:, 64 + 2 * GAP:] == imread(data[0] / f"img{i}.png")).all()  # GT on the right
    board = EventAccumulator(str(tmp_path / "tb_logger" / "grid"), size_guidance={"images": 0}).Reload()
    assert sorted(board.Tags()["images"]) == ["tiny_val/img0", "tiny_val/img1", "tiny_val/img2"]


def test_val_save_grid_false_writes_no_grid(data, tmp_path) -> None:
    from restoration.cli.train import main

    opt = train_options(data, "nogrid", **{"train.total_iter": 3, "logger.save_checkpoint_freq": 3})
    opt["val"]["save_grid"] = False
    assert main(["-opt", str(write_options(opt, tmp_path / "nogrid.yml")), "--root", str(tmp_path)]) == 0
    vis = tmp_path / "experiments" / "nogrid" / "visualization"
    assert (vis / "img0" / "img0_3.png").exists() and not list(vis.rglob("*_grid.png"))


# ------------------------------------------------------------------------------------------ test.py's page
def _test_options(data: tuple[Path, Path], name: str) -> dict:
    return {"name": name, "model_type": "SRModel", "scale": 2, "num_gpu": 0,
            "datasets": {"test_1": {"name": "tiny", "type": "PairedImageDataset", "dataroot_gt": str(data[0]),
                                    "dataroot_lq": str(data[1]), "io_backend": {"type": "disk"}}},
            "network_g": {"type": "Bicubic", "upscale": 2},
            "val": {"save_img": True, "pbar": False, "metrics": {
                "psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True}}}}


def test_test_py_writes_a_results_page_with_every_image_and_small_thumbnails(tmp_path) -> None:
    from restoration.cli.test import main
    from restoration.utils.results_page import THUMBNAIL_MAX_SIDE

    data = make_sr_pairs(tmp_path / "data", n=3, size=300, scale=2)
    cfg = write_options(_test_options(data, "page"), tmp_path / "page.yml")
    assert main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    res = tmp_path / "results" / "page"
    page = (res / "index.md").read_text()
    assert "protocol: psnr Y channel, crop 2, higher is better" in page and "tiny (3 images)" in page
    for i in range(3):
        row = next(line for line in page.splitlines() if line.startswith(f"| img{i} |"))
        assert f"(<thumbnails/tiny/img{i}.png>)](<visualization/tiny/img{i}.png>)" in row
        thumb = imread(res / "thumbnails" / "tiny" / f"img{i}.png")
        assert max(thumb.shape[:2]) == THUMBNAIL_MAX_SIDE  # 300 px shrunk
        assert (res / "visualization" / "tiny" / f"img{i}.png").exists()


def test_a_failed_test_run_leaves_no_results_folder_and_restores_the_archived_one(tmp_path) -> None:
    from restoration.cli.test import main

    data = make_sr_pairs(tmp_path / "data", n=3, size=32, scale=2)
    cfg = write_options(_test_options(data, "fail"), tmp_path / "fail.yml")
    assert main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    results = tmp_path / "results"
    before = sorted(p.name for p in (results / "fail").iterdir())
    (data[1] / "img1.png").write_bytes(b"not a png")  # unreadable mid-run
    assert main(["-opt", str(cfg), "--root", str(tmp_path)]) == 1
    assert sorted(p.name for p in results.iterdir()) == ["fail"]  # no archive, no half-made folder
    assert sorted(p.name for p in (results / "fail").iterdir()) == before
    missing = write_options({**_test_options(data, "noweights"), "path": {"pretrain_network_g": str(tmp_path / "x.pth")},
                             "network_g": {"type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 8,
                                           "window_size": 4, "depths": [1], "embed_dim": 8, "num_heads": [2],
                                           "upsampler": "pixelshuffledirect"}}, tmp_path / "nw.yml")
    assert main(["-opt", str(missing), "--root", str(tmp_path)]) != 0
    assert not (results / "noweights").exists()
