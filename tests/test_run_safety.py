"""One run per experiment folder, states that are checked before they are trusted, resumes that say
what changed, and folders that are only ever archived when they are experiment folders."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

import restoration.training.checkpoints as checkpoints
import restoration.training.validation as validation
from restoration.training.folders import prepare_folders
from restoration.cli.train import main as train_main
from restoration.utils.checkpoint import CheckpointError, atomic_save
from tests.helpers import make_sr_pairs, train_options, write_options

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=4, size=32, scale=2)


def _run(opt: dict, tmp_path: Path, *extra: str, name: str = "r.yml") -> int:
    return train_main(["-opt", str(write_options(opt, tmp_path / name)), "--root", str(tmp_path), *extra])


def _tiny(data: tuple[Path, Path], name: str, **overrides) -> dict:
    return train_options(data, name, **{"logger.use_tb_logger": False, "val.val_freq": 100, "train.total_iter": 4,
                                        "train.warmup_iter": -1, **overrides})


def _log(exp: Path) -> str:
    return "".join(p.read_text() for p in sorted(exp.glob("train_*.log")))


def _flip_a_bit_in_a_tensor(path: Path) -> None:
    """Flip one bit in the middle of the largest tensor record (the zip's own headers stay intact)."""
    content = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    offset = info.header_offset
    start = offset + 30 + int.from_bytes(content[offset + 26:offset + 28], "little") + \
        int.from_bytes(content[offset + 28:offset + 30], "little")
    content[start + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(content))


# ---------------------------------------------------------------- A: one run per experiment folder
def test_a_second_run_with_the_same_name_stops_at_once_and_a_killed_run_leaves_no_lock(data, tmp_path: Path,
                                                                                        capsys) -> None:
    opt = _tiny(data, "busy", **{"train.total_iter": 100000, "logger.save_checkpoint_freq": 100000,
                                 "train.scheduler": {"type": "MultiStepLR", "milestones": [50000], "gamma": 0.5}})
    cfg = write_options(opt, tmp_path / "busy.yml")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    first = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "-opt", str(cfg), "--root", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                             start_new_session=True)
    exp = tmp_path / "experiments" / "busy"
    try:
        deadline = time.time() + 120
        while not (exp.is_dir() and "iter        2/" in _log(exp)):
            assert first.poll() is None and time.time() < deadline, "the first run did not start"
            time.sleep(0.2)
        capsys.readouterr()
        assert train_main(["-opt", str(cfg), "--root", str(tmp_path), "--force_yml", "train.total_iter=2"]) == 1
        err = capsys.readouterr().err
        assert f"RunLockedError: experiment folder {exp} is in use by PID {first.pid} on host " in err
        assert "Traceback" not in err
        assert not list(exp.parent.glob("busy_archived_*"))  # the running run's folder was left alone
        assert first.poll() is None
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # no chance to release anything: the kernel drops the flock
        first.wait()
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path), "--force_yml", "train.total_iter=2"]) == 0
    assert len(list(exp.parent.glob("busy_archived_*"))) == 1
    assert not (exp.parent / ".busy.lock").exists()  # a finished run removes its lock file


def test_auto_resume_refuses_a_state_of_another_run(data, tmp_path: Path, capsys) -> None:
    assert _run(_tiny(data, "mine", **{"train.total_iter": 2}), tmp_path) == 0
    assert _run(_tiny(data, "other"), tmp_path, name="o.yml") == 0
    mine = tmp_path / "experiments" / "mine"
    run_id = (mine / "run_id").read_text().strip()
    assert torch.load(mine / "training_states" / "2.state", weights_only=True)["run_id"] == run_id
    copied = mine / "training_states" / "4.state"
    copied.write_bytes((tmp_path / "experiments" / "other" / "training_states" / "4.state").read_bytes())
    capsys.readouterr()
    opt = _tiny(data, "mine", **{"train.total_iter": 6})
    assert _run(opt, tmp_path, "--auto_resume") == 1
    err = capsys.readouterr().err
    assert f"ForeignStateError: {copied} was written by run " in err and f"not by run {run_id} of" in err
    assert "--resume_foreign" in err and "Traceback" not in err
    assert _run(opt, tmp_path, "--auto_resume", "--resume_foreign") == 0
    err = capsys.readouterr().err
    assert f"resumed from {copied} at iteration 4" in err
    assert torch.load(mine / "training_states" / "6.state", weights_only=True)["run_id"] == run_id


# ---------------------------------------------------------------- B: states are checked before they are trusted
def test_a_flipped_bit_in_the_newest_state_falls_back_to_the_previous_one(data, tmp_path: Path, capsys) -> None:
    opt = _tiny(data, "flip", **{"logger.save_checkpoint_freq": 2})
    assert _run(opt, tmp_path) == 0
    states = tmp_path / "experiments" / "flip" / "training_states"
    _flip_a_bit_in_a_tensor(states / "4.state")
    capsys.readouterr()
    assert _run(_tiny(data, "flip", **{"logger.save_checkpoint_freq": 2, "train.total_iter": 6}), tmp_path,
                "--auto_resume") == 0
    err = capsys.readouterr().err
    assert f"--auto_resume: skipping {states / '4.state'}: cannot read training state" in err
    assert "fails its CRC-32 check" in err
    assert f"resumed from {states / '2.state'} at iteration 2" in err


