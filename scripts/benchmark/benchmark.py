#!/usr/bin/env python
"""Benchmark a network: parameters, FLOPs, forward and forward+backward time and peak memory per path.

A *path* is one combination of attention backend (``reference`` | ``sdpa``, only for networks whose
constructor takes ``attn_backend``), dtype (``fp32`` | ``bf16`` autocast), ``torch.compile`` (opt-in) and
memory format (contiguous | ``channels_last``, opt-in). Examples::

    python scripts/benchmark/benchmark.py -opt options/train/SwinIR/train_SwinIR_light_SRx2_DIV2K.yml --batch 4 --size 64
    python scripts/benchmark/benchmark.py --arch SwinIR --kwargs '{"upscale": 2, "embed_dim": 60, ...}' \
        --dtypes fp32,bf16 --compile --channels-last --json results.json

Method (also in docs/benchmarks.md):

* time: ``--warmup`` untimed runs, then ``--repeats`` timed runs (CUDA synchronised); the median is reported.
  ``forward`` runs in eval mode under ``torch.no_grad``; ``forward_backward`` in train mode, loss =
  ``mean(|out|)`` in fp32, then ``backward()``; gradients are dropped (``set_to_none``) between runs.
* peak memory: in a separate process from the timings (below), one warm-up run, then one run measured
  by :func:`scripts.benchmark.memory.measure_peak_memory`:
  on CUDA the allocator's peak of live tensor bytes above what was allocated before; on the CPU the
  process' resident-set high-water mark (``VmHWM`` after a reset through ``/proc/self/clear_refs``) above
  the RSS before, with glibc told to ``mmap`` every block >= 64 KiB so that freed tensors leave the RSS.
  That setting makes every large allocation page-fault anew, so it is never on while timing: each path
  is timed in one subprocess with the default malloc and measured in another (``--no-subprocess``:
  both in this process, timings first). Fresh processes also keep compile caches, allocator caches and
  one path's failure from leaking into the next. ``--interleave`` times all paths in one process
  round-robin, so that other load on a shared machine slows every path alike (fairer speed *ratios*);
  their memory is then measured one fresh process per path.
* FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` on one forward of the first path (batch 1 and the
  whole batch); it counts matmul/conv/attention FLOPs (2 per multiply-add), not element-wise ops.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib
import inspect
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from scripts.benchmark.memory import release_free_memory  # noqa: E402

_WORKER_MARK = "@@BENCHMARK_RESULT@@"
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MODES = ("forward", "forward_backward")


# --------------------------------------------------------------------------------------------- options
def load_yaml(path: str | Path) -> Any:
    """``yaml.safe_load`` that reads ``2e-4`` as a float (PyYAML's YAML 1.1 reads it as a string)."""
    try:
        from restoration.options.yaml_io import load_yaml as _load

        return _load(path)
    except ImportError:  # standalone fallback with the same resolver
        import re

        import yaml

        class Loader(yaml.SafeLoader):
            pass

        Loader.add_implicit_resolver(
            "tag:yaml.org,2002:float",
            re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+"
                       r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|\.(?:inf|Inf|INF))$|^\.(?:nan|NaN|NAN)$"),
            list("-+0123456789."),
        )
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=Loader)


def resolve_arch(name: str) -> Callable[..., nn.Module]:
    """A registry name (``SwinIR``) or an import path (``package.module:Class``)."""
    if ":" in name:
        module, attr = name.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    from restoration.archs import register_archs
    from restoration.registry import ARCH_REGISTRY

    register_archs()
    return ARCH_REGISTRY.get(name)


def supports_attn_backend(cls: Callable[..., nn.Module]) -> bool:
    """Whether the constructor takes an ``attn_backend`` argument."""
    try:
        return "attn_backend" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def build(net_opt: dict[str, Any], attn_backend: str | None) -> nn.Module:
    """Instantiate ``net_opt`` (``{'type': ..., **kwargs}``), overriding ``attn_backend`` when given."""
    kwargs = {k: v for k, v in net_opt.items() if k != "type"}
    cls = resolve_arch(net_opt["type"])
    if attn_backend is not None:
        kwargs["attn_backend"] = attn_backend
    return cls(**kwargs)


