"""Writes the machine refuses: a full disk, a file-size limit, a folder without permission, a mount point.

Each is one line naming the path (never a traceback), and leaves nothing half-made. Root ignores file
permissions and nobody can fill this disk, so the refusals are provoked where the write happens: a
real RLIMIT_FSIZE for the file-size limit, a refusing ``os.mkdir``/``mkstemp`` for the rest.
"""

from __future__ import annotations

import errno
import os
import resource
import tempfile
from pathlib import Path

import numpy as np
import pytest

from restoration.cli.train import main as train_main
from restoration.errors import DiskWriteError
from restoration.utils.image_io import imwrite
from tests.helpers import make_sr_pairs, train_options, write_options


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=2, size=32, scale=2)


def _opt(data: tuple[Path, Path], name: str, **overrides) -> dict:
    return train_options(data, name, **{"train.total_iter": 1, "train.warmup_iter": -1, "val": None, **overrides})


def _train(opt: dict, tmp_path: Path) -> int:
    return train_main(["-opt", str(write_options(opt, tmp_path / "o.yml")), "--root", str(tmp_path)])


def test_a_file_size_limit_while_writing_an_image_is_one_error_naming_it(tmp_path: Path) -> None:
    target = tmp_path / "out" / "big.png"
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)  # ~28 KB as PNG
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(DiskWriteError, match=rf"cannot write {target}: File too large"):
            imwrite(target, noise)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert os.listdir(target.parent) == []  # no temporary left


def test_a_full_disk_during_validation_images_costs_the_validation_not_the_run(data, tmp_path: Path, monkeypatch,
                                                                               capsys) -> None:
    real_mkstemp = tempfile.mkstemp

    def full_for_images(*args, **kwargs):
        if "visualization" in str(kwargs.get("dir", "")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", full_for_images)
    opt = train_options(data, "full", **{"train.total_iter": 2, "train.warmup_iter": -1, "val.val_freq": 1, "val.save_img": True,
                                         "logger.save_checkpoint_freq": 1, "logger.use_tb_logger": False})
    assert _train(opt, tmp_path) == 0
    err = capsys.readouterr().err
    assert "validation" in err and "failed, training continues: DiskWriteError: cannot write" in err
    assert "No space left on device" in err and "Traceback" not in err
    exp = tmp_path / "experiments" / "full"
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["1.state", "2.state"]
    assert not [p for p in (exp / "visualization").rglob("*") if p.is_file()]  # no half-written image


def _refuse_mkdir_under(monkeypatch: pytest.MonkeyPatch, folder: Path, code: int = errno.EACCES) -> None:
    """``os.mkdir`` refuses ``folder`` and everything under it."""
    real_mkdir = os.mkdir

    def refusing(path, *args, **kwargs):
        if os.path.abspath(path) == str(folder) or os.path.abspath(path).startswith(str(folder) + os.sep):
            raise PermissionError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refusing)