def test_a_flipped_bit_in_a_weights_file_is_one_line(data, tmp_path: Path, capsys) -> None:
    assert _run(_tiny(data, "w", **{"train.total_iter": 2}), tmp_path) == 0
    weights = tmp_path / "experiments" / "w" / "models" / "net_g_2.pth"
    _flip_a_bit_in_a_tensor(weights)
    opt = _tiny(data, "ft", **{"train.total_iter": 2})
    opt["path"] = {"pretrain_network_g": str(weights)}
    capsys.readouterr()
    assert _run(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"WeightsError: cannot read weights file {weights}: corrupt: record" in err and "CRC-32" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- C: option changes on resume
def test_a_new_learning_rate_on_resume_applies_with_the_schedule_and_is_listed(data, tmp_path: Path) -> None:
    assert _run(_tiny(data, "lr"), tmp_path) == 0
    assert _run(_tiny(data, "lr"), tmp_path, "--auto_resume", "--force_yml", "train.optim_g.lr=0.5",
                "train.total_iter=6") == 0
    exp = tmp_path / "experiments" / "lr"
    state = torch.load(exp / "training_states" / "6.state", weights_only=True)
    assert state["scheduler"]["base_lrs"] == [0.5]
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.5 * 0.25)  # milestones 3 and 5 passed
    log = _log(exp)
    assert "options changed since" in log and "(saved -> now; applied from iteration 4 on)" in log
    assert "train.optim_g.lr: 0.002 -> 0.5" in log and "train.total_iter: 4 -> 6" in log


# ---------------------------------------------------------------- D: what pretrained weights gave
def test_non_strict_pretrained_weights_with_nothing_matching_are_an_error(data, tmp_path: Path, capsys) -> None:
    weights = tmp_path / "other.pth"
    torch.save({"params": {"body.0.weight": torch.zeros(4, 3, 3, 3)}}, weights)
    opt = _tiny(data, "nomatch")
    opt["path"] = {"pretrain_network_g": str(weights), "strict_load_g": False}
    assert _run(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"WeightsError: non-strict load of {weights} into SwinIR: none of its" in err
    assert "nothing would be loaded" in err and "Traceback" not in err
    assert not (tmp_path / "experiments" / "nomatch").exists()


def test_pretrained_weights_are_logged_with_what_was_taken(data, tmp_path: Path) -> None:
    assert _run(_tiny(data, "src", **{"train.total_iter": 2}), tmp_path) == 0
    weights = tmp_path / "experiments" / "src" / "models" / "net_g_2.pth"
    n_params = len(torch.load(weights, weights_only=True)["params"])
    opt = _tiny(data, "dst", **{"train.total_iter": 2})
    opt["path"] = {"pretrain_network_g": str(weights)}
    assert _run(opt, tmp_path) == 0
    log = _log(tmp_path / "experiments" / "dst")
    assert f"pretrained net_g: {weights} ('params_ema') into SwinIR: {n_params} tensors taken from the file" in log
    assert "parameters, strict" in log


# ---------------------------------------------------------------- E: best metrics and batch size on resume
def test_the_validation_after_the_saved_state_counts_after_a_resume(data, tmp_path: Path, monkeypatch) -> None:
    scores = {2: 1.0, 4: 9.0, 6: 3.0}  # iteration 4 is the best, and its validation runs after its save

    def fake_evaluate(*args, suffix: str, **kwargs):
        return {"psnr": scores[int(suffix)], "_preview": None}

    monkeypatch.setattr(validation, "evaluate", fake_evaluate)
    opt = _tiny(data, "best", **{"val.val_freq": 2, "logger.save_checkpoint_freq": 2})
    assert _run(opt, tmp_path) == 0
    assert _run({**opt, "train": {**opt["train"], "total_iter": 6}}, tmp_path, "--auto_resume") == 0
    state = torch.load(tmp_path / "experiments" / "best" / "training_states" / "6.state", weights_only=True)
    assert state["best"] == {"tiny_val": {"psnr": {"value": 9.0, "iter": 4}}}


def test_a_batch_size_change_on_resume_is_logged(data, tmp_path: Path) -> None:
    assert _run(_tiny(data, "bs", **{"train.total_iter": 1}), tmp_path) == 0
    assert _run(_tiny(data, "bs", **{"train.total_iter": 2}), tmp_path, "--auto_resume", "--force_yml",
                "datasets.train.batch_size_per_gpu=1") == 0
    log = _log(tmp_path / "experiments" / "bs")
    assert ("datasets.train.batch_size_per_gpu changed on resume (2 -> 1): the data order from here on differs "
            "from an uninterrupted run's; epoch 0 continues at sample 2 of this rank's share (2 were used)") in log


# ---------------------------------------------------------------- F: folders, archives, disk space
def test_experiments_root_at_a_folder_that_is_not_an_experiment_is_never_renamed(data, tmp_path: Path,
                                                                                 capsys) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "README.md").write_text("my project")
    opt = _tiny(data, "exp")
    opt["path"] = {"experiments_root": str(project)}
    assert _run(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert (f"ExperimentFolderError: {project} exists and is not an experiment folder (it holds README.md, src)"
            in err) and str(project / "exp") in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project", "r.yml"]
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "src"]


