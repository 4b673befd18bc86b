"""Issue 13: faults that used to lose work or train the wrong thing, each pinned by a test.

Signals to the process group, validation failures, unreadable states under --auto_resume, full disks,
configs that crashed after creating folders, diverged networks that scored a finite PSNR, and the small
things (file modes, stale temporaries, net_g_latest ahead of the newest state).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from restoration.evaluation import evaluate
from restoration.models.sr_model import SRModel
from restoration.cli.train import main as train_main
from restoration.utils import checkpoint
from restoration.utils.checkpoint import CheckpointError, atomic_save, remove_stale_temporaries
from restoration.utils.image_io import imwrite
from restoration.utils.logger import LOGGER_NAME, close_file_handlers
from restoration.utils.weights import WeightsError, read_state_dict
from tests.helpers import free_port, make_sr_pairs, train_options, write_options

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=4, size=32, scale=2)


def _run(opt: dict, tmp_path: Path, *extra: str, name: str = "f.yml") -> int:
    return train_main(["-opt", str(write_options(opt, tmp_path / name)), "--root", str(tmp_path), *extra])


# ---------------------------------------------------------------- item 2: SIGTERM to the process group
def _wait_for(path_glob: Path, pattern: str, text: str, timeout: float) -> str:
    """Poll the log files matching ``pattern`` in ``path_glob`` until one contains ``text``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for log in path_glob.glob(pattern) if path_glob.is_dir() else []:
            content = log.read_text()
            if text in content:
                return content
        time.sleep(0.2)
    raise AssertionError(f"'{text}' did not appear in {path_glob}/{pattern} within {timeout}s")


def _long_run(data: tuple[Path, Path], name: str, workers: int) -> dict:
    return train_options(data, name, **{
        "datasets.train.num_worker_per_gpu": workers, "train.total_iter": 100000,
        "train.scheduler": {"type": "MultiStepLR", "milestones": [50000], "gamma": 0.5},
        "logger.save_checkpoint_freq": 100000, "logger.use_tb_logger": False, "val.val_freq": 100000})


def test_sigterm_to_the_process_group_saves_a_state(data, tmp_path: Path) -> None:
    """``kill -- -PGID`` also hits the DataLoader workers: they must not die (and crash the run) first."""
    cfg = write_options(_long_run(data, "pg", workers=2), tmp_path / "pg.yml")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "-opt", str(cfg), "--root", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # its own process group, like a job under slurm
    try:
        _wait_for(tmp_path / "experiments" / "pg", "train_pg_*.log", "iter        3/", timeout=120)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped by signal at iteration" in err and "Traceback" not in err
    states = list((tmp_path / "experiments" / "pg" / "training_states").glob("*.state"))
    assert len(states) == 1 and int(states[0].stem) >= 3


