"""scripts/benchmark/gpu_report.py: the report's code runs end to end on the CPU (``--smoke``: tiny
networks and shapes, ``torch.compile`` with the eager backend) and writes a complete JSON and markdown
report; the budget turns items into ``skipped: budget`` instead of overrunning; and its bookkeeping (time
caps, a failing device sync, an interrupt, the plan) holds whatever the code inside an item does.

The end-to-end run is bounded by its work, not by a clock: ``--no-limits`` lifts the budget and the
per-item caps, and every loop in ``--smoke`` runs a fixed number of steps, so a busy machine makes it
slower, never different."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark" / "gpu_report.py"
NETWORKS = ("SwinIR-light x2", "SwinIR-M x2", "HAT-S x2", "HAT x4", "DSwinIR", "TBSN")
COMMUNITY = ("RRDBNet x4 (Real-ESRGAN x4plus)", "SRVGGNetCompact x4 (general-x4v3)", "EDSR-M x2", "RCAN x2",
             "DAT-light x2", "SPAN x4", "NAFNet-SIDD width 32", "Restormer")


def _run(out: Path, *extra: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


@pytest.mark.slow  # every row of every section on the CPU: about 2.5 min on 2 cores (the planning and a cut report
#                   are checked in the default suite: test_first_priority_is_one_measurement_per_target, test_gpu_proof)
def test_smoke_report_measures_every_section(tmp_path: Path) -> None:
    report = _run(tmp_path, "--no-limits")
    env = report["env"]
    assert env["device"] == "cpu" and env["torch"] and "cuda" in env and env["device_name"]
    training = report["training"]
    # every network x {reference, fast} x {fp32, bf16} eager, its fast path in tf32, compiled SwinIR-light and HAT-S;
    # the community families (their tiny test configurations here) in fp32 and bf16, both sides of a switch
    assert len(training) == 6 * 5 + 2 + (8 + 3) * 2
    assert {r["network"] for r in training} == set(NETWORKS) | set(COMMUNITY)
    assert {(r["backend"], r["precision"]) for r in training if r["network"] == "SPAN x4"} == {
        (b, p) for b in ("branch", "fused") for p in ("fp32", "bf16")}
    assert {r["backend"] for r in training if r["network"] == "Restormer"} == {"reference", "function"}
    bad = [r for r in training if r["status"] != "ok"]
    assert not bad, bad
    for r in training:
        assert r["images_per_s"] > 0 and r["ms_per_step"] > 0 and r["first_step_s"] > 0 and r["steps"] >= 2
    assert {(r["backend"], r["mode"]) for r in training if r["network"] == "HAT-S x2"} == {
        ("reference", "eager"), ("sdpa", "eager"), ("sdpa", "compile")}
    # which TF32 switches each row ran with: torch's defaults, or train.tf32: true for the tf32 rows
    defaults = (env["tf32_matmul"], env["tf32_cudnn"])
    for r in training:
        assert (r["tf32_matmul"], r["tf32_conv"]) == ((True, True) if r["precision"] == "tf32" else defaults), r
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
    assert all(r["status"] == "ok" and r["images_per_s"] > 0 and r["pin_memory"] is False for r in data)
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
    tf32 = f"{'yes' if defaults[0] else 'no'} / {'yes' if defaults[1] else 'no'}"
    assert f"| HAT-S x2 | sdpa | bf16 | {tf32} | compile | 2 x 32² | {hat_s['images_per_s']} |" in md
    assert "| HAT-S x2 | sdpa | tf32 | yes / yes | eager |" in md
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
    """A short budget still yields every target: the priority-1 items are exactly one per target, and they
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
        ("data", ("disk", 2, 32, 2)),
        ("data", ("disk", 4, 32, 2)),
        ("realsr", ("fp32",)),
        ("na", ("reference", "fp32", 3, 16)),
        ("na", ("flex", "fp32", 3, 16)),
        ("tiled", ("tiled vs whole", 32, 16, 4)),
        ("tiled", ("peak memory", 48, 16, 4)),
    ]
    # the first data item to run writes the files: it has the extra time
    data_caps = {row["workers"]: cap for priority, section, row, cap, _ in items if section == "data" and row["scale"] == 2
                 and row["io"] == "disk"}
    assert data_caps[2] == data_caps[1] + 30
    counts = {section: sum(1 for item in items if item[1] == section) for section in ("training", "na", "tiled", "realsr")}
    assert counts == {"training": 6 * 5 + 2 + (8 + 3) * 2, "na": 4, "tiled": 2, "realsr": 2}
    assert all(priority == 2 for priority, _, row, _, _ in items if row.get("network") in COMMUNITY)
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


