"""One base class for user-fixable problems: those are one line and a non-zero exit; bugs keep their traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from restoration.errors import DataError, MissingDataError, RestorationError
from restoration.models.sr_model import SRModel
from restoration.options.parse import OptionsError
from restoration.registry import RegistryError
from restoration.cli.test import main as run_test_script
from restoration.cli.train import main as train_main
from restoration.utils.checkpoint import CheckpointError, load_training_state
from restoration.utils.dist import DistError
from restoration.utils.image_io import ImageReadError
from restoration.utils.weights import WeightsError
from tests.helpers import make_sr_pairs, train_options, write_options


def test_every_user_error_shares_the_base_and_keeps_its_builtin_base() -> None:
    for cls, builtin in [(OptionsError, ValueError), (RegistryError, KeyError), (WeightsError, RuntimeError),
                         (DistError, RuntimeError), (ImageReadError, OSError), (DataError, ValueError),
                         (MissingDataError, FileNotFoundError), (CheckpointError, ValueError)]:
        assert issubclass(cls, RestorationError) and issubclass(cls, builtin), cls


def test_a_bug_keeps_its_traceback_in_the_log_file(tmp_path: Path, monkeypatch) -> None:
    data = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)

    def broken(self, batch, it):
        raise ValueError("an internal bug")  # a ValueError that is not the user's fault

    monkeypatch.setattr(SRModel, "optimize_parameters", broken)
    cfg = write_options(train_options(data, "bug"), tmp_path / "o.yml")
    with pytest.raises(ValueError, match="an internal bug"):
        train_main(["-opt", str(cfg), "--root", str(tmp_path)])
    log = next((tmp_path / "experiments" / "bug").glob("train_bug_*.log")).read_text()
    assert "unexpected error (a bug" in log and "Traceback" in log and "ValueError: an internal bug" in log


def test_missing_data_is_one_line(tmp_path: Path, capsys) -> None:
    data = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)
    opt = train_options(data, "gone")
    cfg = write_options(opt, tmp_path / "o.yml")
    for png in (tmp_path / "data").rglob("*.png"):  # the folders exist (options pass), the images do not
        png.unlink()
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "MissingDataError: no image files in" in err and "Traceback" not in err


@pytest.mark.parametrize("content, message", [
    (b"not a zip at all", "cannot read training state"),
    (None, "is a weights file (models/net_g_*.pth); resume from a training_states/<iter>.state file"),
])
def test_a_bad_resume_state_names_the_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "3.state"
    if content is None:
        torch.save({"params": {"w": torch.zeros(1)}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_training_state(str(path))
    assert message in str(err.value) and str(path) in str(err.value)


def test_resume_state_of_another_network_is_one_line(tmp_path: Path, capsys) -> None:
    data = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)
    opt = train_options(data, "a", **{"train.total_iter": 3, "logger.save_checkpoint_freq": 3, "val": None})
    assert train_main(["-opt", str(write_options(opt, tmp_path / "a.yml")), "--root", str(tmp_path)]) == 0
    state = tmp_path / "experiments" / "a" / "training_states" / "3.state"
    other = train_options(data, "b", **{"path": {"resume_state": str(state)}, "val": None})
    other["network_g"] = {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 2}
    assert train_main(["-opt", str(write_options(other, tmp_path / "b.yml")), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "CheckpointError: the training state does not fit net_g (SimpleSRNet)" in err and "Traceback" not in err


def test_test_py_reports_user_errors_as_one_line(tmp_path: Path, capsys) -> None:
    data = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)
    opt = train_options(data, "t")
    opt["path"] = {"pretrain_network_g": str(tmp_path / "weights.pth")}
    (tmp_path / "weights.pth").write_bytes(b"garbage")
    opt["datasets"] = {"test_1": opt["datasets"]["val_1"]}
    del opt["train"]
    assert run_test_script(["-opt", str(write_options(opt, tmp_path / "t.yml")), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "WeightsError: cannot read weights file" in err and "weights.pth" in err and "Traceback" not in err