def input_channels(net: nn.Module) -> int:
    """Channels of the first convolution (3 when the network has none)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def count_flops(net: nn.Module, x: torch.Tensor) -> int:
    """Total FLOPs of one forward (2 per multiply-add, as counted by FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(x)
    return int(counter.get_total_flops())


# ------------------------------------------------------------------------------------------ one path
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, dtype_name: str) -> contextlib.AbstractContextManager:
    dtype = DTYPES[dtype_name]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class PathRunner:
    """One path, set up: the network (built, moved, maybe compiled), the input, and the two timed steps."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.device = torch.device(spec["device"])
        if spec.get("threads"):
            torch.set_num_threads(spec["threads"])
        torch.manual_seed(0)
        self.path = path = spec["path"]
        memory_format = torch.channels_last if path["channels_last"] else torch.contiguous_format
        self.net = build(spec["network"], path["attn_backend"]).to(self.device).to(memory_format=memory_format)
        self.x = torch.rand(spec["batch"], spec["in_chans"], *spec["size"], device=self.device).contiguous(
            memory_format=memory_format
        )
        self.model: Callable[[torch.Tensor], torch.Tensor] = torch.compile(self.net) if path["compile"] else self.net

    def step(self, mode: str) -> Callable[[], torch.Tensor]:
        """The callable for ``mode`` (sets train/eval mode accordingly)."""
        self.net.train(mode == "forward_backward")
        if mode == "forward":
            return self._forward
        return self._forward_backward

    def _forward(self) -> torch.Tensor:
        with torch.no_grad(), _autocast(self.device, self.path["dtype"]):
            return self.model(self.x)

    def _forward_backward(self) -> torch.Tensor:
        with _autocast(self.device, self.path["dtype"]):
            out = self.model(self.x)
        loss = out.float().abs().mean()
        loss.backward()
        self.net.zero_grad(set_to_none=True)
        return loss.detach()

    def time_ms(self, mode: str) -> float:
        fn = self.step(mode)
        _sync(self.device)
        t0 = time.perf_counter()
        fn()
        _sync(self.device)
        return (time.perf_counter() - t0) * 1e3

    def peak_mb(self, mode: str) -> float | None:
        from scripts.benchmark.memory import measure_peak_memory

        fn = self.step(mode)
        _, peak = measure_peak_memory(lambda: (fn(), _sync(self.device)), self.device)
        return None if peak is None else peak / 2**20


def _summary(times: list[float], peak_mb: float | None) -> dict[str, Any]:
    return {
        "time_ms_median": statistics.median(times) if times else None,
        "time_ms_min": min(times) if times else None,  # less sensitive to other load on a shared machine
        "times_ms": times,
        "peak_mem_mb": peak_mb,
    }


def run_path(spec: dict[str, Any]) -> dict[str, Any]:
    """Time and/or measure one path; ``spec`` holds the network options, the path and the run settings.

    ``spec["measure"]``: ``'time'`` (warm-up and timed runs only), ``'memory'`` (one warm-up run, then
    the peak-memory run) or ``'both'`` (timed runs first: measuring CPU memory changes glibc's malloc
    settings for the rest of the process, see :mod:`scripts.benchmark.memory`).
    """
    runner = PathRunner(spec)
    measure, modes = spec.get("measure", "both"), spec["modes"]
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    peaks: dict[str, float | None] = {mode: None for mode in modes}
    if measure != "memory":
        for mode in modes:
            for _ in range(spec["warmup"]):
                runner.time_ms(mode)
            times[mode] = [runner.time_ms(mode) for _ in range(spec["repeats"])]
    if measure != "time":
        for mode in modes:
            if measure == "memory":
                runner.time_ms(mode)  # warm-up: one-time allocations (lazy init, caches) are not the step's peak
            peaks[mode] = runner.peak_mb(mode)
    return {mode: _summary(times[mode], peaks[mode]) for mode in modes}


def run_paths_interleaved(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Time all paths in this process round-robin (A B A B ...), so that a busy machine slows them alike.

    Only times: peak memory is measured afterwards by the caller (see :func:`main`).
    """
    runners = [PathRunner(spec) for spec in specs]
    spec0 = specs[0]
    results: list[dict[str, Any]] = [{} for _ in runners]
    for mode in spec0["modes"]:
        for runner in runners:
            for _ in range(spec0["warmup"]):
                runner.time_ms(mode)
        times: list[list[float]] = [[] for _ in runners]
        for _ in range(spec0["repeats"]):
            for i, runner in enumerate(runners):
                times[i].append(runner.time_ms(mode))
        for i in range(len(runners)):
            results[i][mode] = _summary(times[i], None)
    return results


