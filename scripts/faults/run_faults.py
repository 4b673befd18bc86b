"""Fault injection: kill, damage and misconfigure tiny training runs, and count what survives.

    python scripts/faults/run_faults.py --runs 3            # ~3-6 min on 2 CPU cores
    python scripts/faults/run_faults.py --runs 10 --torchrun

Each section prints ``passed/total``; the table goes into docs/training.md's "Reliability" section.

* SIGKILL/resume: a run is SIGKILLed at a random moment (process group: workers too), resumed with
  ``--auto_resume``, and its final weights compared bit for bit with an uninterrupted run.
* damaged states: the newest state is truncated, emptied, overwritten, replaced by a weights file...;
  ``--auto_resume`` must name it, skip it and resume from the previous one.
* malicious pickles: ``.state``/``.pth`` files whose unpickling would run a shell command; nothing may run.
* broken configs: each must exit 2, print no traceback and create no folder.
* bad data: each must exit 1 with a one-line error naming the offending file, before any folder exists.
* refused starts: a second run with a running run's name, a state of another run under ``--auto_resume``,
  ``path.experiments_root`` at a folder that is not an experiment's, non-strict weights matching nothing:
  each must exit 1 with one line and leave the other run's files as they were.
* refused writes: a full disk while writing validation images (the run goes on and saves), an unwritable
  tb_logger folder, a read-only file system on a re-run (the archived run is put back), an experiment folder
  that is a mount point: one line each, nothing half-made.
* killed rank (``--torchrun``): seconds from SIGKILL of one rank of a 2-process torchrun run to its exit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from restoration.cli.train import main as train_main  # noqa: E402
from restoration.utils.image_io import imwrite  # noqa: E402
from tests.helpers import make_sr_pairs, train_options  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def write(opt: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def in_process(argv: list[str]) -> tuple[int | str, str]:
    """``train.py argv`` in this process: (exit code, or the exception's name for a crash; stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code: int | str = train_main(argv)
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        except BaseException as exc:  # noqa: BLE001 - a crash is what we count
            code = type(exc).__name__
            err.write("Traceback (crash)\n")
    return code, err.getvalue()


def tiny(data: tuple[Path, Path], name: str, **overrides: Any) -> dict[str, Any]:
    base = {"logger.use_tb_logger": False, "val.val_freq": 1000, "train.total_iter": 4}
    return train_options(data, name, **{**base, **overrides})


# ------------------------------------------------------------------ SIGKILL, then --auto_resume
def sigkill_resume(data: tuple[Path, Path], work: Path, runs: int, seed: int) -> tuple[int, int]:
    total = 12
    opt = tiny(data, "straight", **{"train.total_iter": total, "logger.save_checkpoint_freq": 1,
                                    "datasets.train.num_worker_per_gpu": 1,
                                    "train.scheduler": {"type": "MultiStepLR", "milestones": [6], "gamma": 0.5}})
    # The uninterrupted reference runs as the killed runs do (a subprocess with ENV's one thread): the CPU
    # kernels' reductions depend on the thread count, so an in-process reference on 2 threads differs from
    # 1-thread runs in the last bits whether or not they were killed.
    straight = [sys.executable, str(ROOT / "train.py"), "-opt", str(write(opt, work / "straight.yml")), "--root", str(work)]
    assert subprocess.run(straight, capture_output=True, env=ENV).returncode == 0
    reference = torch.load(work / "experiments" / "straight" / "models" / f"net_g_{total}.pth", weights_only=True)
    rng = random.Random(seed)
    identical = 0
    for i in range(runs):
        name = f"killed{i}"
        cfg = write({**opt, "name": name}, work / f"{name}.yml")
        cmd = [sys.executable, str(ROOT / "train.py"), "-opt", str(cfg), "--root", str(work)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                                start_new_session=True)
        states = work / "experiments" / name / "training_states"
        target = rng.randint(1, total - 2)
        while proc.poll() is None and not (states.is_dir() and any(states.glob(f"{target}.state"))):
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))  # somewhere inside a step, a save or a validation
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        resumed = subprocess.run(cmd + ["--auto_resume"], capture_output=True, text=True, env=ENV)
        final = work / "experiments" / name / "models" / f"net_g_{total}.pth"
        ok = resumed.returncode == 0 and final.is_file()
        if ok:
            got = torch.load(final, weights_only=True)
            ok = all(torch.equal(v, got[g][k]) for g in reference for k, v in reference[g].items())
        identical += ok
        print(f"  sigkill run {i}: killed after state {target}, resume rc {resumed.returncode}, "
              f"{'bit-identical' if ok else 'DIFFERENT'}", file=sys.stderr)
    return identical, runs