# ------------------------------------------------------------------------- bookkeeping (no measurement)
def _report(tmp_path: Path, *extra: str):
    gr = _module()
    return gr, gr.Report(gr.parse_args(["--smoke", "--out", str(tmp_path), *extra]), torch.device("cpu"))


def _na_row() -> dict:
    return {"backend": "flex", "precision": "fp32", "kernel": 7, "size": 256, "shape": "4x3x16"}


def _tiled_row(measurement: str) -> dict:
    return {"measurement": measurement, "input": 48, "tile": 16, "overlap": 4}


def _wait_for_the_alarm(swallow: type[BaseException]) -> dict:
    """An item that waits for its time cap inside ``except swallow`` and then returns a number, as Dynamo
    and the flex fallback do (a compile error is caught; the reference path's timing comes back)."""
    try:
        for _ in range(100_000):  # bounded: the 0.05 s alarm ends it long before
            time.sleep(0.01)
    except swallow:
        pass
    return {"ms_per_step": 1.0}


@pytest.mark.parametrize("swallow", [Exception, BaseException])
def test_a_swallowed_time_cap_marks_the_item_stopped_not_ok(tmp_path: Path, swallow: type[BaseException]) -> None:
    gr, report = _report(tmp_path)
    row = report.run("na", _na_row(), 0.05, lambda: _wait_for_the_alarm(swallow))
    assert row["status"] == "stopped: budget (cap 0 s)" and "ms_per_step" not in row
    assert json.loads((tmp_path / "report.json").read_text())["na"][0]["status"] == row["status"]


def test_a_failing_device_sync_fails_that_item_and_the_report_goes_on(tmp_path: Path, monkeypatch) -> None:
    gr, report = _report(tmp_path)
    calls = []

    def release(device: torch.device) -> None:  # a sticky CUDA error surfaces at the sync after the item
        calls.append(device)
        if len(calls) == 1:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")

    monkeypatch.setattr(gr, "release", release)
    first = report.run("tiled", _tiled_row("peak memory"), 10, lambda: {"peak_mb": 1.0})
    second = report.run("tiled", _tiled_row("tiled vs whole"), 10, lambda: {"psnr_tiled_vs_whole_db": 40.0})
    assert first["status"] == ("error: RuntimeError in the device sync after the item: "
                               "CUDA error: an illegal memory access was encountered")
    assert second["status"] == "ok" and second["psnr_tiled_vs_whole_db"] == 40.0
    assert [r["status"] for r in json.loads((tmp_path / "report.json").read_text())["tiled"]] == [
        first["status"], "ok"]


