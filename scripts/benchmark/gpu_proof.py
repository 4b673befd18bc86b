#!/usr/bin/env python3
"""The GPU proof in one command: ``pytest -m cuda``, then ``gpu_report.py``, inside one time cap.

    python3 scripts/benchmark/gpu_proof.py --total-s 420 --out results/gpu_proof
    python3 scripts/benchmark/gpu_proof.py --smoke --total-s 60 --report-min-s 40   # a dry run on the CPU

Writes to ``--out``:

* ``proof.log``: everything both parts printed. Its first line names torch, CUDA and cuDNN (or ``no
  CUDA``), the GPU, NCCL, the SDPA backends torch has enabled and, on a GPU, the kernel SDPA picks for a
  window-attention-like call (with a bias) in bf16 and fp32.
* ``pytest_cuda.xml``: the CUDA tests' JUnit XML.
* ``gpu_report/report.json`` and ``report.md``: the measurements (rewritten after every item).
* ``proof.json``: the summary, also the log's last line (``proof summary: ...``).

Time: the tests get what ``--total-s`` leaves after ``--report-min-s`` (enough for the report's first
priority: one number per target); the report gets the rest, and its own ``--budget-s`` ends it before
the cap. A part still running at its deadline is sent SIGINT, as Ctrl-C would: pytest stops the test
that runs, prints the names of those that ran and its summary line, and writes the JUnit file; the
report records the item it was in as interrupted and writes its files. A part that has not exited
``--grace-s`` later is killed with its process group. The whole run ends within ``--total-s`` plus
``--grace-s``. Ctrl-C on this script stops the running part the same way and skips the next.

Exit status: 0 when every test passed (or skipped) and the report finished; 124 when a part was cut by
its deadline; 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "scripts" / "benchmark" / "gpu_report.py"

#: Set by SIGINT on this script: the running part is stopped and the next one skipped.
_STOP = threading.Event()


# ------------------------------------------------------------------------------------- environment line
def _sdpa_pick(dtype: "torch.dtype", bias: bool) -> str:
    """The SDPA kernel(s) torch runs for one ``(8, 6, 64, 32)`` call on the GPU (profiler names)."""
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    q, k, v = (torch.randn(8, 6, 64, 32, device="cuda", dtype=dtype) for _ in range(3))
    mask = torch.randn(8, 6, 64, 64, device="cuda", dtype=dtype) if bias else None
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.cuda.synchronize()
    names = {e.key for e in prof.key_averages() if e.key.startswith("aten::_scaled_dot_product")}
    kinds = sorted({kind for kind in ("flash", "efficient", "cudnn", "math") if any(kind in n for n in names)})
    return "+".join(kinds) or "none"


def environment_line() -> str:
    """One line: torch, CUDA/cuDNN (or ``no CUDA``), GPU, NCCL, SDPA backends enabled and picked, TF32."""
    import torch

    cuda = torch.backends.cuda
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    parts = [f"torch {torch.__version__}"]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        nccl = ".".join(map(str, torch.cuda.nccl.version())) if torch.distributed.is_nccl_available() else "none"
        parts.append(f"CUDA {torch.version.cuda}, cuDNN {cudnn}, NCCL {nccl}; {torch.cuda.device_count()} x "
                     f"{props.name} (sm {props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GiB)")
    else:
        parts.append(f"no CUDA (torch built for CUDA {torch.version.cuda}, cuDNN {cudnn})")
    flags = {"flash": cuda.flash_sdp_enabled(), "efficient": cuda.mem_efficient_sdp_enabled(),
             "cudnn": getattr(cuda, "cudnn_sdp_enabled", lambda: False)(), "math": cuda.math_sdp_enabled()}
    parts.append("SDPA enabled: " + (", ".join(k for k, on in flags.items() if on) or "none"))
    if torch.cuda.is_available():
        picks = []
        for label, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
            try:
                picks.append(f"{label} {_sdpa_pick(dtype, bias=True)} (bias) / {_sdpa_pick(dtype, bias=False)}")
            except Exception as exc:  # the line must still be written
                picks.append(f"{label} ? ({type(exc).__name__})")
        parts.append("SDPA picks at (8, 6, 64, 32): " + ", ".join(picks))
    parts.append(f"TF32 matmul {cuda.matmul.allow_tf32}, conv {torch.backends.cudnn.allow_tf32}")
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------- the parts
class Log:
    """Lines to the console and to ``proof.log`` (from the part's reader thread and this one)."""

    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            for stream in (sys.stdout, self._file):
                stream.write(text if text.endswith("\n") else text + "\n")
                stream.flush()

    def close(self) -> None:
        self._file.close()


@dataclass
class Part:
    """How one part ended: its exit status, whether its deadline cut it, whether it had to be killed."""

    name: str
    returncode: int
    cut: bool
    killed: bool
    seconds: float


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _default_sigint() -> None:
    """In the part's process, before it starts: SIGINT back to its default. A proof started in the background
    (``cmd &``, ``nohup ... &``) inherits SIGINT ignored, and a Python started so never turns SIGINT into
    KeyboardInterrupt: the cut would then wait out the grace period and kill pytest without its summary."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_part(name: str, cmd: list[str], log: Log, expired: Callable[[], bool], grace_s: float,
             env: dict[str, str] | None = None) -> Part:
    """Run ``cmd`` in its own process group, its output copied line by line to ``log``.

    When ``expired()`` turns true (or this script gets SIGINT), the group is sent SIGINT once; a part
    still running ``grace_s`` later is killed. Whatever the part left in its group is killed at the end.
    """
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                            env=env, cwd=ROOT, start_new_session=True, preexec_fn=_default_sigint)
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [log.line(text) for text in proc.stdout], daemon=True)
    reader.start()
    cut_at: float | None = None
    killed = False
    while proc.poll() is None:
        if cut_at is None and (expired() or _STOP.is_set()):
            cut_at = time.monotonic()
            log.line(f"[proof] {name}: {'stopped' if _STOP.is_set() else 'time is up'} after "
                     f"{cut_at - t0:.0f} s: SIGINT (killed if still running in {grace_s:.0f} s)")
            _signal_group(proc, signal.SIGINT)
        elif cut_at is not None and time.monotonic() - cut_at > grace_s:
            log.line(f"[proof] {name}: still running {grace_s:.0f} s after SIGINT: killed")
            _signal_group(proc, signal.SIGKILL)
            killed = True
            proc.wait()
        try:
            proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc, signal.SIGKILL)  # leftovers of the part (compile workers, ranks) die with it
    reader.join(timeout=10)
    return Part(name, proc.returncode, cut_at is not None, killed, round(time.monotonic() - t0, 1))


def pytest_command(out: Path, workers: int, per_test_s: float, extra: list[str]) -> list[str]:
    """``pytest -m cuda``: names as they finish (``-v``), the 25 slowest, a JUnit file; in ``workers``
    processes with pytest-xdist; a per-test limit with pytest-timeout (each when installed)."""
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-v", "-ra", "--durations=25",
           f"--junitxml={out / 'pytest_cuda.xml'}"]
    if workers > 1 and importlib.util.find_spec("xdist") is not None:
        cmd += ["-n", str(workers)]
    if per_test_s > 0 and importlib.util.find_spec("pytest_timeout") is not None:
        cmd += [f"--timeout={per_test_s:.0f}"]
    return cmd + extra


def junit_counts(path: Path) -> dict[str, int] | None:
    """``{'passed', 'failed', 'errors', 'skipped'}`` of a JUnit file, None when there is none."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    return {"passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
            "failed": total["failures"], "errors": total["errors"], "skipped": total["skipped"]}


