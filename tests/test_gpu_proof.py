"""scripts/benchmark/gpu_proof.py: the proof survives its own time cap with something to read.

A part cut at its deadline gets SIGINT, as Ctrl-C would: pytest must still print the names of the tests
that ran, its summary line and the JUnit file; the report must keep every item it measured and list the
others. Here the cut is triggered by the state of the part (a test that has started waiting, a first
report item written), not by a clock, so a busy machine makes these tests slower, never different."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark" / "gpu_proof.py"

_WAITING_TESTS = '''
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.cuda


def test_finishes():
    assert True


def test_waits_for_the_cut():
    Path(os.environ["PROOF_TEST_STARTED"]).touch()
    time.sleep(600)  # the cut comes first


def test_never_reached():
    assert True
'''


def _module():
    spec = importlib.util.spec_from_file_location("gpu_proof", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1", **extra}


def _waiting_session(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    cuda: as in the project\n")
    test_file = tmp_path / "test_cut.py"
    test_file.write_text(_WAITING_TESTS)
    return test_file


@pytest.mark.parametrize("parent_sigint", ["default", "ignored"])
def test_tests_cut_at_their_deadline_leave_names_a_summary_line_and_junit(tmp_path: Path, parent_sigint: str) -> None:
    """``ignored``: the proof started in the background (``cmd &`` ignores SIGINT, and children inherit that);
    the part must still turn the cut into pytest's KeyboardInterrupt, not wait out the grace and be killed."""
    gp = _module()
    test_file = _waiting_session(tmp_path)
    started = tmp_path / "started"
    out = tmp_path / "out"
    out.mkdir()
    log = gp.Log(out / "proof.log")
    cmd = gp.pytest_command(out, workers=1, per_test_s=0, extra=[str(test_file), "-p", "no:cacheprovider"])
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if parent_sigint == "ignored" else None
    try:
        part = gp.run_part("tests", cmd, log, started.exists, grace_s=120,
                           env=_env(PROOF_TEST_STARTED=str(started)))
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    log.close()
    text = (out / "proof.log").read_text()
    assert part.cut and not part.killed and part.returncode == 2, (part, text[-3000:])  # 2: pytest interrupted
    assert "test_cut.py::test_finishes PASSED" in text and "test_cut.py::test_waits_for_the_cut" in text
    assert "KeyboardInterrupt" in text and "test_never_reached" not in text
    assert re.search(r"^=+ 1 passed in [\d.]+s", text, re.MULTILINE), text[-2000:]
    assert gp.junit_counts(out / "pytest_cuda.xml") == {"passed": 1, "failed": 0, "errors": 0, "skipped": 0}


def test_a_report_cut_at_its_deadline_keeps_what_it_measured(tmp_path: Path) -> None:
    gp = _module()
    out = tmp_path / "report"

    def first_item_written() -> bool:
        try:
            return bool(json.loads((out / "report.json").read_text())["training"])
        except (OSError, ValueError, KeyError):
            return False

    log = gp.Log(tmp_path / "proof.log")
    cmd = [sys.executable, str(gp.REPORT), "--smoke", "--no-limits", "--sections", "training", "--out", str(out)]
    part = gp.run_part("report", cmd, log, first_item_written, grace_s=120, env=_env())
    log.close()
    assert part.cut and not part.killed and part.returncode == 130, (tmp_path / "proof.log").read_text()[-3000:]
    report = json.loads((out / "report.json").read_text())
    statuses = [r["status"] for r in report["training"]]
    # every planned row: 6 attention-network rows x 5 paths, 2 compiled; 8 community families x 2 precisions,
    # and 3 of them (SPAN, NAFNet, Restormer) on both sides of their switch
    assert report["interrupted"] is True and len(statuses) == 6 * 5 + 2 + (8 + 3) * 2
    assert "ok" in statuses and set(statuses) <= {"ok", "stopped: interrupted", "skipped: interrupted"}
    assert "skipped: interrupted" in statuses
    assert "| skipped: interrupted |" in (out / "report.md").read_text()
    assert gp.report_counts(out / "report.json")["ok"] == statuses.count("ok")


def test_the_log_opens_with_the_environment_and_ends_with_the_summary(tmp_path: Path) -> None:
    gp = _module()
    test_file = _waiting_session(tmp_path)
    test_file.write_text("import pytest\n\n\n@pytest.mark.cuda\ndef test_passes():\n    assert True\n")
    out = tmp_path / "out"
    # caps far beyond the work: nothing here is cut, however busy the machine
    argv = ["--smoke", "--total-s", "1e6", "--report-min-s", "1", "--out", str(out),
            "--report-args", "--sections tiled --no-limits", "--", str(test_file), "-p", "no:cacheprovider"]
    status = gp.main(argv)
    lines = (out / "proof.log").read_text().splitlines()
    assert lines[0].startswith(f"proof environment: torch {torch.__version__}; ")
    assert ("no CUDA" in lines[0]) != torch.cuda.is_available() and "SDPA enabled: " in lines[0]
    assert lines[-1].startswith("proof summary: tests: 1 passed, 0 failed, 0 errors, 0 skipped (exit 0)"), lines[-1]
    assert "report items: 2 ok (exit 0)" in lines[-1] and lines[-1].endswith("exit 0")
    summary = json.loads((out / "proof.json").read_text())
    assert status == summary["exit"] == 0 and summary["tests"]["counts"]["passed"] == 1
    assert summary["report"]["counts"] == {"ok": 2} and (out / "gpu_report" / "report.md").is_file()
