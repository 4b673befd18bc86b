"""scripts/benchmark/benchmark.py: option loading, the path matrix, and the JSON report of a real run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark" / "benchmark.py"


def _load_script(path: Path = SCRIPT):
    """Import a script of scripts/benchmark/ (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


class TinyAttnNet(nn.Module):
    """Conv + one global self-attention with a switchable backend (stands in for SwinIR in fast tests)."""

    def __init__(self, dim: int = 8, upscale: int = 2, attn_backend: str | None = None) -> None:
        super().__init__()
        self.attn_backend = attn_backend or "sdpa"
        self.conv_first = nn.Conv2d(3, dim, 3, padding=1)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.conv_last = nn.Conv2d(dim, 3 * upscale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv_first(x)
        b, c, h, w = f.shape
        q, k, v = self.qkv(f.flatten(2).transpose(1, 2)).chunk(3, dim=-1)
        if self.attn_backend == "reference":
            a = (q @ k.transpose(-2, -1) * c**-0.5).softmax(-1) @ v
        else:
            a = F.scaled_dot_product_attention(q, k, v)
        f = f + a.transpose(1, 2).reshape(b, c, h, w)
        return self.shuffle(self.conv_last(f))


def test_yaml_reads_scientific_notation_as_float(tmp_path: Path) -> None:
    bench = _load_script()
    p = tmp_path / "opt.yml"
    p.write_text("network_g:\n  type: SwinIR\n  img_range: 1.\ntrain:\n  lr: 2e-4\n  eta: 1.5E-7\n  name: 1e\n")
    doc = bench.load_yaml(p)
    assert doc["train"]["lr"] == pytest.approx(2e-4) and isinstance(doc["train"]["lr"], float)
    assert doc["train"]["eta"] == pytest.approx(1.5e-7)
    assert doc["train"]["name"] == "1e"  # not a number: stays a string


def test_network_options_merge_and_errors(tmp_path: Path) -> None:
    bench = _load_script()
    p = tmp_path / "opt.yml"
    p.write_text("network_g:\n  type: SwinIR\n  embed_dim: 60\n  upscale: 2\n")
    args = bench.parse_args(["-opt", str(p), "--kwargs", '{"upscale": 3}'])
    assert bench.network_options(args) == {"type": "SwinIR", "embed_dim": 60, "upscale": 3}
    (tmp_path / "bad.yml").write_text("train: {}\n")
    with pytest.raises(SystemExit, match="network_g"):
        bench.network_options(bench.parse_args(["-opt", str(tmp_path / "bad.yml")]))
    with pytest.raises(SystemExit, match="JSON"):
        bench.network_options(bench.parse_args(["--arch", "SwinIR", "--kwargs", "{upscale: 2}"]))
    assert bench.supports_attn_backend(TinyAttnNet) and not bench.supports_attn_backend(nn.Conv2d)


def test_backend_axis_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both backends of an attention net are timed (interleaved, in this process), compared, written to JSON."""
    bench = _load_script()
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    # the peak memory is measured in a fresh process per path, which must import the stand-in too
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), str(ROOT)]))
    out = tmp_path / "r.json"
    report = bench.main([
        "--arch", "test_benchmark_script:TinyAttnNet", "--kwargs", '{"dim": 8}', "--device", "cpu",
        "--batch", "2", "--size", "12", "16", "--warmup", "0", "--repeats", "2", "--interleave", "--modes", "forward",
        "--json", str(out),
    ])
    saved = json.loads(out.read_text())
    assert saved["input_size"] == [12, 16] and saved["in_chans"] == 3
    assert [p["attn_backend"] for p in saved["paths"]] == ["reference", "sdpa"]
    # conv_first 3*8*9+8, qkv 8*24+24, conv_last 8*12*9+12
    assert saved["params"] == 224 + 216 + 876
    # FLOPs of one 12x16 image: 2 * MACs of the convs, the qkv matmul and the two attention matmuls.
    hw = 12 * 16
    expected = 2 * (hw * 8 * 3 * 9 + hw * 8 * 24 + 2 * hw * hw * 8 + hw * 12 * 8 * 9)
    assert saved["flops"]["per_image"] == expected and saved["flops"]["batch"] == 2 * expected
    comp = saved["comparisons"]
    assert len(comp) == 1 and comp[0]["forward"]["speedup"] > 0
    assert saved["mode"] == "interleaved"
    for p in saved["paths"]:
        assert len(p["forward"]["times_ms"]) == 2 and p["forward"]["time_ms_min"] > 0 and "forward_backward" not in p
        assert "memory_error" not in p, p.get("memory_error")
        assert p["forward"]["peak_mem_mb"] is not None and p["forward"]["peak_mem_mb"] >= 0


def test_script_end_to_end_json(tmp_path: Path) -> None:
    """Run the script as a user would (one subprocess per path) and check every JSON field."""
    bench = _load_script()
    try:  # the framework's small reference CNN when it exists, else the stand-in above
        bench.resolve_arch("SimpleSRNet")
        arch, kwargs = "SimpleSRNet", {}
    except Exception:
        arch, kwargs = "test_benchmark_script:TinyAttnNet", {"dim": 8}
    out = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--arch", arch, "--kwargs", json.dumps(kwargs), "--device", "cpu",
         "--batch", "1", "--size", "16", "--warmup", "0", "--repeats", "1", "--backends", "sdpa", "--no-flops",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| path | fwd ms" in proc.stdout  # the table
    report = json.loads(out.read_text())
    assert report["arch"] == arch and report["device"] == "cpu"
    # FLOPs are checked exactly in test_backend_axis_in_process; here they are off (saves a torch._dynamo import).
    assert report["params"] > 0 and report["flops"]["per_image"] is None
    assert report["memory_method"].startswith("RSS")
    assert len(report["paths"]) == 1
    path = report["paths"][0]
    assert "error" not in path, path.get("error")
    for mode in ("forward", "forward_backward"):
        assert path[mode]["time_ms_median"] > 0 and len(path[mode]["times_ms"]) == 1
        assert path[mode]["peak_mem_mb"] is not None and path[mode]["peak_mem_mb"] > 0


def test_times_are_never_taken_under_the_memory_malloc_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU memory method makes glibc mmap every block >= 64 KiB (page faults on every large
    allocation): times must come from a process without that setting, peaks from one with it."""
    bench = _load_script()
    calls = []

    def fake_run(cmd, env, **kwargs):
        spec = json.loads(cmd[-1])
        calls.append((spec["measure"], env.get("MALLOC_MMAP_THRESHOLD_")))
        result = {"forward": {"times_ms": [1.0], "time_ms_median": 1.0, "time_ms_min": 1.0, "peak_mem_mb": 2.0}}
        return subprocess.CompletedProcess(cmd, 0, stdout=bench._WORKER_MARK + json.dumps(result) + "\n", stderr="")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4096")  # a user's setting must not reach the timing run either
    res = bench.run_path_isolated({"modes": ["forward"], "repeats": 1}, None)
    assert calls == [("time", None), ("memory", str(64 * 1024))]
    assert res["forward"]["times_ms"] == [1.0] and res["forward"]["peak_mem_mb"] == 2.0


def test_window_attention_micro_benchmark_checks_and_times_every_backend(capsys: pytest.CaptureFixture) -> None:
    mod = _load_script(SCRIPT.parent / "benchmark_window_attention.py")
    report = mod.main(["--shape", "2", "16", "4", "2", "4", "--repeats", "2", "--warmup", "0"])
    rows = report["rows"]
    assert [(r["shifted"], r["backend"]) for r in rows] == [
        (True, "reference"), (True, "sdpa"), (False, "reference"), (False, "sdpa")]
    for r in rows:
        assert len(r["times_ms"]) == 2 and r["best_ms"] > 0
        assert r["rel_error"] < 1e-5  # outputs and the qkv / bias gradients agree with the reference
    assert "| shifted | sdpa |" in capsys.readouterr().out


def test_tiled_memory_estimate_bounds_the_full_run(tmp_path: Path) -> None:
    """The estimate (one tile through the net + the whole-image buffers) is an upper bound of the peak
    of the real tiled run, which is what lets a CPU estimate stand in for a run too slow to do."""
    from scripts.benchmark.memory import cpu_peak_supported

    if not cpu_peak_supported():
        pytest.skip("no RSS high-water mark on this platform")
    common = [str(SCRIPT.parent / "tiled_inference_memory.py"),
              "-opt", str(ROOT / "options" / "test" / "HAT" / "test_HAT-S_SRx2.yml"), "--kwargs",
              json.dumps({"embed_dim": 24, "depths": [1], "num_heads": [2], "window_size": 8, "compress_ratio": 3,
                          "squeeze_factor": 4}),
              "--size", "384", "--tile", "128", "--overlap", "16"]

    def run(*extra: str) -> dict:
        # a fresh process each: the RSS high-water mark of this one depends on what earlier tests left
        # in its heap (measured: the same full run peaked anywhere from 64 to 111 MB in here)
        out = tmp_path / f"report{len(extra)}.json"
        subprocess.run([sys.executable, *common, *extra, "--json", str(out)], check=True, capture_output=True,
                       timeout=300)
        return json.loads(out.read_text())

    est = run()
    full = run("--full")
    assert est["mode"] == "estimate" and full["mode"] == "full"
    assert est["tile_peak_mb"] > 0 and est["buffers_peak_mb"] > 0
    # the full run holds at least most of one tile's peak (the same tile peak differs by a few MB from
    # process to process: 55-63 MB here), and not more than the estimate, up to the RSS noise of a run
    # over many tiles (heap fragmentation: 1-3 MB above the estimate seen with torch 2.5's allocations)
    assert 0.5 * est["tile_peak_mb"] < full["peak_mb"] <= 1.1 * est["peak_mb"] + 2.0, (est, full)


def test_memory_only_report_formats() -> None:
    """``--repeats 0`` (peaks only) leaves times empty: the table and the comparison must still print."""
    bench = _load_script()
    mode = {"times_ms": [], "time_ms_median": None, "time_ms_min": None, "peak_mem_mb": 5.0}
    paths = [{"attn_backend": b, "dtype": "fp32", "compile": False, "channels_last": False,
              "forward": dict(mode), "forward_backward": dict(mode)} for b in ("reference", "sdpa")]
    report = {"arch": "X", "params": 1, "flops": {"per_image": None, "batch": None}, "input_size": [8, 8], "batch": 1,
              "device": "cpu", "device_name": "cpu", "torch": torch.__version__, "threads": 1,
              "load_average_1min": 0.0, "date": "", "paths": paths, "comparisons": bench.compare_backends(paths)}
    assert report["comparisons"][0]["forward"] == {"speedup": None, "mem_ratio": 1.0}
    assert "| reference/fp32/eager | n/a | 5.0 |" in bench.format_table(report)


def test_comparison_says_slower_when_slower() -> None:
    """sdpa at 0.58x the reference's speed reads "1.72x slower", not "0.58x faster"."""
    bench = _load_script()

    def path(backend: str, ms: float) -> dict:
        mode = {"times_ms": [ms], "time_ms_median": ms, "time_ms_min": ms, "peak_mem_mb": 5.0}
        return {"attn_backend": backend, "dtype": "fp32", "compile": False, "channels_last": False,
                "forward": dict(mode), "forward_backward": dict(mode, time_ms_median=ms / 2)}

    paths = [path("reference", 58.0), path("sdpa", 100.0)]
    report = {"arch": "X", "params": 1, "flops": {"per_image": None, "batch": None}, "input_size": [8, 8], "batch": 1,
              "device": "cpu", "device_name": "cpu", "torch": torch.__version__, "threads": 1,
              "load_average_1min": 0.0, "date": "", "paths": paths, "comparisons": bench.compare_backends(paths)}
    table = bench.format_table(report)
    assert "forward: 1.72x slower" in table and "faster" not in table.split("forward: 1.72x slower")[1].split(",")[0]
    paths[1]["forward"]["time_ms_median"] = 29.0
    report["comparisons"] = bench.compare_backends(paths)
    assert "forward: 2.00x faster" in bench.format_table(report)