def report_counts(path: Path) -> dict[str, int] | None:
    """Items of ``report.json`` by the first word of their status (ok, stopped, skipped, error, OOM)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    counts: dict[str, int] = {}
    for section in ("training", "na", "tiled", "data", "realsr"):
        for row in data.get(section, []):
            word = str(row.get("status", "?")).split(":")[0]
            counts[word] = counts.get(word, 0) + 1
    return counts


def _describe(part: Part | None, counts: dict[str, int] | None, what: str) -> str:
    if part is None:
        return f"{what}: not run"
    found = ", ".join(f"{n} {k}" for k, n in counts.items()) if counts else "no result file"
    how = " (killed)" if part.killed else " (cut at its deadline)" if part.cut else f" (exit {part.returncode})"
    return f"{what}: {found}{how}, {part.seconds:.0f} s"


# ------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_proof", help="folder for the log and results")
    ap.add_argument("--total-s", type=float, default=420, help="time cap of the whole proof (plus --grace-s)")
    ap.add_argument("--report-min-s", type=float, default=240,
                    help="time kept for the report whatever the tests take (its first priority needs ~210 s)")
    ap.add_argument("--grace-s", type=float, default=20, help="from SIGINT at a deadline to SIGKILL")
    ap.add_argument("--workers", type=int, default=4, help="pytest-xdist processes for the tests, when installed")
    ap.add_argument("--per-test-s", type=float, default=180, help="per-test limit, when pytest-timeout is installed")
    ap.add_argument("--smoke", action="store_true", help="the report's --smoke (tiny shapes: a dry run on the CPU)")
    ap.add_argument("--report-args", default="", help="more gpu_report.py arguments, e.g. '--sections training,na'")
    ap.add_argument("--environment", action="store_true", help=argparse.SUPPRESS)  # the first log line, alone
    ap.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments (e.g. a test file)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.environment:
        print(environment_line(), flush=True)
        return 0
    t0 = time.monotonic()
    end = t0 + args.total_s
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "proof.log").unlink(missing_ok=True)
    log = Log(args.out / "proof.log")
    previous = signal.signal(signal.SIGINT, lambda signum, frame: _STOP.set())
    try:
        return _run(args, t0, end, log)
    finally:
        signal.signal(signal.SIGINT, previous)
        log.close()


def _run(args: argparse.Namespace, t0: float, end: float, log: Log) -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}

    # the first line, from a child process: this one holds no CUDA context while the parts run
    try:
        probe = subprocess.run([sys.executable, __file__, "--environment"], capture_output=True, text=True,
                               env=env, cwd=ROOT, timeout=120)
        lines = probe.stdout.strip().splitlines()
        first = lines[-1] if probe.returncode == 0 and lines else (
            "unreadable: " + ((probe.stderr.strip().splitlines() or ["?"])[-1]))
    except subprocess.TimeoutExpired:
        first = "unreadable: the environment probe did not answer in 120 s"
    log.line(f"proof environment: {first}")
    log.line(f"[proof] total cap {args.total_s:.0f} s (+{args.grace_s:.0f} s grace); the report keeps "
             f"{args.report_min_s:.0f} s; results in {args.out}")

    tests_end = end - args.report_min_s
    cmd = pytest_command(args.out, args.workers, args.per_test_s, args.pytest_args)
    log.line("[proof] tests: " + " ".join(cmd[1:]))
    tests = run_part("tests", cmd, log, lambda: time.monotonic() > tests_end, args.grace_s, env)

    report: Part | None = None
    if not _STOP.is_set():
        budget = max(end - time.monotonic() - args.grace_s, 1.0)  # ends itself before the cap's SIGINT
        cmd = [sys.executable, str(REPORT), "--out", str(args.out / "gpu_report"), "--budget-s", f"{budget:.0f}"]
        cmd += (["--smoke"] if args.smoke else []) + shlex.split(args.report_args)
        log.line("[proof] report: " + " ".join(cmd[1:]))
        report = run_part("report", cmd, log, lambda: time.monotonic() > end, args.grace_s, env)

    test_counts = junit_counts(args.out / "pytest_cuda.xml")
    item_counts = report_counts(args.out / "gpu_report" / "report.json")
    cut = tests.cut or (report is not None and report.cut)
    ok = tests.returncode == 0 and report is not None and report.returncode == 0
    status = 124 if cut else 0 if ok else 1
    summary = {"exit": status, "seconds": round(time.monotonic() - t0, 1), "environment": first,
               "tests": {"counts": test_counts, **vars(tests)},
               "report": None if report is None else {"counts": item_counts, **vars(report)}}
    (args.out / "proof.json").write_text(json.dumps(summary, indent=2))
    log.line(f"proof summary: {_describe(tests, test_counts, 'tests')}; {_describe(report, item_counts, 'report items')}; "
             f"{summary['seconds']:.0f} s of {args.total_s:.0f}; exit {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
