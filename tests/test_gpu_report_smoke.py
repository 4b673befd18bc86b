"""scripts/benchmark/gpu_report.py --smoke: the GPU report's code runs end to end on the CPU (tiny
networks and shapes, ``torch.compile`` with the eager backend) and writes a complete JSON and markdown
report; the budget turns items into ``skipped: budget`` instead of overrunning."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark" / "gpu_report.py"
NETWORKS = ("SwinIR-light x2", "SwinIR-M x2", "HAT-S x2", "HAT x4", "DSwinIR", "TBSN")


def _run(out: Path, *extra: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


def test_smoke_report_measures_every_section(tmp_path: Path) -> None:
    report = _run(tmp_path)
    env = report["env"]
    assert env["device"] == "cpu" and env["torch"] and "cuda" in env and env["device_name"]
    training = report["training"]
    # every network x {reference, fast} x {fp32, bf16} eager, plus compiled SwinIR-light and HAT-S
    assert len(training) == 6 * 4 + 2
    assert {r["network"] for r in training} == set(NETWORKS)
    bad = [r for r in training if r["status"] != "ok"]
    assert not bad, bad
    for r in training:
        assert r["images_per_s"] > 0 and r["ms_per_step"] > 0 and r["first_step_s"] > 0 and r["steps"] >= 2
    assert {(r["backend"], r["mode"]) for r in training if r["network"] == "HAT-S x2"} == {
        ("reference", "eager"), ("sdpa", "eager"), ("sdpa", "compile")}
    # what each path really ran: SDPA kernels from one profiled step, graphs compiled while timing, warnings
    for r in training:
        assert isinstance(r["sdpa_kernels"], list) and isinstance(r["warnings"], list)
        assert r["graphs_timed"] == 0, r
    assert all(r["sdpa_kernels"] == [] for r in training if r["backend"] == "reference")
    compiled = [r for r in training if r["mode"] == "compile"]
    assert compiled and all(r["graphs_warmup"] >= 1 for r in compiled)
    na = {(r["backend"], r["precision"]): r for r in report["na"]}
    assert set(na) == {(b, p) for b in ("reference", "flex") for p in ("fp32", "bf16")}
    for p in ("fp32", "bf16"):
        assert na["reference", p]["status"] == "ok" and na["reference", p]["ms_per_step"] > 0
        assert na["reference", p]["kernel"] == 3 and na["reference", p]["graphs_timed"] == 0
        assert na["flex", p]["status"] == "skipped: flex has no backward pass on the CPU"
    realsr = report["realsr"]
    assert [r["precision"] for r in realsr] == ["fp32", "bf16"] and all(r["status"] == "ok" for r in realsr), realsr
    for r in realsr:  # the degradation is timed apart and reported as a share of the step
        assert r["ms_per_step"] > 0 and r["degrade_ms"] > 0 and r["batch"] == 2 and r["gt"] == "48² -> 32²"
        assert abs(r["degrade_share"] - r["degrade_ms"] / r["ms_per_step"]) < 2e-3
    tiled = {r["measurement"]: r for r in report["tiled"]}
    assert tiled["peak memory"]["status"] == "ok" and tiled["peak memory"]["weights_mb"] > 0
    assert tiled["tiled vs whole"]["status"] == "ok" and tiled["tiled vs whole"]["psnr_tiled_vs_whole_db"] > 20
    data = report["data"]
    assert {(r["io"], r["scale"], r["workers"]) for r in data} >= {("disk", s, w) for s in (2, 4) for w in (1, 2)}
    assert all(r["status"] == "ok" and r["images_per_s"] > 0 for r in data)
    assert {r["network"] for r in report["starvation"]} == set(NETWORKS)
    assert all(isinstance(r["gpu_would_starve"], bool) for r in report["starvation"])

    md = (tmp_path / "report.md").read_text()
    assert md.startswith(f"# GPU report: {env['device_name']} (cpu), torch {env['torch']}, CUDA {env['cuda']}")
    for heading in ("## Training step", "## Neighbourhood attention", "## Real-HAT-GAN step and its degradation",
                    "## HAT-L x2 tiled inference", "## Data pipeline", "## Would the loader starve"):
        assert heading in md
    if not env["lmdb"]:
        assert "lmdb is not installed: the LMDB rows were not measured" in md
    hat_s = next(r for r in training if r["network"] == "HAT-S x2" and r["mode"] == "compile")
    assert f"| HAT-S x2 | sdpa | bf16 | compile | 2 x 32² | {hat_s['images_per_s']} |" in md
    # grouped by network in the markdown, whatever order the priorities ran them in
    assert md.index("| SwinIR-M x2 | reference | fp32") < md.index("| HAT-S x2 | reference | fp32") < md.index(
        "| HAT x4 | reference | fp32")


def test_budget_skips_instead_of_overrunning(tmp_path: Path) -> None:
    report = _run(tmp_path, "--budget-s", "0", "--sections", "training,tiled")
    rows = report["training"] + report["tiled"]
    assert rows and all(r["status"] == "skipped: budget" for r in rows)
    assert "skipped: budget" in (tmp_path / "report.md").read_text()


def _module():
    spec = importlib.util.spec_from_file_location("gpu_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_first_priority_is_one_measurement_per_target() -> None:
    """A short lease still yields every target: the priority-1 items are exactly one per target, and they
    run before everything else; every section is planned in full after them."""
    gr = _module()
    args = gr.parse_args(["--smoke"])
    items = gr.plan(args, torch.device("cpu"), gr.DataFiles(args))
    first = [(section, tuple(row.values())[:4]) for priority, section, row, _, _ in items if priority == 1]
    assert first == [
        ("training", ("SwinIR-light x2", "reference", "fp32", "eager")),
        ("training", ("SwinIR-light x2", "reference", "bf16", "eager")),
        ("training", ("SwinIR-light x2", "sdpa", "bf16", "eager")),
        ("training", ("HAT-S x2", "reference", "fp32", "eager")),
        ("training", ("HAT-S x2", "reference", "bf16", "eager")),
        ("training", ("HAT-S x2", "sdpa", "bf16", "eager")),
        ("training", ("TBSN", "parity", "bf16", "eager")),
        ("na", ("reference", "fp32", 3, 16)),
        ("na", ("flex", "fp32", 3, 16)),
        ("tiled", ("peak memory", 48, 16, 4)),
        ("tiled", ("tiled vs whole", 32, 16, 4)),
        ("data", ("disk", 2, 32, 2)),
        ("data", ("disk", 4, 32, 2)),
        ("realsr", ("fp32",)),
    ]
    counts = {section: sum(1 for item in items if item[1] == section) for section in ("training", "na", "tiled", "realsr")}
    assert counts == {"training": 26, "na": 4, "tiled": 2, "realsr": 2}
    # DSwinIR's network with 'auto' compiles per neighbourhood shape: last
    assert all(row["network"] == "DSwinIR" and row["backend"] == "auto"
               for priority, _, row, _, _ in items if priority == 3)
    assert [p for p, *_ in sorted(items, key=lambda item: item[0])][:len(first)] == [1] * len(first)


def test_watch_records_warnings_and_graphs_compiled_while_timing() -> None:
    gr = _module()
    with gr.Watch() as seen:
        warnings.warn("flex neighbourhood attention cannot serve q (1, 2)\nsecond line", RuntimeWarning)
        seen.mark_warm()
        torch.compile(lambda t: t * 2 + 1, backend="eager")(torch.ones(3))  # a compile inside the timed steps
        seen.mark_timed()
    result = seen.result()
    assert result["warnings"] == ["flex neighbourhood attention cannot serve q (1, 2)"]
    assert result["graphs_warmup"] == 0 and result["graphs_timed"] >= 1
