"""Values that pass their type but not the machine: one options line each, exit 2, nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from restoration.cli.train import main as train_main
from tests.helpers import make_sr_pairs, train_options, write_options


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=2, size=32, scale=2)


@pytest.mark.parametrize("edit,message", [
    ({"manual_seed": 2**70}, "'manual_seed' must be an integer from 0 to 2147483647, got 1180591620717411303424"),
    ({"manual_seed": -1}, "'manual_seed' must be an integer from 0 to 2147483647, got -1"),
    ({"name": "x" * 300}, "'name' is 300 bytes long, at most 200"),  # was OSError: File name too long
])
def test_out_of_range_values_are_options_errors(data, tmp_path: Path, capsys, edit: dict, message: str) -> None:
    opt = {**train_options(data, "limits"), **edit}
    root = tmp_path / "root"
    root.mkdir()
    assert train_main(["-opt", str(write_options(opt, tmp_path / "o.yml")), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(root.iterdir()) == []


def test_a_training_pair_of_mismatched_sizes_stops_the_run_before_it_starts(tmp_path: Path, capsys) -> None:
    # start-up reads every header: a GT/LQ pair that does not match at the scale used to stop at iteration 1
    import cv2
    import numpy as np

    hr, lr = make_sr_pairs(tmp_path / "data", n=3, size=32, scale=2)
    bad = sorted(Path(lr).iterdir())[1]
    cv2.imwrite(str(bad), np.zeros((10, 12, 3), np.uint8))
    opt = train_options((hr, lr), "mismatch")
    opt["datasets"]["val_1"]["dataroot_lq"] = opt["datasets"]["val_1"]["dataroot_gt"] = str(hr)  # only training
    root = tmp_path / "root"
    root.mkdir()
    code = train_main(["-opt", str(write_options(opt, tmp_path / "o.yml")), "--root", str(root)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"size mismatch at scale 2: GT {Path(hr) / bad.name} is 32x32 but LQ {bad} is 10x12" in err
    assert "network g (SwinIR)" not in err  # nothing was built: the check ran before the model


def test_pretrained_weights_of_another_window_size_are_one_line(data, tmp_path: Path, capsys) -> None:
    # the network's check of the stored relative-position index raised a bare ValueError (a "bug" traceback)
    import torch

    from restoration.archs.build import build_network

    opt = train_options(data, "pretrain_ws")
    other = build_network({**opt["network_g"], "window_size": 8, "img_size": 16})
    torch.save({"params": other.state_dict()}, tmp_path / "ws8.pth")
    opt["path"] = {"pretrain_network_g": str(tmp_path / "ws8.pth")}
    assert train_main(["-opt", str(write_options(opt, tmp_path / "o.yml")), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"WeightsError: {tmp_path / 'ws8.pth'} does not fit SwinIR: checkpoint buffer" in err
    assert "(different window size?)" in err


def test_resuming_from_a_moved_option_file_is_not_an_option_change(data, tmp_path: Path) -> None:
    # the option file's own path is run-time state: it used to be saved in every state and logged as changed
    import shutil

    opt = train_options(data, "moved", **{"train.total_iter": 4, "logger.save_checkpoint_freq": 2})
    (tmp_path / "a").mkdir()
    first = write_options(opt, tmp_path / "a" / "o.yml")
    assert train_main(["-opt", str(first), "--root", str(tmp_path)]) == 0
    moved = tmp_path / "b" / "o.yml"
    moved.parent.mkdir()
    shutil.copy(first, moved)
    assert train_main(["-opt", str(moved), "--root", str(tmp_path), "--auto_resume"]) == 0
    logs = sorted((tmp_path / "experiments" / "moved").glob("train_moved_*.log"))
    assert "options unchanged since" in logs[-1].read_text()


def test_a_key_missing_from_an_lmdb_stops_the_run_before_it_starts(tmp_path: Path, capsys) -> None:
    # meta_info.txt lists a key that the database lacks: found at start-up, not at the batch that draws it
    from restoration.data.lmdb_writer import make_lmdb_from_folder

    hr, lr = make_sr_pairs(tmp_path / "data", n=3, size=32, scale=2)
    gt_db = make_lmdb_from_folder(hr, tmp_path / "gt.lmdb", n_thread=1)
    lq_db = make_lmdb_from_folder(lr, tmp_path / "lq.lmdb", n_thread=1)
    for db in (gt_db, lq_db):  # a listed image whose value was never written (e.g. an interrupted create_lmdb)
        with open(Path(db) / "meta_info.txt", "a", encoding="utf-8") as f:
            f.write("ghost.png (32,32,3) 1\n")
    opt = train_options((hr, lr), "lmdb_keys")
    opt["datasets"]["train"].update(dataroot_gt=str(gt_db), dataroot_lq=str(lq_db), io_backend={"type": "lmdb"},
                                    filename_tmpl="{}")
    root = tmp_path / "root"
    root.mkdir()
    code = train_main(["-opt", str(write_options(opt, tmp_path / "o.yml")), "--root", str(root)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "network g (SwinIR)" not in err
    assert f"1 of the 4 keys listed in meta_info.txt are not in LMDB {gt_db}: ghost" in err