def run_path_isolated(spec: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """:func:`run_path` in fresh Python processes: one for the times, one for the peak memory.

    Separate processes because the memory measurement needs glibc to ``mmap`` every block >= 64 KiB
    (``MALLOC_MMAP_THRESHOLD_``, so that freed tensors leave the RSS), which makes every large
    allocation page-fault anew: timings taken under it are slower than training ever is, and unfairly
    so for whichever path allocates more.
    """
    timed = _run_worker({**spec, "measure": "time"}, timeout, {})
    peaks = path_peaks(spec, timeout, isolated=True)
    return {mode: {**timed[mode], "peak_mem_mb": peaks[mode]} for mode in spec["modes"]}


def path_peaks(spec: dict[str, Any], timeout: float | None, isolated: bool) -> dict[str, float | None]:
    """Peak memory (MB) per mode of one path: in a fresh process (see :func:`run_path_isolated`), or
    here when not ``isolated`` (this process's malloc then stays switched, see :func:`run_path`)."""
    spec = {**spec, "measure": "memory"}
    if isolated:
        result = _run_worker(spec, timeout, {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024)})
    else:
        result = run_path(spec)
    return {mode: result[mode]["peak_mem_mb"] for mode in spec["modes"]}


def _run_worker(spec: dict[str, Any], timeout: float | None, extra_env: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"} | extra_env
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--_worker", json.dumps(spec)],
        capture_output=True, text=True, env=env, timeout=timeout,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(_WORKER_MARK):
            return json.loads(line[len(_WORKER_MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise RuntimeError(f"worker exited with code {proc.returncode}: " + " | ".join(tail))


# ------------------------------------------------------------------------------------------ reporting
def path_name(p: dict[str, Any]) -> str:
    parts = [p["attn_backend"] or "-", p["dtype"], "compile" if p["compile"] else "eager"]
    if p["channels_last"]:
        parts.append("channels_last")
    return "/".join(parts)


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "n/a" if v is None else format(v, spec)


def _speed_words(speedup: float | None) -> str:
    """``1.73x faster`` / ``1.72x slower`` (0.58 is slower: the reciprocal is printed) / ``same speed``."""
    if speedup is None:
        return "speed n/a"
    if round(speedup, 2) == 1.0:
        return "same speed (1.00x)"
    return f"{speedup:.2f}x faster" if speedup > 1 else f"{1 / speedup:.2f}x slower"


def _giga(v: int | None) -> float | None:
    return None if v is None else v / 1e9


def format_table(report: dict[str, Any]) -> str:
    """Markdown table of every path, with speed-up of each mode relative to the first path."""
    lines = [
        f"{report['arch']}: {report['params'] / 1e6:.3f} M params, "
        f"{_fmt(_giga(report['flops']['per_image']), '.2f')} GFLOPs per {report['input_size'][0]}x{report['input_size'][1]} "
        f"image (x{report['batch']} batch: {_fmt(_giga(report['flops']['batch']), '.2f')} G); device {report['device_name']}; "
        f"torch {report['torch']}; {report['threads']} threads; load average {_fmt(report['load_average_1min'])}; "
        f"{report['date']}",
        "",
        "| path | fwd ms | fwd peak MB | fwd+bwd ms | fwd+bwd peak MB | fwd speed-up | fwd+bwd speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    base = report["paths"][0]
    for p in report["paths"]:
        if p.get("error"):
            lines.append(f"| {path_name(p)} | error: {p['error'][:80]} | | | | | |")
            continue
        cells = [path_name(p)]
        speedups = []
        for mode in MODES:
            r = p.get(mode)
            b = base.get(mode)
            cells += [_fmt(r and r["time_ms_median"]), _fmt(r and r["peak_mem_mb"])]
            ok = r and b and not base.get("error") and r["time_ms_median"] and b["time_ms_median"]
            speedups.append(_fmt(b["time_ms_median"] / r["time_ms_median"] if ok else None, ".2f"))
        lines.append("| " + " | ".join(cells + speedups) + " |")
    for c in report["comparisons"]:
        lines.append(
            f"\nsdpa vs reference ({c['dtype']}, {'compile' if c['compile'] else 'eager'}"
            f"{', channels_last' if c['channels_last'] else ''}): "
            + ", ".join(f"{m}: {_speed_words(c[m]['speedup'])}, peak memory x{_fmt(c[m]['mem_ratio'], '.2f')}"
                        for m in MODES if m in c)
        )
    return "\n".join(lines)


def compare_backends(paths: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each (dtype, compile, channels_last) with both backends: time ratio ref/sdpa and memory ratio sdpa/ref."""
    out = []
    key = lambda p: (p["dtype"], p["compile"], p["channels_last"])  # noqa: E731
    by = {(key(p), p["attn_backend"]): p for p in paths if not p.get("error")}
    for k in dict.fromkeys(key(p) for p in paths):
        ref, sdpa = by.get((k, "reference")), by.get((k, "sdpa"))
        if not ref or not sdpa:
            continue
        c: dict[str, Any] = {"dtype": k[0], "compile": k[1], "channels_last": k[2]}
        for m in MODES:
            if m in ref and m in sdpa:
                rm, sm = ref[m]["peak_mem_mb"], sdpa[m]["peak_mem_mb"]
                rt, st = ref[m]["time_ms_median"], sdpa[m]["time_ms_median"]
                c[m] = {
                    "speedup": rt / st if rt and st else None,  # None: memory-only run (--repeats 0)
                    "mem_ratio": sm / rm if rm and sm is not None else None,
                }
        out.append(c)
    return out


# ------------------------------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-opt", "--opt", help="option file; its network_g is benchmarked")
    ap.add_argument("--arch", help="registry name (SwinIR) or import path (package.module:Class)")
    ap.add_argument("--kwargs", default="{}", help="JSON constructor kwargs, merged over the option file's network_g")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, nargs="+", default=[64], help="input H [W] (LR size for SR)")
    ap.add_argument("--in-chans", type=int, help="input channels (default: the first conv's)")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    ap.add_argument("--backends", default="auto",
                    help="comma list of attention backends; auto = reference,sdpa when the net takes attn_backend")
    ap.add_argument("--dtypes", default="fp32", help="comma list of fp32, bf16, fp16 (autocast)")
    ap.add_argument("--compile", action="store_true", help="also run torch.compile'd paths (slow to compile on CPU)")
    ap.add_argument("--channels-last", action="store_true", help="also run channels_last paths")
    ap.add_argument("--modes", default="forward,forward_backward", help="comma list of forward, forward_backward")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, help="torch.set_num_threads in each run")
    ap.add_argument("--no-flops", action="store_true",
                    help="skip the FLOP count (FlopCounterMode imports torch._dynamo: seconds of start-up)")
    ap.add_argument("--no-subprocess", action="store_true", help="run every path in this process")
    ap.add_argument("--interleave", action="store_true",
                    help="run all paths in this process, timed round-robin: fairer speed ratios on a busy machine")
    ap.add_argument("--timeout", type=float, help="seconds allowed per path (subprocess mode)")
    ap.add_argument("--json", help="write the full report to this JSON file")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args._worker and not (args.opt or args.arch):
        ap.error("give -opt OPTION_FILE or --arch NAME")
    if len(args.size) not in (1, 2):
        ap.error("--size takes H or H W")
    return args


def network_options(args: argparse.Namespace) -> dict[str, Any]:
    opt: dict[str, Any] = {}
    if args.opt:
        doc = load_yaml(args.opt) or {}
        if "network_g" not in doc:
            raise SystemExit(f"{args.opt}: no 'network_g' section to benchmark")
        opt.update(doc["network_g"])
    if args.arch:
        opt["type"] = args.arch
    try:
        opt.update(json.loads(args.kwargs))
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--kwargs is not valid JSON: {exc}") from exc
    if "type" not in opt:
        raise SystemExit("no network type: the option file's network_g has no 'type' and --arch is missing")
    return opt


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args._worker:
        print(_WORKER_MARK + json.dumps(run_path(json.loads(args._worker))), flush=True)
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    net_opt = network_options(args)
    cls = resolve_arch(net_opt["type"])
    if args.backends == "auto":
        backends: list[str | None] = ["reference", "sdpa"] if supports_attn_backend(cls) else [None]
    else:
        backends = [b for b in args.backends.split(",") if b]
        if not supports_attn_backend(cls):
            print(f"{net_opt['type']} takes no attn_backend: the backend axis is skipped", file=sys.stderr)
            backends = [None]
    dtypes = [d for d in args.dtypes.split(",") if d]
    for d in dtypes:
        if d not in DTYPES:
            raise SystemExit(f"unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            raise SystemExit(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
    size = args.size * 2 if len(args.size) == 1 else args.size

    torch.manual_seed(0)
    net = build(net_opt, backends[0])
    in_chans = args.in_chans or input_channels(net)
    params = sum(p.numel() for p in net.parameters())
    flops = {"per_image": None, "batch": None}
    if not args.no_flops:
        net = net.to(device).eval()
        per_image = count_flops(net, torch.rand(1, in_chans, *size, device=device))
        flops = {"per_image": per_image, "batch": per_image * args.batch, "macs_per_image": per_image // 2}
    del net

    paths = [
        {"attn_backend": b, "dtype": d, "compile": c, "channels_last": cl}
        for c, cl, d, b in itertools.product(
            [False, True] if args.compile else [False], [False, True] if args.channels_last else [False], dtypes, backends
        )
    ]
    spec = {"network": net_opt, "device": str(device), "batch": args.batch, "size": size, "in_chans": in_chans,
            "modes": modes, "warmup": args.warmup, "repeats": args.repeats, "threads": args.threads}
    if args.interleave:
        print(f"running {len(paths)} paths interleaved ...", file=sys.stderr, flush=True)
        try:
            for p, res in zip(paths, run_paths_interleaved([{**spec, "path": p} for p in paths])):
                p.update(res)
        except Exception as exc:  # report instead of losing the FLOP count and the other fields
            for p in paths:
                p["error"] = f"{type(exc).__name__}: {exc}"
        release_free_memory()  # the timed runs' freed heap must not sit beside a measuring process
        for p in paths if "error" not in paths[0] else []:  # peak memory: a fresh process per path
            print(f"measuring the peak memory of {path_name(p)} ...", file=sys.stderr, flush=True)
            path_spec = {**spec, "path": {k: p[k] for k in ("attn_backend", "dtype", "compile", "channels_last")}}
            try:
                peaks = path_peaks(path_spec, args.timeout, isolated=not args.no_subprocess)
            except Exception as exc:  # keep the times
                p["memory_error"] = f"{type(exc).__name__}: {exc}"
                continue
            for mode, peak in peaks.items():
                p[mode]["peak_mem_mb"] = peak
    for p in paths if not args.interleave else []:
        print(f"running {path_name(p)} ...", file=sys.stderr, flush=True)
        try:
            res = run_path({**spec, "path": p}) if args.no_subprocess else run_path_isolated({**spec, "path": p}, args.timeout)
            p.update(res)
        except Exception as exc:  # one failing path (e.g. compile unsupported) must not lose the others
            p["error"] = f"{type(exc).__name__}: {exc}"
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    report = {
        "arch": net_opt["type"],
        "network": net_opt,
        "params": params,
        "flops": flops,
        "batch": args.batch,
        "input_size": size,
        "in_chans": in_chans,
        "device": str(device),
        "device_name": device_name,
        "threads": args.threads or torch.get_num_threads(),
        # CPU timings on a shared machine depend on the other load: keep it with the numbers.
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "warmup": args.warmup,
        "repeats": args.repeats,
        "memory_method": "cuda max_memory_allocated" if device.type == "cuda" else "RSS high-water mark (VmHWM)",
        "mode": "interleaved" if args.interleave else ("in-process" if args.no_subprocess else "subprocess per path"),
        "paths": paths,
        "comparisons": compare_backends(paths),
    }
    print(format_table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