@pytest.mark.slow
def test_sigterm_to_the_torchrun_agent_saves_on_every_rank(data, tmp_path: Path) -> None:
    """torchrun forwards SIGTERM to each rank; every rank reaches the same boundary and the state is saved."""
    port = free_port()
    opt = _long_run(data, "ddp_term", workers=1)
    opt["dist_params"] = {"backend": "gloo", "timeout": 120}
    cfg = write_options(opt, tmp_path / "ddp.yml")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             f"--master_port={port}", str(ROOT / "train.py"), "-opt", str(cfg), "--launcher",
                             "pytorch", "--root", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True, cwd=tmp_path)
    try:
        _wait_for(tmp_path / "experiments" / "ddp_term", "train_ddp_term_*.log", "iter        3/", timeout=240)
        proc.send_signal(signal.SIGTERM)  # the agent only, as a scheduler stopping the launcher does
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    exp = tmp_path / "experiments" / "ddp_term"
    log = next(exp.glob("train_ddp_term_*.log")).read_text()
    assert "stopped by signal at iteration" in log, err[-3000:]
    states = list((exp / "training_states").glob("*.state"))
    assert len(states) == 1
    state = torch.load(states[0], weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2


def test_loader_workers_ignore_stop_signals(data) -> None:
    """The worker_init_fn of both loaders sets SIGTERM, SIGINT, SIGHUP and SIGUSR1 to SIG_IGN, then runs
    the next one."""
    from restoration.data.loader import IgnoreStopSignals, build_dataset, build_eval_loader, build_train_loader

    opt = train_options(data, "x")["datasets"]["train"]
    opt = {**opt, "phase": "train", "scale": 2}
    dataset = build_dataset(opt)
    train_loader, _ = build_train_loader(dataset, opt, 0, 0, 1, False)
    assert isinstance(train_loader.worker_init_fn, IgnoreStopSignals)
    assert isinstance(build_eval_loader(dataset, opt, 0, 1).worker_init_fn, IgnoreStopSignals)
    code = ("import signal; from restoration.data.loader import IgnoreStopSignals; seen = []; "
            "IgnoreStopSignals(seen.append)(7); "
            "print([signal.getsignal(getattr(signal, s)) is signal.SIG_IGN for s in "
            "('SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1')], seen)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[True, True, True, True] [7]", out.stderr


# ---------------------------------------------------------------- item 3: validation
def test_failing_validation_is_logged_after_the_save_and_training_continues(data, tmp_path: Path) -> None:
    """An 8x8 validation image cannot be scored by SSIM (11x11 window): the error names the file, the
    checkpoint of the same iteration exists, and training goes on to the end."""
    small = tmp_path / "small"
    rng = np.random.default_rng(0)
    imwrite(small / "HR" / "tiny.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    imwrite(small / "LR" / "tiny.png", rng.integers(0, 255, (4, 4, 3), dtype=np.uint8))
    opt = train_options(data, "valfail", **{"train.total_iter": 4, "val.val_freq": 2, "logger.use_tb_logger": False})
    opt["datasets"]["val_1"].update(dataroot_gt=str(small / "HR"), dataroot_lq=str(small / "LR"))
    opt["val"]["metrics"] = {"ssim": {"type": "calculate_ssim", "crop_border": 0}}
    assert _run(opt, tmp_path) == 0
    exp = tmp_path / "experiments" / "valfail"
    log = next(exp.glob("train_valfail_*.log")).read_text()
    assert "validation tiny_val @ iter 2 failed, training continues: DataError: ssim of" in log
    assert str(small / "HR" / "tiny.png") in log and "11x11" in log
    assert log.index("saved models and training state at iteration 2") < log.index("iter 2 failed")
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["2.state", "4.state"]
    assert "training finished at iteration 4" in log


def test_unreadable_validation_image_stops_before_anything_is_written(data, tmp_path: Path, capsys) -> None:
    val = tmp_path / "val"
    shutil.copytree(data[0], val / "HR")
    shutil.copytree(data[1], val / "LR")
    (val / "HR" / "img2.png").write_bytes(b"\x00garbage, not a PNG")
    opt = train_options(data, "badval")
    opt["datasets"]["val_1"].update(dataroot_gt=str(val / "HR"), dataroot_lq=str(val / "LR"))
    assert _run(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"ImageReadError: cannot read image {val / 'HR' / 'img2.png'}" in err and "Traceback" not in err
    assert not (tmp_path / "experiments").exists() and not (tmp_path / "tb_logger").exists()


# ---------------------------------------------------------------- item 4: --auto_resume and unreadable states
def test_auto_resume_names_skipped_states_and_refuses_when_none_is_readable(data, tmp_path: Path, capsys) -> None:
    opt = train_options(data, "ar", **{"train.total_iter": 2, "val.val_freq": 100, "logger.use_tb_logger": False,
                                       "train.warmup_iter": -1})
    assert _run(opt, tmp_path) == 0
    states = tmp_path / "experiments" / "ar" / "training_states"
    (states / "9.state").write_bytes(b"cut short")
    # a killed atomic_save leaves temporaries: removed at start, each named in the log
    (states / ".tmp_abc4.state").write_bytes(b"partial")
    (tmp_path / "experiments" / "ar" / "models" / ".tmp_defnet_g_4.pth").write_bytes(b"partial")
    capsys.readouterr()
    assert _run(opt, tmp_path, "--auto_resume", "--force_yml", "train.total_iter=3") == 0
    err = capsys.readouterr().err
    assert f"--auto_resume: skipping {states / '9.state'}: cannot read training state" in err
    assert f"resumed from {states / '2.state'} at iteration 2" in err
    assert f"removed {states / '.tmp_abc4.state'}" in err and ".tmp_defnet_g_4.pth" in err
    assert not any(p.name.startswith(".tmp_") for p in states.parent.rglob("*"))

    for state in states.glob("*.state"):
        state.write_bytes(b"garbage")
    assert _run(opt, tmp_path, "--auto_resume") == 1
    err = capsys.readouterr().err
    assert "CheckpointError: --auto_resume: none of the 3 training state(s)" in err
    assert "--restart_if_unreadable" in err and "Traceback" not in err
    assert not list((tmp_path / "experiments").glob("ar_archived_*"))

    assert _run(opt, tmp_path, "--auto_resume", "--restart_if_unreadable") == 0
    assert len(list((tmp_path / "experiments").glob("ar_archived_*"))) == 1  # the unreadable states are kept
    assert sorted(p.name for p in states.iterdir()) == ["2.state"]


# ---------------------------------------------------------------- item 5: full disk, log close, safetensors
def test_full_disk_is_one_line_naming_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "models" / "net_g_8.pth"
    atomic_save({"a": torch.ones(2)}, str(target))
    # the temporary file is /dev/full: every write fails with ENOSPC, as on a full disk
    monkeypatch.setattr(checkpoint.tempfile, "mkstemp",
                        lambda **kw: (os.open("/dev/full", os.O_WRONLY), str(target.parent / ".tmp_x")))
    with pytest.raises(CheckpointError, match=rf"cannot write {target}: No space left on device"):
        atomic_save({"a": torch.zeros(100000)}, str(target))
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(2))  # the old file is intact

    def zip_writer_fails(obj, f):  # what torch's PytorchStreamWriter raises for a failed fwrite
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.undo()
    monkeypatch.setattr(checkpoint.torch, "save", zip_writer_fails)
    with pytest.raises(CheckpointError, match=rf"cannot write {target}: .*file write failed"):
        atomic_save({"a": torch.zeros(2)}, str(target))
    assert [p.name for p in target.parent.iterdir()] == ["net_g_8.pth"]


def test_a_failing_log_close_is_a_warning_not_an_exception(tmp_path: Path, capsys) -> None:
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.FileHandler(tmp_path / "x.log")

    def full_disk() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    handler.flush = full_disk  # type: ignore[method-assign]
    logger.addHandler(handler)
    close_file_handlers()
    assert handler not in logger.handlers
    assert f"could not finish the log file {tmp_path / 'x.log'}: No space left on device" in capsys.readouterr().err


def test_corrupt_safetensors_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "net.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(WeightsError, match=rf"cannot read weights file {path}"):
        read_state_dict(str(path))


# ---------------------------------------------------------------- item 6: option checks before any folder
_BAD = [
    ({"logger.print_freq": 0}, "'logger.print_freq' must be >= 1, got 0"),
    ({"logger.save_checkpoint_freq": 0}, "'logger.save_checkpoint_freq' must be >= 1, got 0"),
    ({"datasets.train.batch_size_per_gpu": 0}, "'datasets.train.batch_size_per_gpu' must be >= 1, got 0"),
    ({"datasets.train.num_worker_per_gpu": -1}, "'datasets.train.num_worker_per_gpu' must be >= 0, got -1"),
    ({"train.optim_g.lr": 0}, "'train.optim_g.lr' must be positive, got 0"),
    ({"train.optim_g.lr": -1e-4}, "'train.optim_g.lr' must be positive, got -0.0001"),
    ({"datasets.train.dataset_enlarge_ratio": 0}, "'datasets.train.dataset_enlarge_ratio' must be >= 1, got 0"),
    ({"name": "../../x"}, "'name' '../../x' must be a plain folder name"),
    ({"val.val_freq": 2.5}, "'val.val_freq' must be a whole number, got 2.5"),
    ({"train.total_iter": -5}, "'train.total_iter' must be >= 1, got -5"),
    ({"train.max_skipped_in_a_row": -1}, "'train.max_skipped_in_a_row' must be >= 0, got -1"),
]


@pytest.mark.parametrize("overrides, message", _BAD, ids=[m.split("'")[1] + str(i) for i, (_, m) in enumerate(_BAD)])
def test_bad_numbers_exit_2_before_any_folder(data, tmp_path: Path, capsys, overrides: dict, message: str) -> None:
    opt = train_options(data, "bad", **{k: v for k, v in overrides.items() if k != "name"})
    opt["name"] = overrides.get("name", "bad")
    assert _run(opt, tmp_path) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert "warmup_iter" not in err  # total_iter -5 used to be reported as a warm-up problem
    assert not (tmp_path / "experiments").exists() and not (tmp_path.parent / "x").exists()


def test_duplicate_yaml_keys_are_refused_with_their_lines(data, tmp_path: Path, capsys) -> None:
    text = (write_options(train_options(data, "dup"), tmp_path / "a.yml").read_text()
            + "train:\n  total_iter: 9\n")  # a second top-level 'train:' would silently replace the first
    (tmp_path / "dup.yml").write_text(text)
    line = text.splitlines().index("train:") + 1
    assert train_main(["-opt", str(tmp_path / "dup.yml"), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"duplicate key 'train' (first on line {line}, again on line {len(text.splitlines()) - 1})" in err
    assert not (tmp_path / "experiments").exists()


def test_training_images_smaller_than_gt_size_stop_before_any_folder(data, tmp_path: Path, capsys) -> None:
    opt = train_options(data, "big", **{"datasets.train.gt_size": 48})  # the images are 32x32
    assert _run(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"DataError: 'datasets.train': {data[0] / 'img0.png'} is 32x32 pixels, smaller than the 48x48" in err
    assert not (tmp_path / "experiments").exists() and not (tmp_path / "tb_logger").exists()


# ---------------------------------------------------------------- item 7: non-finite outputs and skipped steps
def test_a_nonfinite_output_scores_nan_with_a_warning(caplog) -> None:
    gt = torch.rand(1, 3, 16, 16)
    batches = [{"lq": gt.clone(), "gt": gt, "gt_path": ["/data/val/bird.png"]}]
    metrics = {"psnr": {"type": "calculate_psnr", "crop_border": 0}}
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(caplog.handler)  # the restoration logger does not propagate
    try:
        result = evaluate(lambda x: x * float("nan"), batches, metrics, torch.device("cpu"))
    finally:
        logger.removeHandler(caplog.handler)
    assert np.isnan(result["psnr"]) and np.isnan(result["per_image"]["bird"]["psnr"])
    assert "the restored /data/val/bird.png has non-finite values: its metrics are NaN" in caplog.text
    assert evaluate(lambda x: x, batches, metrics, torch.device("cpu"))["psnr"] == float("inf")


def _nan_inputs(monkeypatch) -> None:
    original = SRModel.feed_data

    def feed_nan(self, batch):
        batch = {**batch, "lq": torch.full_like(batch["lq"], float("nan"))}
        return original(self, batch)

    monkeypatch.setattr(SRModel, "feed_data", feed_nan)


def test_a_run_whose_every_step_is_skipped_is_an_error(data, tmp_path: Path, capsys, monkeypatch) -> None:
    _nan_inputs(monkeypatch)
    opt = train_options(data, "allskip", **{"train.total_iter": 3, "val.val_freq": 100, "logger.use_tb_logger": False})
    assert _run(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert "TrainingStalledError: every one of the 3 steps up to iteration 3 was skipped" in err
    assert "training finished" not in err and "Traceback" not in err


def test_too_many_skipped_steps_in_a_row_stop_the_run(data, tmp_path: Path, capsys, monkeypatch) -> None:
    _nan_inputs(monkeypatch)
    opt = train_options(data, "skip3", **{"train.total_iter": 50, "train.max_skipped_in_a_row": 3,
                                          "val.val_freq": 100, "logger.use_tb_logger": False})
    assert _run(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert "TrainingStalledError: iterations 1-3: 3 steps in a row skipped" in err
    assert "max_skipped_in_a_row" in err


# ---------------------------------------------------------------- item 8: modes, temporaries, latest vs state
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_checkpoints_and_images_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        atomic_save({"a": torch.ones(1)}, str(tmp_path / "x.pth"))
        imwrite(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(old)
    assert (tmp_path / "x.pth").stat().st_mode & 0o777 == mode
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == mode


def test_remove_stale_temporaries_only_removes_ours(tmp_path: Path) -> None:
    for name in (".tmp_a1.state", ".tmp_bnet_g_2.pth", "2.state", ".hidden"):
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_temporaries(str(tmp_path)) == [".tmp_a1.state", ".tmp_bnet_g_2.pth"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "2.state"]


def test_net_g_latest_is_never_ahead_of_the_newest_state(data, tmp_path: Path, monkeypatch, capsys) -> None:
    import restoration.training.checkpoints as checkpoints

    def save_fails_at_4(obj, path):
        if path.endswith("4.state"):
            raise CheckpointError(f"cannot write {path}: No space left on device")
        atomic_save(obj, path)

    monkeypatch.setattr(checkpoints, "atomic_save", save_fails_at_4)
    opt = train_options(data, "latest", **{"train.total_iter": 4, "val.val_freq": 100, "logger.use_tb_logger": False})
    assert _run(opt, tmp_path) == 1
    assert "cannot write" in capsys.readouterr().err
    models = tmp_path / "experiments" / "latest" / "models"
    latest = torch.load(models / "net_g_latest.pth", weights_only=True)
    at_2 = torch.load(models / "net_g_2.pth", weights_only=True)
    assert all(torch.equal(v, at_2["params"][k]) for k, v in latest["params"].items())
    assert not (models / "net_g_4.pth").exists()


def test_a_fresh_run_failing_on_its_data_leaves_the_disk_as_it_was(data, tmp_path: Path, capsys) -> None:
    """A truncated PNG has a good header (so it passes the start-up check) and fails when decoded: the new
    experiment folder is removed and the one it had archived is put back."""
    hr, lr = tmp_path / "HR", tmp_path / "LR"
    shutil.copytree(data[0], hr)
    shutil.copytree(data[1], lr)
    content = (lr / "img2.png").read_bytes()
    (lr / "img2.png").write_bytes(content[: len(content) // 2])
    previous = tmp_path / "experiments" / "cut"
    (previous / "models").mkdir(parents=True)
    (previous / "models" / "net_g_9.pth").write_bytes(b"an earlier run")
    opt = train_options((hr, lr), "cut", **{"datasets.train.dataset_enlarge_ratio": 4})
    assert _run(opt, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"ImageReadError: cannot decode image {lr / 'img2.png'}" in err and "Traceback" not in err
    assert f"removed the new experiment folder {previous} (nothing was saved)" in err
    assert sorted(p.name for p in (tmp_path / "experiments").iterdir()) == ["cut"]
    assert (previous / "models" / "net_g_9.pth").read_bytes() == b"an earlier run"
    assert not (tmp_path / "tb_logger").exists()
