"""Interrupted training resumes bit-exactly; SIGTERM saves a state; checkpoints are complete files."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from restoration.models.sr_model import SRModel
from restoration.cli.train import main as train_main
from restoration.utils.checkpoint import atomic_save, find_latest_state
from tests.helpers import make_sr_pairs, train_options, write_options


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=5, size=32, scale=2)


def _weights(exp: Path, it: int) -> dict:
    return torch.load(exp / "models" / f"net_g_{it}.pth", weights_only=True)


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for group in a:
        for key in a[group]:
            assert torch.equal(a[group][key], b[group][key]), f"{group}.{key} differs"


@pytest.mark.parametrize("workers", [0, 2])
def test_sigterm_then_auto_resume_is_bit_exact(data, tmp_path: Path, monkeypatch, workers: int) -> None:
    opt = train_options(data, "run", **{"datasets.train.num_worker_per_gpu": workers,
                                        "logger.save_checkpoint_freq": 100})
    straight = write_options({**opt, "name": "straight"}, tmp_path / "straight.yml")
    assert train_main(["-opt", str(straight), "--root", str(tmp_path)]) == 0

    # Interrupted run: a SIGTERM arrives during iteration 4 (the state is saved at 4, not at a multiple of 100).
    original = SRModel.optimize_parameters

    def step_then_signal(self, batch, current_iter):
        out = original(self, batch, current_iter)
        if current_iter == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(SRModel, "optimize_parameters", step_then_signal)
    cfg = write_options({**opt, "name": "interrupted"}, tmp_path / "interrupted.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "interrupted"
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["4.state"]
    monkeypatch.setattr(SRModel, "optimize_parameters", original)

    assert train_main(["-opt", str(cfg), "--root", str(tmp_path), "--auto_resume"]) == 0
    assert not any(p.name.startswith("interrupted_archived") for p in exp.parent.iterdir())
    _assert_identical(_weights(tmp_path / "experiments" / "straight", 6), _weights(exp, 6))
    state = torch.load(exp / "training_states" / "6.state", weights_only=True)
    assert state["iter"] == 6 and state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(2e-3 * 0.25)


def test_resume_state_follows_experiments_root_and_skips_corrupt(data, tmp_path: Path) -> None:
    exp = tmp_path / "custom" / "exp"
    opt = train_options(data, "custom", **{"train.total_iter": 4})
    opt["path"] = {"experiments_root": str(exp)}
    cfg = write_options(opt, tmp_path / "c.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    states = exp / "training_states"
    assert find_latest_state(str(states)) == str(states / "4.state")
    (states / "9.state").write_bytes(b"truncated")  # e.g. a copy cut short: skipped, not fatal
    assert find_latest_state(str(states)) == str(states / "4.state")


def test_atomic_save_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "x.pth"
    atomic_save({"a": torch.ones(2)}, str(target))

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save({"a": Boom()}, str(target))
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pth"]  # no temporary left behind


def test_keep_last_prunes_old_checkpoints(data, tmp_path: Path) -> None:
    opt = train_options(data, "keep", **{"logger.keep_last": 2, "logger.save_checkpoint_freq": 1,
                                         "val.val_freq": 100})
    assert train_main(["-opt", str(write_options(opt, tmp_path / "k.yml")), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "keep"
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["5.state", "6.state"]
    assert sorted(p.name for p in (exp / "models").iterdir()) == ["net_g_5.pth", "net_g_6.pth", "net_g_latest.pth"]


@pytest.mark.parametrize("workers", [0, 1])
def test_corrupt_image_gives_one_clear_error(data, tmp_path: Path, capsys, workers: int) -> None:
    import shutil

    hr, lr = (tmp_path / "HR", tmp_path / "LR")
    shutil.copytree(data[0], hr)
    shutil.copytree(data[1], lr)
    (hr / "img3.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    opt = train_options((hr, lr), "corrupt", **{"datasets.train.num_worker_per_gpu": workers,
                                                "datasets.train.dataset_enlarge_ratio": 4})
    code = train_main(["-opt", str(write_options(opt, tmp_path / "c.yml")), "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "ImageReadError" in err and "img3.png" in err
    assert "Traceback" not in err


def test_resuming_with_another_thread_count_says_it_is_not_bit_exact(data, tmp_path: Path) -> None:
    """CPU sums split by thread: a state records its thread count, and a resume with another one warns."""
    opt = train_options(data, "threads", **{"train.total_iter": 4, "val": None})
    cfg = write_options(opt, tmp_path / "t.yml")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
        exp = tmp_path / "experiments" / "threads"
        state = torch.load(exp / "training_states" / "4.state", weights_only=True)
        assert state["torch_threads"] == 1
        (exp / "training_states" / "4.state").rename(exp / "training_states" / "2.state")  # resume from "2"
        torch.set_num_threads(2)
        assert train_main(["-opt", str(cfg), "--root", str(tmp_path), "--auto_resume"]) == 0
        log = "".join(p.read_text() for p in exp.glob("train_threads_*.log"))
        assert ("resuming a run saved with 1 torch threads on 2: CPU sums split by thread, so it follows the "
                "original to float tolerance, not bit for bit (set OMP_NUM_THREADS=1 for an exact continuation)"
                in log)
        torch.set_num_threads(1)  # the same count (resuming from the same state again): no warning
        for stale in exp.glob("train_threads_*.log"):
            stale.unlink()
        assert train_main(["-opt", str(cfg), "--root", str(tmp_path), "--auto_resume"]) == 0
        log = "".join(p.read_text() for p in exp.glob("train_threads_*.log"))
        assert "resumed from" in log and "torch threads" not in log
    finally:
        torch.set_num_threads(threads)