def test_an_unwritable_tb_logger_folder_is_one_line_and_leaves_no_experiment_folder(data, tmp_path: Path,
                                                                                    monkeypatch, capsys) -> None:
    _refuse_mkdir_under(monkeypatch, tmp_path / "tb_logger")
    opt = _opt(data, "tb")
    assert _train(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"ExperimentFolderError: cannot create {tmp_path / 'tb_logger'}: Permission denied" in err
    assert "Traceback" not in err
    assert not (tmp_path / "experiments").exists() and not (tmp_path / "tb_logger").exists()


def test_an_unwritable_folder_during_a_rerun_puts_the_archived_run_back(data, tmp_path: Path, monkeypatch,
                                                                       capsys) -> None:
    opt = _opt(data, "again", **{"logger.use_tb_logger": False})
    assert _train(opt, tmp_path) == 0
    exp = tmp_path / "experiments" / "again"
    before = sorted(p.relative_to(exp) for p in exp.rglob("*"))
    _refuse_mkdir_under(monkeypatch, exp / "models", errno.EROFS)
    assert _train(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"cannot create {exp / 'models'}: Read-only file system" in err and "was put back" in err
    assert sorted(p.relative_to(exp) for p in exp.rglob("*")) == before
    assert not list(exp.parent.glob("again_archived_*"))


def test_an_unwritable_results_folder_of_test_py_is_one_line(data, tmp_path: Path, monkeypatch, capsys) -> None:
    from restoration.cli.test import main as test_main

    opt = {"name": "res", "scale": 2, "network_g": {"type": "Bicubic", "upscale": 2},
           "datasets": {"test_1": {"type": "PairedImageDataset", "name": "pairs", "dataroot_gt": str(data[0]),
                                   "dataroot_lq": str(data[1])}},
           "val": {"metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2}}}}
    _refuse_mkdir_under(monkeypatch, tmp_path / "results")
    code = test_main(["-opt", str(write_options(opt, tmp_path / "t.yml")), "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"cannot write {tmp_path / 'results'}: Permission denied" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_an_experiment_folder_that_is_a_mount_point_is_never_renamed(data, tmp_path: Path, monkeypatch,
                                                                     capsys) -> None:
    opt = _opt(data, "mnt", **{"logger.use_tb_logger": False})
    assert _train(opt, tmp_path) == 0
    exp = tmp_path / "experiments" / "mnt"
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: os.path.abspath(p) == str(exp) or real_ismount(p))
    assert _train(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"ExperimentFolderError: {exp} is a mount point and holds an earlier run" in err
    assert "Traceback" not in err and not list(exp.parent.glob("mnt_archived_*"))
    assert (exp / "training_states" / "1.state").is_file()


def test_a_rename_the_file_system_refuses_is_one_line(tmp_path: Path, monkeypatch) -> None:
    from restoration.errors import ExperimentFolderError
    from restoration.utils.experiment_folder import archive_folder

    folder = tmp_path / "exp"
    (folder / "models").mkdir(parents=True)

    def busy(src, dst):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), src)

    monkeypatch.setattr(os, "rename", busy)
    with pytest.raises(ExperimentFolderError, match=r"cannot archive .*exp as .*exp_archived_0_x: Device or resource"):
        archive_folder(str(folder), "0_x", "exp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # the claimed archive name is released


def _infer_inputs(tmp_path: Path) -> list[str]:
    """``restoration-infer`` arguments for a tiny network on two inputs: ``a_rgba.png`` (alpha kept, so written
    by the alpha writer) and ``b.png``."""
    import cv2
    import torch

    from restoration.archs.build import build_network

    kwargs = dict(num_feat=4, num_block=1, upscale=2)
    torch.manual_seed(0)
    torch.save({"params": build_network(dict(type="SimpleSRNet", **kwargs)).state_dict()}, tmp_path / "w.pth")
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a_rgba.png"), rng.integers(0, 256, (8, 8, 4), dtype=np.uint8))
    imwrite(tmp_path / "in" / "b.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return ["-i", str(tmp_path / "in"), "--weights", str(tmp_path / "w.pth"), "--arch", "SimpleSRNet",
            "--arch-opt", '{"num_feat": 4, "num_block": 1, "upscale": 2}', "--no-progress"]


def test_infer_output_folder_with_a_file_in_its_place_is_one_line(tmp_path: Path, capsys) -> None:
    from restoration.cli.infer import main as infer_main

    args = _infer_inputs(tmp_path)
    (tmp_path / "blocker").write_text("a file where the output folder's parent should be")
    out = tmp_path / "blocker" / "out"
    assert infer_main([*args, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "DiskWriteError" in line]
    assert len(lines) == 1 and f"DiskWriteError: cannot create the output folder {out}: " in lines[0], err
    assert "Traceback" not in err
    assert (tmp_path / "blocker").read_text().startswith("a file")


@pytest.mark.parametrize("first", ["a_rgba.png", "b.png"])
def test_infer_on_a_full_disk_stops_with_one_line_naming_the_image_and_leaves_nothing(
        first: str, tmp_path: Path, monkeypatch, capsys) -> None:
    from restoration.cli.infer import main as infer_main

    args = _infer_inputs(tmp_path)
    if first == "b.png":  # the plain writer first: the alpha image goes
        (tmp_path / "in" / "a_rgba.png").unlink()
    out = tmp_path / "out"
    real_mkstemp = tempfile.mkstemp

    def full_under_out(*a, **kw):
        if str(kw.get("dir", "")).startswith(str(out)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_mkstemp(*a, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", full_under_out)
    assert infer_main([*args, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "DiskWriteError" in line]
    assert len(lines) == 1, err  # the run stops at the first refused write: every later one would fail alike
    assert lines[0].endswith(f"DiskWriteError: cannot write {out / first}: No space left on device")
    assert "Traceback" not in err
    assert out.is_dir() and not list(out.iterdir())  # no image, no temporary file