def test_an_interrupt_keeps_what_was_measured_and_lists_what_was_not(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C, or SIGINT from a time cap around the report: the item running is recorded as interrupted,
    the ones not reached as such, and both files are written; main returns instead of raising."""
    gr = _module()

    def interrupted() -> dict:
        raise KeyboardInterrupt

    def items(args, device, files):
        rows = [_tiled_row("a"), _tiled_row("b"), _tiled_row("c")]
        fns = [lambda: {"peak_mb": 1.0}, interrupted, lambda: {"peak_mb": 3.0}]
        return [(1, "tiled", row, 10.0, fn) for row, fn in zip(rows, fns)]

    monkeypatch.setattr(gr, "plan", items)
    try:
        data = gr.main(["--smoke", "--out", str(tmp_path), "--sections", "tiled"])
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped main: the report's files are not final")
    assert data["interrupted"] is True
    assert [r["status"] for r in data["tiled"]] == ["ok", "stopped: interrupted", "skipped: interrupted"]
    assert json.loads((tmp_path / "report.json").read_text())["tiled"] == data["tiled"]
    assert "| skipped: interrupted |" in (tmp_path / "report.md").read_text()


def test_step_and_degradation_are_timed_on_the_same_warm_iterations() -> None:
    """The degradation's share compares like with like: the degradation is timed on the iterations the
    step was timed on (its random shapes come from the iteration), after an untimed pass over them
    (cuDNN autotunes each new shape on first sight)."""
    gr = _module()
    calls: list[tuple[str, int]] = []
    step_s, degrade_s = gr.paired_times(lambda it: calls.append(("step", it)), lambda it: calls.append(("degrade", it)),
                                        range(100, 103), torch.device("cpu"))
    assert calls == [("step", 100), ("step", 101), ("step", 102)] * 2 + [("degrade", i) for i in (100, 101, 102)]
    assert step_s >= 0 and degrade_s >= 0


def test_tf32_rows_switch_tf32_and_every_row_records_the_flags() -> None:
    """'fp32' is torch's default (TF32 convolutions, full-fp32 matmuls), 'tf32' is ``train.tf32: true``;
    each training row says which it ran."""
    gr = _module()
    before = gr.tf32_flags()
    with gr.precision_settings("tf32"):
        assert gr.tf32_flags() == {"tf32_matmul": True, "tf32_conv": True}
    with gr.precision_settings("fp32"):
        assert gr.tf32_flags() == before
    assert gr.tf32_flags() == before
    args = gr.parse_args(["--smoke"])
    rows = [row for _, section, row, _, _ in gr.plan(args, torch.device("cpu"), gr.DataFiles(args))
            if section == "training" and row["precision"] == "tf32"]
    assert [(r["network"], r["backend"], r["mode"]) for r in rows] == [
        ("SwinIR-light x2", "sdpa", "eager"), ("SwinIR-M x2", "sdpa", "eager"), ("HAT-S x2", "sdpa", "eager"),
        ("HAT x4", "sdpa", "eager"), ("DSwinIR", "auto", "eager"), ("TBSN", "parity", "eager")]


def test_the_loader_is_measured_with_pinned_memory_on_a_gpu(monkeypatch) -> None:
    """As training builds it: ``pin_memory`` follows the device."""
    gr = _module()
    import restoration.data.loader as loader

    seen = {}

    def build_train_loader(dataset, opt, seed, rank, world_size, use_cuda):
        seen["use_cuda"] = use_cuda
        raise gr.ItemSkipped("stop here")

    monkeypatch.setattr(loader, "build_dataset", lambda opt: [])
    monkeypatch.setattr(loader, "build_train_loader", build_train_loader)
    with pytest.raises(gr.ItemSkipped):
        gr.loader_rate("gt", "lq", "disk", 2, 32, 2, gr.parse_args(["--smoke"]), torch.device("cuda"))
    assert seen == {"use_cuda": True}


def test_an_interrupt_the_item_swallows_still_stops_the_report(tmp_path: Path, monkeypatch) -> None:
    """SIGINT met inside code that catches it (or turns it into another error) still ends the report: the
    item is recorded as interrupted, not with the number it returned, and the next one does not run."""
    gr = _module()

    def swallows_the_interrupt() -> dict:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100_000):  # bounded: the handler runs at once
                time.sleep(0.01)
        except BaseException:
            pass
        return {"peak_mb": 2.0}

    def items(args, device, files):
        fns = [lambda: {"peak_mb": 1.0}, swallows_the_interrupt, lambda: {"peak_mb": 3.0}]
        return [(1, "tiled", _tiled_row(name), 10.0, fn) for name, fn in zip("abc", fns)]

    monkeypatch.setattr(gr, "plan", items)
    previous = signal.getsignal(signal.SIGINT)
    try:
        data = gr.main(["--smoke", "--out", str(tmp_path), "--sections", "tiled"])
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped main")
    assert signal.getsignal(signal.SIGINT) is previous
    assert data["interrupted"] is True
    assert [r["status"] for r in data["tiled"]] == ["ok", "stopped: interrupted", "skipped: interrupted"]
    assert "peak_mb" not in data["tiled"][1]