def test_two_archives_in_the_same_second_do_not_collide(data, tmp_path: Path) -> None:
    exp = tmp_path / "experiments" / "same"
    opt = {"name": "same", "logger": {"use_tb_logger": False},
           "path": {"experiments_root": str(exp), **{k: str(exp / k) for k in
                                                     ("models", "training_states", "visualization", "options")}}}
    for content in ("first", "second"):
        (exp / "models").mkdir(parents=True, exist_ok=True)
        (exp / "models" / "net_g_1.pth").write_text(content)
        prepare_folders(opt, resuming=False, start_time="20260101_120000")
    archives = sorted(exp.parent.glob("same_archived_*"))
    assert [p.name for p in archives] == ["same_archived_20260101_120000", "same_archived_20260101_120000_2"]
    assert [(p / "models" / "net_g_1.pth").read_text() for p in archives] == ["first", "second"]


def test_old_checkpoints_are_pruned_by_default(data, tmp_path: Path) -> None:
    assert _run(_tiny(data, "many", **{"train.total_iter": 7, "logger.save_checkpoint_freq": 1}), tmp_path) == 0
    exp = tmp_path / "experiments" / "many"
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == [f"{i}.state" for i in range(3, 8)]
    assert len(list((exp / "models").glob("net_g_*.pth"))) == 6  # five numbered and net_g_latest


def test_a_file_size_limit_is_one_line_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "net_g_8.pth"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, hard))  # write() fails with EFBIG past 64 KiB
    try:
        with pytest.raises(CheckpointError, match=rf"cannot write {target}: File too large"):
            atomic_save({"a": torch.zeros(100000)}, str(target))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_checkpoint_folder_is_one_line(tmp_path: Path, monkeypatch) -> None:
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "makedirs", refuse)  # a folder we may not create (root ignores chmod)
    with pytest.raises(CheckpointError, match=rf"cannot write {tmp_path / 'models' / 'x.pth'}: Permission denied"):
        atomic_save({"a": torch.ones(1)}, str(tmp_path / "models" / "x.pth"))


def test_a_save_that_fails_half_way_leaves_the_previous_checkpoint_only(data, tmp_path: Path, monkeypatch,
                                                                        capsys) -> None:
    def weights_fail_at_4(obj, path):
        if path.endswith("net_g_4.pth"):
            raise CheckpointError(f"cannot write {path}: No space left on device")
        atomic_save(obj, path)

    monkeypatch.setattr(checkpoints, "atomic_save", weights_fail_at_4)
    assert _run(_tiny(data, "half", **{"logger.save_checkpoint_freq": 2}), tmp_path) == 1
    assert "cannot write" in capsys.readouterr().err
    exp = tmp_path / "experiments" / "half"
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["2.state"]
    assert sorted(p.name for p in (exp / "models").iterdir()) == ["net_g_2.pth", "net_g_latest.pth"]


def test_a_killed_run_s_forked_children_do_not_hold_its_lock(tmp_path: Path) -> None:
    # DataLoader workers are forked after the lock is taken: a flock was theirs too, so a killed run's worker
    # still exiting made the --auto_resume started at once fail with RunLockedError
    from restoration.utils.run_lock import RunLock

    code = (
        "import os, signal, sys, time\n"
        "from restoration.utils.run_lock import RunLock\n"
        f"RunLock({str(tmp_path / 'exp')!r}).acquire()\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    os.close(1); os.close(2)\n"  # (so that the caller's pipes close when the parent dies)
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "print(child, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == -9, proc.stderr
    child = int(proc.stdout.split()[0])
    try:
        os.kill(child, 0)  # the forked child outlives its parent ...
        lock = RunLock(str(tmp_path / "exp")).acquire()  # ... and does not hold the lock
        lock.release()
    finally:
        os.kill(child, signal.SIGKILL)


def test_the_same_folder_locked_twice_in_one_process_is_refused(tmp_path: Path) -> None:
    # a record lock is per process: without a record of its own locks, a second one here would succeed
    from restoration.utils.run_lock import RunLock, RunLockedError

    with RunLock(str(tmp_path / "exp")):
        with pytest.raises(RunLockedError, match="in use by this process"):
            RunLock(str(tmp_path / "exp")).acquire()
    RunLock(str(tmp_path / "exp")).acquire().release()  # released: free again