# ------------------------------------------------------------------ damaged states, malicious pickles
class _Shell:
    """Unpickling this runs a shell command (what a hostile .state/.pth would do without weights_only)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _flip_bit(content: bytes) -> bytes:
    """``content`` (a torch zip) with one bit flipped in the middle of its largest tensor record."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    at = info.header_offset
    start = at + 30 + int.from_bytes(content[at + 26:at + 28], "little") + int.from_bytes(content[at + 28:at + 30], "little")
    flipped = bytearray(content)
    flipped[start + info.file_size // 2] ^= 0x10
    return bytes(flipped)


def damaged_states(data: tuple[Path, Path], work: Path) -> tuple[tuple[int, int], tuple[int, int]]:
    opt = tiny(data, "dmg", **{"logger.save_checkpoint_freq": 2, "train.total_iter": 4})
    cfg = write(opt, work / "dmg.yml")
    assert in_process(["-opt", str(cfg), "--root", str(work)])[0] == 0
    exp = work / "experiments" / "dmg"
    good = (exp / "training_states" / "4.state").read_bytes()
    marker = work / "PWNED"
    evil = io.BytesIO()
    torch.save({"iter": 4, "net_g": _Shell(marker)}, evil)
    cases: dict[str, bytes] = {
        "truncated to half": good[: len(good) // 2],
        "truncated to 100 bytes": good[:100],
        "empty": b"",
        "random bytes": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "text": b"this is not a checkpoint\n",
        "a weights file": (exp / "models" / "net_g_4.pth").read_bytes(),
        "zeroed middle": good[: len(good) // 3] + bytes(len(good) // 3) + good[2 * (len(good) // 3):],
        "malicious pickle (os.system)": evil.getvalue(),
        "plain pickle of a dict": __import__("pickle").dumps({"iter": 4}),
        "one flipped bit in a tensor": _flip_bit(good),
    }
    recovered = 0
    for label, content in cases.items():
        copy = work / "experiments" / "dmg_case"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(exp, copy)
        (copy / "training_states" / "8.state").write_bytes(content)  # the newest state is the damaged one
        case_opt = {**opt, "name": "dmg_case", "train": {**opt["train"], "total_iter": 8}}
        code, err = in_process(["-opt", str(write(case_opt, work / "dmg_case.yml")), "--root", str(work),
                                "--auto_resume"])
        ok = code == 0 and "skipping" in err and "8.state" in err and "at iteration 4" in err
        # an explicit resume_state of the damaged file: one line naming it, exit 1
        (copy / "training_states" / "8.state").write_bytes(content)  # the resumed run replaced it
        case_opt["path"] = {"resume_state": str(copy / "training_states" / "8.state")}
        code2, err2 = in_process(["-opt", str(write(case_opt, work / "dmg_case2.yml")), "--root", str(work)])
        ok = ok and code2 == 1 and "8.state" in err2 and "Traceback" not in err2
        recovered += ok
        print(f"  damaged state ({label}): {'recovered' if ok else f'NOT recovered (rc {code}, {code2})'}",
              file=sys.stderr)
    # the malicious file through every loader that reads user files
    from restoration.utils.checkpoint import load_training_state
    from restoration.utils.weights import read_state_dict

    evil_state, evil_pth = work / "evil.state", work / "evil.pth"
    evil_state.write_bytes(evil.getvalue())
    torch.save({"params": {"w": _Shell(marker)}}, evil_pth)
    attempts = 0
    for load in (lambda: load_training_state(str(evil_state)), lambda: read_state_dict(str(evil_pth))):
        attempts += 1
        with contextlib.suppress(Exception):
            load()
    executed = int(marker.exists())
    return (recovered, len(cases)), (executed, attempts + 2)  # + the two resume attempts above


# ------------------------------------------------------------------ refused starts
def refused_starts(data: tuple[Path, Path], work: Path) -> tuple[int, int, list[str]]:
    from restoration.utils.run_lock import RunLock

    passed, failures = 0, []

    def check(label: str, code: int | str, err: str, expected: str, intact: Callable[[], bool]) -> None:
        nonlocal passed
        ok = code == 1 and expected in err and "Traceback" not in err and intact()
        passed += ok
        if not ok:
            failures.append(f"{label}: rc {code}, {err.strip().splitlines()[-1:]}")

    root = work / "refused"
    opt = tiny(data, "busy")
    exp = root / "experiments" / "busy"
    (exp / "models").mkdir(parents=True)
    (exp / "models" / "net_g_9.pth").write_bytes(b"the running run's")
    with RunLock(str(exp)):  # as a running run holds it
        code, err = in_process(["-opt", str(write(opt, work / "busy.yml")), "--root", str(root)])
    check("same name twice", code, err, "RunLockedError", lambda: (exp / "models" / "net_g_9.pth").is_file())

    assert in_process(["-opt", str(write(tiny(data, "mine"), work / "mine.yml")), "--root", str(root)])[0] == 0
    assert in_process(["-opt", str(write(tiny(data, "other"), work / "other.yml")), "--root", str(root)])[0] == 0
    foreign = root / "experiments" / "mine" / "training_states" / "8.state"
    shutil.copy(root / "experiments" / "other" / "training_states" / "4.state", foreign)
    code, err = in_process(["-opt", str(work / "mine.yml"), "--root", str(root), "--auto_resume",
                            "--force_yml", "train.total_iter=10"])
    check("another run's state", code, err, "ForeignStateError", lambda: foreign.is_file())

    project = root / "project"
    (project / "src").mkdir(parents=True)
    opt = {**tiny(data, "proj"), "path": {"experiments_root": str(project)}}
    code, err = in_process(["-opt", str(write(opt, work / "proj.yml")), "--root", str(root)])
    check("experiments_root at the project", code, err, "ExperimentFolderError",
          lambda: sorted(p.name for p in project.iterdir()) == ["src"])

    torch.save({"params": {"unrelated.weight": torch.zeros(2)}}, work / "unrelated.pth")
    opt = {**tiny(data, "nomatch"), "path": {"pretrain_network_g": str(work / "unrelated.pth"), "strict_load_g": False}}
    code, err = in_process(["-opt", str(write(opt, work / "nomatch.yml")), "--root", str(root)])
    check("non-strict weights matching nothing", code, err, "WeightsError",
          lambda: not (root / "experiments" / "nomatch").exists())
    return passed, 4, failures


# ------------------------------------------------------------------ broken configs
def broken_configs(data: tuple[Path, Path], work: Path) -> tuple[int, int, list[str]]:
    good = tiny(data, "cfg")
    text = yaml.safe_dump(good, sort_keys=False)

    def with_(**kw: Any) -> dict[str, Any]:
        opt = train_options(data, "cfg", **{"logger.use_tb_logger": False, **{k: v for k, v in kw.items() if k != "name"}})
        opt["name"] = kw.get("name", "cfg")
        return opt

    def without(*keys: str) -> dict[str, Any]:
        opt = with_()
        for key in keys:
            node = opt
            *parents, last = key.split(".")
            for p in parents:
                node = node[p]
            del node[last]
        return opt

    cases: dict[str, tuple[str | dict[str, Any] | bytes, list[str]]] = {
        "print_freq 0": (with_(**{"logger.print_freq": 0}), []),
        "save_checkpoint_freq 0": (with_(**{"logger.save_checkpoint_freq": 0}), []),
        "save_checkpoint_freq 2.5": (with_(**{"logger.save_checkpoint_freq": 2.5}), []),
        "batch size 0": (with_(**{"datasets.train.batch_size_per_gpu": 0}), []),
        "batch size -2": (with_(**{"datasets.train.batch_size_per_gpu": -2}), []),
        "workers -1": (with_(**{"datasets.train.num_worker_per_gpu": -1}), []),
        "lr 0": (with_(**{"train.optim_g.lr": 0}), []),
        "lr -1e-4": (with_(**{"train.optim_g.lr": -1e-4}), []),
        "lr as text": (with_(**{"train.optim_g.lr": "fast"}), []),
        "dataset_enlarge_ratio 0": (with_(**{"datasets.train.dataset_enlarge_ratio": 0}), []),
        "name ../../x": (with_(name="../../x"), []),
        "name a/b": (with_(name="a/b"), []),
        "name empty": (with_(name=""), []),
        "val_freq 2.5": (with_(**{"val.val_freq": 2.5}), []),
        "total_iter -5": (with_(**{"train.total_iter": -5}), []),
        "total_iter as text": (with_(**{"train.total_iter": "1000"}), []),
        "warmup_iter >= total_iter": (with_(**{"train.warmup_iter": 10}), []),
        "ema_decay 1.5": (with_(**{"train.ema_decay": 1.5}), []),
        "scale vs network upscale": (with_(scale=3), []),
        "gt_size not a multiple of scale": (with_(**{"datasets.train.gt_size": 15}), []),
        "unknown top-level key": ({**with_(), "trian": {}}, []),
        "unknown network": (with_(**{"network_g.type": "SwinIRR"}), []),
        "unknown network argument": (with_(**{"network_g.embed_dimm": 8}), []),
        "unknown loss": (with_(**{"train.pixel_opt": {"type": "L3Loss"}}), []),
        "unknown optimizer": (with_(**{"train.optim_g.type": "Adamm"}), []),
        "unknown dataset type": (with_(**{"datasets.train.type": "PairedImageDatasett"}), []),
        "missing network_g": (without("network_g"), []),
        "missing total_iter": (without("train.total_iter"), []),
        "missing data folder": (with_(**{"datasets.train.dataroot_gt": str(work / "nowhere")}), []),
        "num_gpu 64": (with_(num_gpu=64), []),
        "list where a mapping belongs": (with_(train=[1, 2, 3]), []),
        "a list as the whole file": ("- 1\n- 2\n", []),
        "YAML syntax error": (text.replace("train:", "train: [", 1), []),
        "tab indentation": (text.replace("\n  ", "\n\t", 3), []),
        "empty file": ("", []),
        "duplicate key": (text + "train:\n  total_iter: 9\n", []),
        "binary file as -opt": (bytes(range(256)) * 4, []),
        "missing option file": (None, []),  # type: ignore[dict-item]
        "--force_yml without =": (good, ["--force_yml", "train.total_iter"]),
        "--force_yml unknown key": (good, ["--force_yml", "train.totl_iter=5"]),
        "--force_yml bad value": (good, ["--force_yml", "train.total_iter=abc"]),
        "--force_yml empty key": (good, ["--force_yml", "=5"]),
    }
    passed, failures = 0, []
    for label, (content, extra) in cases.items():
        root = work / "cfgroot"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        path = root / "opt.yml"
        if isinstance(content, dict):
            write(content, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        code, err = in_process(["-opt", str(path), "--root", str(root), *extra])
        created = sorted(p.name for p in root.iterdir() if p.name != "opt.yml") + (
            ["../x"] if (work / "x").exists() else [])
        ok = code == 2 and "Traceback" not in err and not created
        passed += ok
        if not ok:
            failures.append(f"{label}: rc {code}, created {created}, {err.strip().splitlines()[-1:]}")
    return passed, len(cases), failures


# ------------------------------------------------------------------ bad data
def bad_data(data: tuple[Path, Path], work: Path) -> tuple[int, int, list[str]]:
    passed, failures, total = 0, [], 0

    def case(label: str, mutate: Callable[[Path, Path], Path], **overrides: Any) -> None:
        nonlocal passed, total
        total += 1
        root = work / "dataroot"
        shutil.rmtree(root, ignore_errors=True)
        hr, lr = root / "HR", root / "LR"
        shutil.copytree(data[0], hr)
        shutil.copytree(data[1], lr)
        culprit = mutate(hr, lr)
        opt = tiny((hr, lr), "data", **overrides)
        code, err = in_process(["-opt", str(write(opt, root / "opt.yml")), "--root", str(root)])
        # missing partners are named by their stem; everything else by its full path
        named = str(culprit) in err or (culprit.stem in err and "LR" in err)
        ok = code == 1 and named and "Traceback" not in err and not (root / "experiments").exists()
        passed += ok
        if not ok:
            failures.append(f"{label}: rc {code}, named {named}, {err.strip().splitlines()[-1:]}")

    def garbage(hr: Path, lr: Path) -> Path:
        (hr / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        return hr / "img1.png"

    def truncated(hr: Path, lr: Path) -> Path:
        content = (lr / "img2.png").read_bytes()
        (lr / "img2.png").write_bytes(content[: len(content) // 2])
        return lr / "img2.png"

    def empty(hr: Path, lr: Path) -> Path:
        (hr / "img0.png").write_bytes(b"")
        return hr / "img0.png"

    def missing_partner(hr: Path, lr: Path) -> Path:
        (lr / "img3.png").unlink()
        return lr / "img3.png"

    def small(hr: Path, lr: Path) -> Path:
        rng = np.random.default_rng(0)
        imwrite(hr / "img0.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
        imwrite(lr / "img0.png", rng.integers(0, 255, (4, 4, 3), dtype=np.uint8))
        return hr / "img0.png"

    def directory(hr: Path, lr: Path) -> Path:
        (lr / "img1.png").unlink()
        (lr / "img1.png").mkdir()
        return lr / "img1.png"

    case("garbage PNG", garbage)
    case("truncated PNG (LQ)", truncated, **{"datasets.train.dataset_enlarge_ratio": 4})
    case("empty file", empty)
    case("LQ partner missing", missing_partner)
    case("image smaller than gt_size", small)
    case("an LQ folder named like an image", directory)
    return passed, total, failures


# ------------------------------------------------------------------ a killed rank under torchrun
def killed_rank_exit(data: tuple[Path, Path], work: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opt = tiny(data, "rank", **{"train.total_iter": 100000, "logger.save_checkpoint_freq": 100000,
                                "datasets.train.num_worker_per_gpu": 1,
                                "train.scheduler": {"type": "MultiStepLR", "milestones": [50000], "gamma": 0.5}})
    opt["dist_params"] = {"backend": "gloo", "timeout": 60}
    cfg = write(opt, work / "rank.yml")
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             f"--master_port={port}", str(ROOT / "train.py"), "-opt", str(cfg), "--launcher",
                             "pytorch", "--root", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=ENV, start_new_session=True, cwd=work)
    exp = work / "experiments" / "rank"
    deadline = time.time() + 300
    while time.time() < deadline and not any("iter        3/" in p.read_text() for p in exp.glob("train_rank_*.log")):
        time.sleep(0.2)
    ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    t0 = time.time()
    os.kill(int(ranks[-1]), signal.SIGKILL)
    try:
        proc.wait(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return time.time() - t0


# ------------------------------------------------------------------ refused writes
@contextlib.contextmanager
def _patched(owner: Any, name: str, replacement: Any) -> Any:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield original
    finally:
        setattr(owner, name, original)


def refused_writes(data: tuple[Path, Path], work: Path) -> tuple[int, int, list[str]]:
    """Writes the machine refuses, provoked where they happen (root ignores permissions; the disk is not full)."""
    import errno

    root, passed, failures = work / "writes", 0, []

    def check(label: str, ok: bool, code: int | str, err: str) -> None:
        nonlocal passed
        ok = ok and "Traceback" not in err
        passed += ok
        if not ok:
            failures.append(f"{label}: rc {code}, {err.strip().splitlines()[-1:]}")

    def refuse_mkdir(folder: Path, code: int) -> Callable[..., Any]:
        real = os.mkdir

        def refusing(path: Any, *args: Any, **kwargs: Any) -> Any:
            if os.path.abspath(path) == str(folder) or os.path.abspath(path).startswith(str(folder) + os.sep):
                raise OSError(code, os.strerror(code), str(path))
            return real(path, *args, **kwargs)
        return refusing

    real_mkstemp = tempfile.mkstemp

    def full_for_images(*args: Any, **kwargs: Any) -> Any:
        if "visualization" in str(kwargs.get("dir", "")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_mkstemp(*args, **kwargs)

    opt = tiny(data, "full", **{"val.val_freq": 2, "val.save_img": True, "logger.save_checkpoint_freq": 2})
    with _patched(tempfile, "mkstemp", full_for_images):
        code, err = in_process(["-opt", str(write(opt, work / "full.yml")), "--root", str(root)])
    states = root / "experiments" / "full" / "training_states"
    check("full disk during validation images", code == 0 and "DiskWriteError" in err and (states / "4.state").is_file(),
          code, err)

    opt = {**tiny(data, "tb"), "logger": {"use_tb_logger": True}}
    with _patched(os, "mkdir", refuse_mkdir(root / "tb_logger", errno.EACCES)):
        code, err = in_process(["-opt", str(write(opt, work / "tb.yml")), "--root", str(root)])
    check("unwritable tb_logger folder", code == 1 and "cannot create" in err
          and not (root / "experiments" / "tb").exists(), code, err)

    assert in_process(["-opt", str(write(tiny(data, "again"), work / "again.yml")), "--root", str(root)])[0] == 0
    exp = root / "experiments" / "again"
    before = sorted(str(p.relative_to(exp)) for p in exp.rglob("*"))
    with _patched(os, "mkdir", refuse_mkdir(exp / "models", errno.EROFS)):
        code, err = in_process(["-opt", str(work / "again.yml"), "--root", str(root)])
    check("read-only file system on a re-run", code == 1 and "was put back" in err
          and sorted(str(p.relative_to(exp)) for p in exp.rglob("*")) == before, code, err)

    real_ismount = os.path.ismount
    with _patched(os.path, "ismount", lambda path: os.path.abspath(path) == str(exp) or real_ismount(path)):
        code, err = in_process(["-opt", str(work / "again.yml"), "--root", str(root)])
    check("experiment folder at a mount point", code == 1 and "mount point" in err
          and not list(exp.parent.glob("again_archived_*")), code, err)
    return passed, 4, failures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="SIGKILL/resume repetitions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torchrun", action="store_true", help="also time a killed rank of a 2-process torchrun run")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args()
    start = time.time()
    work = Path(tempfile.mkdtemp(prefix="faults_"))
    try:
        data = make_sr_pairs(work / "data", n=4, size=32, scale=2)
        rows = []
        k, n = sigkill_resume(data, work, args.runs, args.seed)
        rows.append(("SIGKILL at a random moment, then --auto_resume: bit-identical", f"{k}/{n}"))
        (rec, nd), (executed, attempts) = damaged_states(data, work)
        rows.append(("damaged newest state: named, skipped, resumed from the previous", f"{rec}/{nd}"))
        rows.append(("malicious pickles executed (must be 0)", f"{executed}/{attempts}"))
        okr, nr, rfail = refused_starts(data, work)
        rows.append(("refused starts: exit 1, one line, the other run's files intact", f"{okr}/{nr}"))
        ok, nc, failures = broken_configs(data, work)
        rows.append(("broken configs: exit 2, no traceback, no folder", f"{ok}/{nc}"))
        okd, ndata, dfail = bad_data(data, work)
        rows.append(("bad data: exit 1, one line naming the file, no folder", f"{okd}/{ndata}"))
        okw, nw, wfail = refused_writes(data, work)
        rows.append(("refused writes: one line naming the path, nothing half-made", f"{okw}/{nw}"))
        if args.torchrun:
            rows.append(("killed rank (SIGKILL) to torchrun exit, seconds", f"{killed_rank_exit(data, work):.1f}"))
        for line in rfail + failures + dfail + wfail:
            print(f"  FAILED {line}", file=sys.stderr)
        width = max(len(r[0]) for r in rows)
        print(f"| {'fault':<{width}} | result |\n|{'-' * (width + 2)}|--------|")
        for label, value in rows:
            print(f"| {label:<{width}} | {value:>6} |")
        print(f"\n{time.time() - start:.0f} s")
        bad = executed or ok < nc or okd < ndata or k < n or rec < nd or okr < nr or okw < nw
        return 1 if bad else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
