#!/usr/bin/env python
"""GPU report: training throughput and peak memory of the paper-sized networks, neighbourhood attention,
HAT-L tiled inference, the data pipeline's rate beside the GPU's, and the Real-HAT-GAN step. Writes
``report.json`` and ``report.md`` to ``--out``.

Sections (``--sections``, all by default):

* **training**: one real training step (:class:`restoration.models.sr_model.SRModel`: forward, L1,
  backward, gradient-norm check, AdamW, EMA 0.999) of SwinIR-light x2, SwinIR-M x2, HAT-S x2, HAT x4
  (batch 16 of 64² LR patches), DSwinIR and TBSN (batch 16 of 128²; TBSN's network input, which
  TBSNModel cuts from 640² crops with pixel-shuffle factor 5), with the networks of the option files
  in ``options/train/``. Paths: the reference attention vs the fast backend (SwinIR/HAT ``sdpa``,
  DSwinIR ``auto`` = natten/flex on CUDA, TBSN ``parity``) x fp32 vs bf16 autocast, eager; the fast
  backend in ``tf32`` (``train.tf32: true``: TF32 matmuls and convolutions; the ``fp32`` rows keep
  torch's defaults, TF32 convolutions and full-fp32 matmuls, and every row records both switches); and
  ``torch.compile`` for SwinIR-light and HAT-S (fast backend, bf16), its compilation timed apart. Then
  the community families at one released configuration each (:data:`COMMUNITY`: Real-ESRGAN x4plus'
  RRDBNet, realesr-general-x4v3, EDSR-M x2, RCAN x2, DAT-light x2, SPAN x4, NAFNet-SIDD width 32 and
  Restormer, from their family descriptors) in fp32 and bf16 (priority 2: after every target row), both
  sides of a family's switch to the official arithmetic where it has one (:data:`COMMUNITY_SWITCH`: SPAN's
  ``train_form`` branch vs fused; NAFNet's and Restormer's channel norms, autograd vs hand-written backward).
  Time: after ``--warmup`` steps (the first one, with cuDNN autotuning or compilation, is reported
  as ``first_step_s``), steps are timed between CUDA events until ``--repeats`` steps or
  ``--step-time-s`` seconds; images/s = batch x steps / time. Peak memory:
  ``torch.cuda.max_memory_allocated`` over the timed steps after ``reset_peak_memory_stats``
  (weights, gradients, optimizer and EMA state included; not the allocator's cache). What the path
  really ran: the SDPA kernels of one more, profiled step (``efficient``, ``flash``, ``cudnn`` or
  ``math``: the unfused path is flagged), the Dynamo graphs compiled during warm-up and during the
  timed steps (one compiled while timing is a recompilation), and the warnings raised (a FlexAttention
  shape refused and served by the reference backend says so there).
* **na**: DSwinIR's neighbourhood attention alone at the issue's shape, kernel 7 on 256² (batch 4,
  3 heads of 16 channels: the first level), with the relative-position bias, forward + backward:
  ``reference`` vs ``flex`` in fp32 and bf16, with the graphs compiled after warm-up (must be 0) and
  whether flex refused the shape.
* **tiled**: HAT-L x2 over a 2048² input in 256² tiles (overlap 32), whole run, fp32, peak memory
  (through ``tiled_inference_memory.py``); and on 512², where the whole image fits, how far the tiled
  output is from the whole-image output (PSNR between the two, and the largest difference), with
  random weights (no checkpoint is assumed on the machine).
* **data**: ``PairedImageDataset`` through the training loader (4/8/16 workers; gt_size 128 with x2
  pairs and 256 with x4 pairs, from 480² HR PNGs as DIV2K sub-images; from LMDB too when ``lmdb`` is
  installed, else the report says it was not measured), with pinned memory on a GPU as training
  builds it, images/s after the first batch; then, for
  every network, whether the loader would starve the GPU at its fastest measured rate.
* **realsr**: one Real-HAT-GAN training step (``options/train/HAT/train_Real_HAT_GAN_SRx4_finetune_from_mse_model.yml``:
  HAT x4 + ``UNetDiscriminatorSN``, L1 + VGG19 perceptual + GAN, EMA, batch 4 of ``crop_pad_size``² GT
  with kernels drawn as the dataset draws them) and, apart, the part of it that is the batched Real-ESRGAN
  degradation on the device (``RealESRGANModel.degrade``: USM, two orders, JPEG, crop, pool): its share
  of the step (the issue's target: under 15%), both timed on the same iterations (the same random
  draws) after an untimed pass over them (cuDNN autotuning). fp32 (the recipe) and bf16. The VGG19 weights are random
  (a temporary file; their values do not change the time) and the pool is 4 batches deep instead of 180
  pairs, so it is full after 4 steps.

Order (:func:`plan`): priority 1 is one measurement per target of the issues, cheapest first, so that
a short budget still yields every target: SwinIR-light and HAT-S reference fp32 / reference bf16 / fast
bf16, TBSN's fast bf16 path (its kernel), one loader setting (8 workers) per crop size, the Real-HAT-GAN
step in fp32, neighbourhood attention reference and flex in fp32, both tiled items. Priority 2 completes
every table; priority 3 is DSwinIR's whole network with ``auto``, whose FlexAttention compiles once per
neighbourhood shape of the U-Net. The markdown groups the rows by network whatever the order they ran in.

Every item runs under its own time cap and the global ``--budget-s``: an item that would start with
too little time left is recorded as ``skipped: budget``, one that runs over its cap is stopped
(``SIGALRM``) and recorded as ``stopped: budget``, even when the code it interrupted caught the
exception; an error (an out-of-memory, a CUDA error met by the device sync that ends every item) is
that item's status and the run goes on. SIGINT (Ctrl-C) records the running item as ``stopped:
interrupted`` and the others as ``skipped: interrupted``, writes the files and exits with 130. The
files are rewritten (atomically) after every item, so a run killed from outside leaves what it
measured. ``--no-limits`` lifts the budget and the caps. ``--smoke`` runs the same code with tiny
networks and shapes, a fixed number of steps, on whatever device there is (the CPU in CI;
``torch.compile`` then uses the ``eager`` backend, and flex, which has no CPU backward, is recorded as
skipped)::

    python3 scripts/benchmark/gpu_report.py --out results/gpu_report            # one GPU, 300 s budget
    python3 scripts/benchmark/gpu_report.py --smoke --out /tmp/gpu_report_smoke  # CPU, about a minute
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import functools
import gc
import importlib.util
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for _path in (ROOT, HERE):  # run from a checkout without installing; import the sibling scripts
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import tiled_inference_memory  # noqa: E402
from versus_official import released_kwargs  # noqa: E402
from benchmark_neighborhood_attention import graphs_compiled  # noqa: E402
from restoration.archs import family_of  # noqa: E402
from restoration.archs.build import build_network  # noqa: E402
from restoration.archs.spec import arch_spec  # noqa: E402
from restoration.inference.padding import crop_to, pad_to_multiple  # noqa: E402
from restoration.layers.channel_norm_functions import CHANNEL_NORM_SWITCH  # noqa: E402
from restoration.inference.tiling import tiled_forward  # noqa: E402
from restoration.models.sr_model import SRModel  # noqa: E402
from restoration.options.yaml_io import load_yaml  # noqa: E402
from restoration.utils.torch_setup import torch_settings  # noqa: E402

OPTIONS = ROOT / "options"
# name -> (option file whose network_g is measured, LR patch side)
NETWORKS: dict[str, tuple[str, int]] = {
    "SwinIR-light x2": ("train/SwinIR/train_SwinIR_light_SRx2_DIV2K.yml", 64),
    "SwinIR-M x2": ("train/SwinIR/train_SwinIR_SRx2_DIV2K.yml", 64),
    "HAT-S x2": ("train/HAT/train_HAT-S_SRx2_from_scratch.yml", 64),
    "HAT x4": ("train/HAT/train_HAT_SRx4_finetune_from_SRx2.yml", 64),
    "DSwinIR": ("train/DSwinIR/train_DSwinIR_allinone_3task.yml", 128),
    "TBSN": ("train/TBSN/train_TBSN_SIDD.yml", 128),
}
#: the community families' training rows: name -> (released configuration of ours, LR patch side)
COMMUNITY: dict[str, tuple[str, int]] = {
    "RRDBNet x4 (Real-ESRGAN x4plus)": ("RealESRGAN_x4plus / RealESRNet_x4plus / ESRGAN_SRx4_DF2KOST_official", 64),
    "SRVGGNetCompact x4 (general-x4v3)": ("realesr-general-x4v3 / realesr-general-wdn-x4v3", 64),
    "EDSR-M x2": ("EDSR_Mx2_f64b16_DIV2K_official (EDSR-M x2)", 64),
    "RCAN x2": ("RCAN x2", 64),
    "DAT-light x2": ("DAT_light_x2", 64),
    "SPAN x4": ("SPAN x4 ch48 (spanx4_ch48.pth)", 64),
    "NAFNet-SIDD width 32": ("NAFNet-SIDD-width32", 128),
    "Restormer": ("Restormer deraining / motion_deblurring / single_image_defocus_deblurring", 128),
}
HAT_L = "test/HAT/test_HAT-L_SRx2.yml"
REAL_HAT_GAN = "train/HAT/train_Real_HAT_GAN_SRx4_finetune_from_mse_model.yml"
# architecture -> (constructor argument, reference value, fast value)
BACKEND_ARG: dict[str, tuple[str, str, str]] = {
    "SwinIR": ("attn_backend", "reference", "sdpa"),
    "HAT": ("attn_backend", "reference", "sdpa"),
    "DSwinIR": ("attn_backend", "reference", "auto"),
    "TBSN": ("attn_backend", "reference", "parity"),
}
#: community architectures with a switch to the official arithmetic -> (constructor argument, or CHANNEL_NORM for
#: the process-wide channel-norm backend; reference value, fast value)
CHANNEL_NORM = "channel norm"
COMMUNITY_SWITCH: dict[str, tuple[str, str, str]] = {
    "SPAN": ("train_form", "branch", "fused"),
    "NAFNet": (CHANNEL_NORM, "reference", "function"),
    "Restormer": (CHANNEL_NORM, "reference", "function"),
}
COMPILED = ("SwinIR-light x2", "HAT-S x2")
# --smoke: tiny networks of the same architectures (merged over the option file's network_g)
SMOKE_NETWORKS: dict[str, dict[str, Any]] = {
    "SwinIR": {"depths": [1], "num_heads": [2], "embed_dim": 8},
    "HAT": {"depths": [1], "num_heads": [2], "embed_dim": 8, "window_size": 8, "compress_ratio": 2,
            "squeeze_factor": 4},
    "DSwinIR": {"dim": 6, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [3, 3, 3, 3],
                "kernel_size": [3, 3, 1, 1], "ffn_expansion_factor": 1},
    "TBSN": {"dim": 4, "num_blocks": [1, 1, 1], "num_refinement_blocks": 0, "channel_heads": [1, 1, 1],
             "spatial_heads": [1, 1, 1], "spatial_dim_head": 2},
}


# ------------------------------------------------------------------------------------- budget and items
class ItemTimeout(BaseException):
    """Raised (from SIGALRM) inside an item that ran past its time cap.

    A ``BaseException``: the code it interrupts (Dynamo compiling, the flex fallback) catches ``Exception``
    and would otherwise swallow it and finish the item on another path, reported as "ok" with that timing.
    """


class ItemSkipped(Exception):
    """Raised by an item that cannot be measured here (the message says why)."""


class TimeLimit:
    """Context manager: raise :class:`ItemTimeout` in this (main) thread after ``seconds`` (``None``: no
    limit). ``fired`` stays True once the alarm went off, even if the code it interrupted swallowed it."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds, self.fired = seconds, False

    def _on_alarm(self, signum: int, frame: Any) -> None:
        self.fired = True
        raise ItemTimeout

    def __enter__(self) -> "TimeLimit":
        if self.seconds is not None:
            self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, max(self.seconds, 0.01))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.seconds is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)


def _first_line(exc: BaseException, width: int = 200) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:width]


class Report:
    """The results so far; runs items under the budget and rewrites the output files after each."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        self.args, self.device = args, device
        self.start = time.monotonic()
        self.data: dict[str, Any] = {"env": environment(device), "settings": vars(args) | {"device": str(device)},
                                     "training": [], "na": [], "tiled": [], "data": [], "realsr": [], "starvation": []}
        args.out.mkdir(parents=True, exist_ok=True)
        self.interrupted = False

    def on_sigint(self, signum: int, frame: Any) -> None:
        """SIGINT handler: remembered, so that code that catches the interrupt cannot carry the run on."""
        self.interrupted = True
        raise KeyboardInterrupt

    def left(self) -> float:
        return self.args.budget_s - (time.monotonic() - self.start)

    def run(self, section: str, row: dict[str, Any], cap_s: float, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``fn`` for one table row under ``min(cap_s, budget left)``; record status and result.

        Whatever happens inside (a time cap, an error, OOM, a sticky CUDA error met by the device sync
        after the item) is this row's status, and the report goes on; an interrupt (SIGINT) is recorded
        as ``stopped: interrupted``, the files are written, and it propagates.
        """
        label = " / ".join(str(v) for v in row.values())
        left = self.left()
        try:
            if not self.args.no_limits and left < self.args.min_item_s:
                row["status"] = "skipped: budget"
                print(f"[{section}] {label}: skipped (budget: {left:.0f} s left)", flush=True)
            else:
                self._measure(row, None if self.args.no_limits else min(cap_s, left), fn)
                print(f"[{section}] {label}: {row['status']} ({row['item_s']} s) {summary(row)}", flush=True)
        except KeyboardInterrupt:
            if row.get("status") != "ok":  # an interrupt while freeing a measured item keeps the measurement
                row["status"] = "stopped: interrupted"
            print(f"[{section}] {label}: {row['status']} (interrupted)", flush=True)
            raise
        finally:
            self.data[section].append(row)
            self.save()
        return row

    def _measure(self, row: dict[str, Any], limit: float | None, fn: Callable[[], dict[str, Any]]) -> None:
        stopped = f"stopped: budget (cap {limit or 0:.0f} s)"
        t0 = time.perf_counter()
        alarm = TimeLimit(limit)
        try:
            with alarm:
                result = fn()
                # the item's queued kernels finish inside its time: their errors and time are its own
                _sync(self.device)
            if self.interrupted:  # caught inside the item: its result is not a whole measurement
                raise KeyboardInterrupt
            if alarm.fired:  # swallowed by the code it interrupted: the result is another path's
                raise ItemTimeout
            row.update(result)
            row["status"] = "ok"
        except ItemTimeout:
            row["status"] = stopped
        except ItemSkipped as exc:
            row["status"] = f"skipped: {exc}"
        except torch.OutOfMemoryError as exc:
            row["status"] = "OOM: " + _first_line(exc, 160)
        except Exception as exc:  # one failing item must not lose the others
            if self.interrupted:  # the interrupt, turned into another error by the code it met
                raise KeyboardInterrupt from exc
            # e.g. torch.compile wraps what its backend raised when the alarm went off
            row["status"] = stopped if alarm.fired or _caused_by_timeout(exc) else (
                f"error: {type(exc).__name__}: " + _first_line(exc))
        try:
            release(self.device)
        except Exception as exc:  # a sticky CUDA error: this item failed; the next ones say for themselves
            failed = f"error: {type(exc).__name__} in the device sync after the item: " + _first_line(exc)
            row["status"] = failed if row["status"] == "ok" else f"{row['status']}; {failed}"
        row["item_s"] = round(time.perf_counter() - t0, 2)

    def save(self) -> None:
        """Write both files, each atomically (a reader or a kill never meets half a file)."""
        self.data["elapsed_s"] = round(time.monotonic() - self.start, 1)
        for name, text in (("report.json", json.dumps(self.data, indent=2, default=str)),
                           ("report.md", markdown(self.data))):
            tmp = self.args.out / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.args.out / name)


def _caused_by_timeout(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, ItemTimeout) or "ItemTimeout" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def release(device: torch.device) -> None:
    """Free the item's memory; on a GPU, wait for its kernels (a sticky CUDA error is raised here)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def summary(row: dict[str, Any]) -> str:
    keys = ("images_per_s", "ms_per_step", "peak_gib", "first_step_s", "peak_mb", "psnr_tiled_vs_whole_db",
            "degrade_share", "sdpa_kernels", "graphs_timed", "served_by_reference", "warnings")
    return " ".join(f"{k}={row[k]}" for k in keys if row.get(k) not in (None, []))


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "device": str(device), "cpu_count": os.cpu_count(),
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "natten": importlib.util.find_spec("natten") is not None, "lmdb": importlib.util.find_spec("lmdb") is not None,
        # torch's defaults, which the fp32 and bf16 rows keep (each row records its own)
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=props.name, capability=f"{props.major}.{props.minor}",
                   memory_gib=round(props.total_memory / 2**30, 1), cudnn_benchmark=torch.backends.cudnn.benchmark)
    else:
        env["device_name"] = platform.processor() or platform.machine()
    return env


# ------------------------------------------------------------------------------------------- 1. training
def network_options(name: str, smoke: bool) -> tuple[dict[str, Any], int]:
    """``(network_g, scale)`` of one named network (tiny with ``smoke``)."""
    if name in COMMUNITY:
        return community_network(name, smoke)
    opt = load_yaml(OPTIONS / NETWORKS[name][0])
    net = dict(opt["network_g"])
    if smoke:
        net.update(SMOKE_NETWORKS[net["type"]])
    return net, int(opt.get("scale", net.get("upscale", 1)))


def community_network(name: str, smoke: bool) -> tuple[dict[str, Any], int]:
    """``(network_g, scale)`` of a :data:`COMMUNITY` row: its released configuration (drop-path off, as in
    versus_official.py), or with ``smoke`` the family's tiny test configuration (its descriptor's ``tiny``)."""
    arch, kwargs = released_kwargs(COMMUNITY[name][0])
    if smoke:
        kwargs = dict(family_of(arch).tiny[arch].kwargs)
    scale = int(kwargs.get("upscale", kwargs.get("scale", 1)))
    return {"type": arch, **kwargs}, scale


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_up(step: Callable[[], None], device: torch.device, warmup: int) -> float:
    """Run ``warmup`` steps (at least one), synchronised; seconds of the first (cuDNN autotuning, compiling)."""
    t0 = time.perf_counter()
    step()
    _sync(device)
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        step()
    _sync(device)
    return first


def tf32_flags() -> dict[str, bool]:
    """Whether fp32 matrix products and convolutions may run on TF32 tensor cores right now."""
    return {"tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_conv": torch.backends.cudnn.allow_tf32}


def precision_settings(precision: str) -> contextlib.AbstractContextManager:
    """The process settings of a training row, as ``train.py`` applies them: ``tf32`` is ``train.tf32:
    true`` (TF32 matmuls and convolutions); ``fp32`` and ``bf16`` leave torch's defaults (TF32
    convolutions, full-fp32 matmuls), which the row records."""
    return torch_settings(tf32=True if precision == "tf32" else None)


def train_throughput(net: dict[str, Any], scale: int, device: torch.device, batch: int, size: int,
                     precision: str, compiled: bool, args: argparse.Namespace) -> dict[str, Any]:
    """Time ``SRModel.optimize_parameters`` on one fixed random batch (see the module docstring)."""
    with precision_settings(precision):
        return {**_train_throughput(net, scale, device, batch, size, precision, compiled, args), **tf32_flags()}


def _train_throughput(net: dict[str, Any], scale: int, device: torch.device, batch: int, size: int,
                      precision: str, compiled: bool, args: argparse.Namespace) -> dict[str, Any]:
    opt = {"name": "gpu_report", "scale": scale, "network_g": net,
           "train": {"optim_g": {"type": "AdamW", "lr": 2e-4, "betas": [0.9, 0.99]}, "total_iter": 10**6,
                     "ema_decay": 0.999, "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0},
                     "mixed_precision": "bf16" if precision == "bf16" else False,
                     "compile": compiled and args.compile_backend == "inductor"}}
    torch.manual_seed(0)
    model = SRModel(opt, device)
    if compiled and args.compile_backend != "inductor":
        model.net_train = torch.compile(model.net_train, backend=args.compile_backend)
    in_ch = int(net.get("in_chans", net.get("in_channels", net.get("in_ch", 3))))
    data = model.feed_data({"lq": torch.rand(batch, in_ch, size, size), "gt": torch.rand(batch, in_ch, size * scale, size * scale)})
    it = 0

    def step() -> None:
        nonlocal it
        it += 1
        model.optimize_parameters(data, it)

    with Watch() as seen:
        first = warm_up(step, device, args.warmup)
        seen.mark_warm()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
        t0, steps = time.perf_counter(), 0
        while steps < args.repeats and (steps < 2 or time.perf_counter() - t0 < args.step_time_s):
            step()
            steps += 1
        if device.type == "cuda":
            end.record()
            end.synchronize()
            seconds = begin.elapsed_time(end) / 1e3
            peak = torch.cuda.max_memory_allocated(device) / 2**30
        else:
            seconds, peak = time.perf_counter() - t0, None
        seen.mark_timed()
        ops = attention_ops(step) if args.profile_attention else None
    return {"first_step_s": round(first, 3), "steps": steps, "ms_per_step": round(1e3 * seconds / steps, 2),
            "images_per_s": round(batch * steps / seconds, 1), "peak_gib": None if peak is None else round(peak, 3),
            "skipped_steps": model.skipped_steps, **seen.result(), **({} if ops is None else ops)}


# ---------------------------------------------------------------------------------- what a path really ran
class Watch:
    """Context manager: the warnings raised inside it (first line, deduplicated) and the Dynamo graphs
    compiled during warm-up and during the timed steps (a graph compiled while timing is a recompile:
    the path was not warm). ``mark_warm()`` after warm-up, ``mark_timed()`` after the timed steps."""

    def __enter__(self) -> "Watch":
        self._catcher = warnings.catch_warnings(record=True)
        self.caught = self._catcher.__enter__()
        warnings.simplefilter("always")
        self.g0 = self.g1 = self.g2 = graphs_compiled()
        return self

    def mark_warm(self) -> None:
        self.g1 = self.g2 = graphs_compiled()

    def mark_timed(self) -> None:
        self.g2 = graphs_compiled()

    def __exit__(self, *exc: Any) -> None:
        self._catcher.__exit__(*exc)

    def result(self) -> dict[str, Any]:
        messages = sorted({(str(w.message).strip().splitlines() or [""])[0][:200] for w in self.caught})
        return {"graphs_warmup": self.g1 - self.g0, "graphs_timed": self.g2 - self.g1, "warnings": messages[:4]}


#: Profiler names of the attention kernels SDPA can dispatch to, and what they mean for the row.
SDPA_KERNELS = {"_scaled_dot_product_efficient_attention": "efficient", "_scaled_dot_product_flash_attention": "flash",
                "_scaled_dot_product_cudnn_attention": "cudnn", "_scaled_dot_product_attention_math": "math",
                "_scaled_dot_product_flash_attention_for_cpu": "flash (CPU)"}


def attention_ops(step: Callable[[], None]) -> dict[str, Any]:
    """One more step under the profiler (operators only): which SDPA kernels ran, and whether any took
    the unfused math path (the issue: every shipped configuration on a fused kernel)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    names = {e.key for e in prof.key_averages()}
    kernels = sorted({label for key, label in SDPA_KERNELS.items() if f"aten::{key}" in names})
    return {"sdpa_kernels": kernels, "math_attention": "math" in kernels}


# ------------------------------------------------------------------------------ 2. neighbourhood attention
def na_throughput(args: argparse.Namespace, device: torch.device, backend: str, precision: str) -> dict[str, Any]:
    """DSwinIR's first level at the issue's shape: ``neighborhood_attention_2d`` forward+backward on
    ``(B, heads, S, S, C)`` q/k/v with a relative-position bias (fp32, as the network's parameter), for
    ``--na-kernel`` at ``--na-size``²; Dynamo graphs compiled after warm-up must be 0."""
    from restoration.layers.neighborhood_attention import neighborhood_attention_2d
    from restoration.layers.neighborhood_attention_flex import refused_shapes

    b, heads, c = args.na_shape
    size, kernel = args.na_size, args.na_kernel
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(b, heads, size, size, c, generator=g).to(device, dtype).requires_grad_() for _ in range(3))
    rpb = (0.1 * torch.randn(heads, 2 * kernel - 1, 2 * kernel - 1, generator=g)).to(device).requires_grad_()

    def step(it: int = 0) -> None:
        for t in (q, k, v, rpb):
            t.grad = None
        out = neighborhood_attention_2d(q, k, v, kernel, 1, rpb, backend=backend)
        out.float().square().mean().backward()

    with Watch() as seen:
        first = warm_up(step, device, args.warmup)
        seen.mark_warm()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        steps = max(2, args.repeats // 2)
        seconds = _timed(step, device, range(steps))
        seen.mark_timed()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"first_step_s": round(first, 3), "steps": steps, "ms_per_step": round(1e3 * seconds, 2),
            "peak_gib": None if peak is None else round(peak, 3), **tf32_flags(),
            # flex refusing this shape (warned once per process) serves it with the reference backend
            "served_by_reference": any(r[0] == tuple(q.shape) and r[1] == kernel for r in refused_shapes()),
            **seen.result()}


# ------------------------------------------------------------------------------------ 3. real-world SR
def _timed(fn: Callable[[int], Any], device: torch.device, iterations: range) -> float:
    """Seconds per call of ``fn(it)`` for ``it`` in ``iterations`` (CUDA events on a GPU)."""
    _sync(device)
    if device.type == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
    t0 = time.perf_counter()
    for it in iterations:
        fn(it)
    if device.type == "cuda":
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / 1e3 / len(iterations)
    return (time.perf_counter() - t0) / len(iterations)


def paired_times(step: Callable[[int], Any], degrade: Callable[[int], Any], iterations: range,
                 device: torch.device) -> tuple[float, float]:
    """Seconds per ``step(it)`` and per ``degrade(it)``, both over the same ``iterations``.

    The degradation draws its random shapes (resize, second blur, crop) from the iteration, so timing
    both on the same iterations compares the same work; one untimed pass of ``step`` over them first lets
    cuDNN autotune every new shape (``cudnn.benchmark``) outside the timed calls.
    """
    for it in iterations:
        step(it)
    return _timed(step, device, iterations), _timed(degrade, device, iterations)


def realsr_step(args: argparse.Namespace, device: torch.device, precision: str) -> dict[str, Any]:
    """A Real-HAT-GAN step and the degradation inside it (see the module docstring)."""
    from restoration.data.degradations.kernels import draw_batch_kernels
    from restoration.losses.perceptual_loss import _make_features
    from restoration.models import register_models
    from restoration.registry import MODEL_REGISTRY

    register_models()
    opt = load_yaml(OPTIONS / REAL_HAT_GAN)
    net_g, net_d, train = dict(opt["network_g"]), dict(opt["network_d"]), dict(opt["train"])
    dopt = opt["datasets"]["train"]
    batch, pad_size = int(dopt["batch_size_per_gpu"]), int(dopt.get("crop_pad_size", 400))
    if args.smoke:
        net_g.update(SMOKE_NETWORKS["HAT"])
        net_d["num_feat"] = 4
        batch, pad_size, train["gt_size"] = 2, 48, 32
    with tempfile.TemporaryDirectory(prefix="gpu_report_vgg_") as tmp:
        vgg = Path(tmp) / "vgg19_random.pth"  # timing only: the values do not change the work
        torch.save({f"features.{k}": v for k, v in _make_features("vgg19", 36).state_dict().items()}, vgg)
        train.update(perceptual_opt={**train["perceptual_opt"], "vgg_weights_path": str(vgg)},
                     queue_size=4 * batch, mixed_precision="bf16" if precision == "bf16" else False)
        torch.manual_seed(0)
        model = MODEL_REGISTRY.get("RealESRGANModel")(
            {"name": "gpu_report_realsr", "scale": 4, "manual_seed": 0, "network_g": net_g,
             "network_d": net_d, "train": train}, device)
    data = {"gt": torch.rand(batch, 3, pad_size, pad_size)}
    kernels = draw_batch_kernels(np.random.default_rng(0), dopt, batch)
    data.update({key: torch.from_numpy(k) for key, k in kernels.items()})

    def step(it: int) -> None:
        model.optimize_parameters(model.feed_data(data), it)

    def degrade(it: int) -> None:
        model.degrade(model.feed_data(data), it)

    t0 = time.perf_counter()
    step(1)
    _sync(device)
    first = time.perf_counter() - t0
    for it in range(2, args.warmup + 5):  # the pool is full after 4 steps: time the steady state
        step(it)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    steps = 2 if args.smoke else 10
    step_s, degrade_s = paired_times(step, degrade, range(100, 100 + steps), device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"first_step_s": round(first, 3), "steps": steps, "ms_per_step": round(1e3 * step_s, 1),
            "degrade_ms": round(1e3 * degrade_s, 1), "degrade_share": round(degrade_s / step_s, 3),
            "images_per_s": round(batch / step_s, 2), "peak_gib": None if peak is None else round(peak, 3),
            "batch": batch, "gt": f"{pad_size}² -> {train['gt_size']}²", **tf32_flags()}


# --------------------------------------------------------------------------------------------- 4. tiled
def tiled_memory(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """HAT-L whole run over ``--tiled-size``² in tiles: peak memory (tiled_inference_memory.py)."""
    argv = ["-opt", str(OPTIONS / HAT_L), "--size", str(args.tiled_size), "--tile", str(args.tile),
            "--overlap", str(args.overlap), "--device", str(device), "--full"]
    if args.smoke:
        argv += ["--kwargs", json.dumps(SMOKE_NETWORKS["HAT"])]
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        result = tiled_inference_memory.main(argv)
    return {"peak_mb": None if result.get("peak_mb") is None else round(result["peak_mb"], 1),
            "weights_mb": round(result["weights_mb"], 1), "run_s": round(result["seconds"], 2)}


def smooth_image(size: int, seed: int = 0) -> np.ndarray:
    """A natural-looking RGB test image in [0, 1]: smooth waves plus a little noise, ``(size, size, 3)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([np.sin(rng.uniform(2, 9) * 6.28 * yy + rng.uniform(0, 6.28))
                    * np.cos(rng.uniform(2, 9) * 6.28 * xx) for _ in range(3)], -1)
    return np.clip(img * 0.4 + 0.5 + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)


def tiled_vs_whole(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """HAT-L on ``--whole-size``²: whole image vs tiles; PSNR between the two outputs in [0, 1]."""
    net_opt = dict(load_yaml(OPTIONS / HAT_L)["network_g"])
    if args.smoke:
        net_opt.update(SMOKE_NETWORKS["HAT"])
    torch.manual_seed(0)
    net = build_network(net_opt).to(device).eval()
    spec = arch_spec(net)
    scale, multiple = spec.scale, spec.size_multiple
    x = torch.from_numpy(smooth_image(args.whole_size)).permute(2, 0, 1)[None].to(device)
    with torch.no_grad():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        padded, _ = pad_to_multiple(x, multiple)
        whole = crop_to(net(padded), (x.shape[-2] * scale, x.shape[-1] * scale)).float().clamp(0, 1)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        tiled = tiled_forward(net, x, scale, args.tile, args.overlap, multiple=multiple).float().clamp(0, 1)
    mse = float((whole - tiled).square().mean())
    return {"psnr_tiled_vs_whole_db": round(10 * math.log10(1 / mse), 2) if mse > 0 else math.inf,
            "max_abs_diff": round(float((whole - tiled).abs().max()), 5),
            "whole_peak_mb": None if peak is None else round(peak, 1)}


# ----------------------------------------------------------------------------------------------- 5. data
def make_div2k_like(root: Path, n: int, size: int, smoke: bool) -> dict[str, dict[int, tuple[str, str]]]:
    """``n`` HR PNGs (``size``², like DIV2K's 480² sub-images) with bicubic x2 and x4 LR PNGs; packed
    into LMDBs too when ``lmdb`` is installed. Returns ``{io_type: {scale: (gt_root, lq_root)}}``."""
    import cv2

    from restoration.utils.image_io import imwrite

    for i in range(n):
        hr = (smooth_image(size, seed=i) * 255).round().astype(np.uint8)
        imwrite(root / "HR" / f"{i:04d}.png", hr)
        for scale in (2, 4):
            lr = cv2.resize(hr, (size // scale, size // scale), interpolation=cv2.INTER_CUBIC)
            imwrite(root / f"LR_x{scale}" / f"{i:04d}.png", lr)
    sources = {"disk": {s: (str(root / "HR"), str(root / f"LR_x{s}")) for s in (2, 4)}}
    if importlib.util.find_spec("lmdb") is not None:
        from restoration.data.lmdb_writer import make_lmdb_from_folder

        for folder in ("HR", "LR_x2", "LR_x4"):
            make_lmdb_from_folder(root / folder, root / f"{folder}.lmdb", n_thread=1)
        sources["lmdb"] = {s: (str(root / "HR.lmdb"), str(root / f"LR_x{s}.lmdb")) for s in (2, 4)}
    return sources


def loader_rate(gt_root: str, lq_root: str, io_type: str, scale: int, gt_size: int, workers: int,
                args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Images/s of the training loader as training builds it for ``device`` (pinned memory on a GPU),
    after its first batch (worker start-up excluded)."""
    from restoration.data.loader import build_dataset, build_train_loader

    opt = {"type": "PairedImageDataset", "name": "rate", "phase": "train", "scale": scale,
           "dataroot_gt": gt_root, "dataroot_lq": lq_root, "io_backend": {"type": io_type},
           "gt_size": gt_size, "use_hflip": True, "use_rot": True, "batch_size_per_gpu": args.batch,
           "num_worker_per_gpu": workers, "dataset_enlarge_ratio": 1000}
    use_cuda = device.type == "cuda"
    loader, sampler = build_train_loader(build_dataset(opt), opt, seed=0, rank=0, world_size=1, use_cuda=use_cuda)
    sampler.set_epoch(0, 0)
    it = iter(loader)
    next(it)
    t0, images = time.perf_counter(), 0
    while images < args.batch * 4 or time.perf_counter() - t0 < args.data_time_s:
        images += len(next(it)["lq"])
    seconds = time.perf_counter() - t0
    del it
    return {"images_per_s": round(images / seconds, 1), "pin_memory": use_cuda}


def starvation(report: Report) -> None:
    """For each network: its fastest measured training rate vs the loader's best rate at its crop."""
    data_rows = [r for r in report.data["data"] if r.get("status") == "ok"]
    for name in NETWORKS:
        runs = [r for r in report.data["training"] if r["network"] == name and r.get("status") == "ok"]
        if not runs or not data_rows:
            continue
        best = max(runs, key=lambda r: r["images_per_s"])
        # the loader rows hold x2 and x4 pairs; the denoisers' crops are compared with the x2 rows
        # (their datasets read comparable PNG files, with no LQ file to read)
        scale = 4 if name.endswith("x4") else 2
        candidates = [r for r in data_rows if r["scale"] == scale]
        if not candidates:
            continue
        loader = max(candidates, key=lambda r: r["images_per_s"])
        report.data["starvation"].append({
            "network": name, "gpu_images_per_s": best["images_per_s"],
            "gpu_path": f"{best['backend']}/{best['precision']}/{best['mode']}",
            "loader_images_per_s": loader["images_per_s"],
            "loader_setting": f"{loader['io']}, {loader['workers']} workers, gt {loader['gt_size']}",
            "gpu_would_starve": loader["images_per_s"] < best["images_per_s"],
        })


# --------------------------------------------------------------------------------------------- markdown
def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def _yes(v: Any) -> str:
    return "yes" if v else "no"


def _notes(r: dict[str, Any]) -> str:
    """Graphs compiled while timing (a recompile), SDPA's math path, a flex refusal, warnings."""
    notes = []
    if r.get("graphs_timed"):
        notes.append(f"**{r['graphs_timed']} graphs compiled while timing**")
    if r.get("math_attention"):
        notes.append("**SDPA math path**")
    if r.get("served_by_reference"):
        notes.append("**flex refused: ran the reference**")
    notes += [w.replace("|", "/") for w in r.get("warnings") or []]
    return "; ".join(notes)


def markdown(data: dict[str, Any]) -> str:
    env = data["env"]
    order = {name: i for i, name in enumerate(NETWORKS)}
    lines = [f"# GPU report: {env.get('device_name')} ({env['device']}), torch {env['torch']}, CUDA {env['cuda']}",
             "", f"{env['date']}; cuDNN {env.get('cudnn')}, TF32 matmul {env.get('tf32_matmul')}, conv {env.get('tf32_cudnn')}, "
             f"cudnn.benchmark {env.get('cudnn_benchmark')}; natten {env['natten']}, lmdb {env['lmdb']}; "
             f"smoke {data['settings']['smoke']}; {data.get('elapsed_s')} s of a {data['settings']['budget_s']} s budget",
             "", "## Training step (SRModel: forward, L1, backward, AdamW, EMA)", "",
             "| network | backend | precision | TF32 matmul / conv | mode | batch x size² | images/s | ms/step | peak GiB | "
             "first step s | SDPA kernels | graphs warm-up / timed | status | notes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    def position(r: dict[str, Any]) -> tuple:  # network, eager before compiled, fp32 before bf16, reference first
        fast = BACKEND_ARG.get(r["network"].split()[0].split("-")[0], ("", "reference", ""))[1] != r["backend"]
        precision = {"fp32": 0, "tf32": 1, "bf16": 2}.get(r["precision"], 3)
        return order.get(r["network"], len(order)), r["mode"] == "compile", precision, fast

    for r in sorted(data["training"], key=position):
        kernels = ", ".join(r["sdpa_kernels"]) if r.get("sdpa_kernels") else ("none" if "sdpa_kernels" in r else "")
        graphs = f"{r['graphs_warmup']} / {r['graphs_timed']}" if "graphs_timed" in r else ""
        tf32 = f"{_yes(r['tf32_matmul'])} / {_yes(r['tf32_conv'])}" if "tf32_matmul" in r else ""
        lines.append(f"| {r['network']} | {r['backend']} | {r['precision']} | {tf32} | {r['mode']} | "
                     f"{r['batch']} x {r['size']}² | "
                     f"{_cell(r.get('images_per_s'))} | {_cell(r.get('ms_per_step'))} | {_cell(r.get('peak_gib'))} | "
                     f"{_cell(r.get('first_step_s'))} | {kernels} | {graphs} | {r['status']} | {_notes(r)} |")
    lines += ["", "## Neighbourhood attention (DSwinIR's first level: forward + backward, with a bias)", "",
              "| backend | precision | kernel | (B, heads, C) at size² | ms/step | peak GiB | first step s | "
              "graphs warm-up / timed | status | notes |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in data.get("na", []):
        graphs = f"{r['graphs_warmup']} / {r['graphs_timed']}" if "graphs_timed" in r else ""
        lines.append(f"| {r['backend']} | {r['precision']} | {r['kernel']} | ({r['shape'].replace('x', ', ')}) at "
                     f"{r['size']}² | {_cell(r.get('ms_per_step'))} | {_cell(r.get('peak_gib'))} | "
                     f"{_cell(r.get('first_step_s'))} | {graphs} | {r['status']} | {_notes(r)} |")
    lines += ["", "## HAT-L x2 tiled inference (fp32, random weights)", "",
              "| measurement | input | tile / overlap | result | status |", "|---|---|---|---|---|"]
    for r in data["tiled"]:
        if r["measurement"] == "peak memory":
            result = f"peak {_cell(r.get('peak_mb'))} MB (weights {_cell(r.get('weights_mb'))} MB), {_cell(r.get('run_s'))} s"
        else:
            result = (f"PSNR tiled vs whole {_cell(r.get('psnr_tiled_vs_whole_db'))} dB, max |diff| "
                      f"{_cell(r.get('max_abs_diff'))}")
            if r.get("whole_peak_mb") is not None:
                result += f", whole-image peak {r['whole_peak_mb']} MB"
        lines.append(f"| {r['measurement']} | {r['input']}² | {r['tile']} / {r['overlap']} | {result} | {r['status']} |")
    lines += ["", "## Data pipeline (PairedImageDataset, training loader, batch of "
              f"{data['settings']['batch']})", "", "| source | scale | gt_size | workers | pinned | images/s | status |",
              "|---|---|---|---|---|---|---|"]
    for r in data["data"]:
        pinned = _yes(r["pin_memory"]) if "pin_memory" in r else ""
        lines.append(f"| {r['io']} | x{r['scale']} | {r['gt_size']} | {r['workers']} | {pinned} | "
                     f"{_cell(r.get('images_per_s'))} | {r['status']} |")
    if data.get("data_note"):
        lines += ["", data["data_note"]]
    lines += ["", "## Would the loader starve the GPU?", "",
              "| network | GPU images/s (fastest path) | loader images/s (best setting) | GPU would starve |",
              "|---|---|---|---|"]
    for r in data["starvation"]:
        lines.append(f"| {r['network']} | {r['gpu_images_per_s']} ({r['gpu_path']}) | {r['loader_images_per_s']} "
                     f"({r['loader_setting']}) | {'yes' if r['gpu_would_starve'] else 'no'} |")
    lines += ["", "## Real-HAT-GAN step and its degradation (RealESRGANModel, HAT x4 + UNetDiscriminatorSN)", "",
              "| precision | batch | GT crop | ms/step | degradation ms | degradation share | peak GiB | status |",
              "|---|---|---|---|---|---|---|---|"]
    for r in data.get("realsr", []):
        lines.append(f"| {r['precision']} | {_cell(r.get('batch'))} | {_cell(r.get('gt'))} | {_cell(r.get('ms_per_step'))} | "
                     f"{_cell(r.get('degrade_ms'))} | {_cell(r.get('degrade_share'))} | {_cell(r.get('peak_gib'))} | "
                     f"{r['status']} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- plan
#: The issue's targets compare these networks' reference and fast paths (and TBSN's kernel): priority 1.
TARGET_NETWORKS = ("SwinIR-light x2", "HAT-S x2")
Item = tuple[int, str, dict[str, Any], float, Callable[[], dict[str, Any]]]


class DataFiles:
    """The DIV2K-like PNG (and LMDB) files of the data section, made on first use, removed by ``close``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self._tmp, self._sources = args, None, None

    def get(self) -> dict[str, dict[int, tuple[str, str]]]:
        if self._sources is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gpu_report_data_")
            self._sources = make_div2k_like(Path(self._tmp.name), self.args.n_images, self.args.hr_size, self.args.smoke)
        return self._sources

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _training_item(row: dict[str, Any], net: dict[str, Any], scale: int, device: torch.device,
                   args: argparse.Namespace) -> dict[str, Any]:
    return train_throughput(net, scale, device, args.batch, row["size"], row["precision"], row["mode"] == "compile", args)


def _with_channel_norm(backend: str, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(*args)`` with the channel norms' process-wide backend set to ``backend``, restored after."""
    with CHANNEL_NORM_SWITCH.using(backend):
        return fn(*args)


def _na_item(row: dict[str, Any], device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    if device.type != "cuda" and row["backend"] != "reference":
        raise ItemSkipped(f"{row['backend']} has no backward pass on the CPU")
    return na_throughput(args, device, row["backend"], row["precision"])


def _data_item(row: dict[str, Any], files: DataFiles, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    gt_root, lq_root = files.get()[row["io"]][row["scale"]]
    return loader_rate(gt_root, lq_root, row["io"], row["scale"], row["gt_size"], row["workers"], args, device)


def plan(args: argparse.Namespace, device: torch.device, files: DataFiles) -> list[Item]:
    """Every item as ``(priority, section, row, cap_s, fn)``; run by priority, then in this order.

    Priority 1 measures each target of the issues once, the cheap ones first (so that a run cut short
    loses the fewest): the reference-vs-fast and fp32-vs-bf16 rows of SwinIR-light and HAT-S, TBSN's
    fast path (its kernel), one loader setting per crop size, the Real-HAT-GAN step in fp32 (the recipe's
    precision), DSwinIR's neighbourhood attention at k=7 (reference, then flex, which compiles: fp32),
    HAT-L's tiled-vs-whole check and its 2048² tiled peak. Priority 2 completes the tables (``tf32``
    rows included); priority 3 is DSwinIR's network with ``auto``, whose FlexAttention compiles once per
    neighbourhood shape of the U-Net.
    """
    sections = set(args.sections.split(","))
    items: list[Item] = []
    if "training" in sections:
        for name, (_, size) in NETWORKS.items():
            net, scale = network_options(name, args.smoke)
            arg, ref, fast = BACKEND_ARG[net["type"]]
            size = args.smoke_size if args.smoke else size
            modes = [(p, b, "eager") for p in ("fp32", "bf16") for b in (ref, fast)] + [("tf32", fast, "eager")]
            if name in COMPILED:
                modes.append(("bf16", fast, "compile"))
            for precision, backend, mode in modes:
                row = {"network": name, "backend": backend, "precision": precision, "mode": mode,
                       "batch": args.batch, "size": size}
                compiles = mode == "compile" or (net["type"] == "DSwinIR" and backend == "auto")
                target = (name in TARGET_NETWORKS and mode == "eager" and precision != "tf32"
                          and (backend == ref or precision == "bf16")) or (
                    name == "TBSN" and backend == fast and precision == "bf16")
                priority = 1 if target else 3 if net["type"] == "DSwinIR" and backend == "auto" else 2
                fn = functools.partial(_training_item, row, {**net, arg: backend}, scale, device, args)
                items.append((priority, "training", row, args.compile_cap_s if compiles else args.item_cap_s, fn))
        for name, (_, size) in COMMUNITY.items():  # the network as released; both sides of its switch, if any
            net, scale = network_options(name, args.smoke)
            switch = COMMUNITY_SWITCH.get(net["type"])
            for precision in ("fp32", "bf16"):
                for backend in switch[1:] if switch else ("-",):
                    row = {"network": name, "backend": backend, "precision": precision, "mode": "eager",
                           "batch": args.batch, "size": args.smoke_size if args.smoke else size}
                    if switch and switch[0] == CHANNEL_NORM:
                        fn = functools.partial(_with_channel_norm, backend, _training_item, row, net, scale, device,
                                               args)
                    else:
                        options = {**net, switch[0]: backend} if switch else net
                        fn = functools.partial(_training_item, row, options, scale, device, args)
                    items.append((2, "training", row, args.item_cap_s, fn))
    if "data" in sections:
        ios = ["disk"] + (["lmdb"] if importlib.util.find_spec("lmdb") is not None else [])
        data_items: list[Item] = []
        for io_type in ios:
            for scale, gt_size in args.gt_sizes.items():
                for workers in args.workers:
                    row = {"io": io_type, "scale": scale, "gt_size": gt_size, "workers": workers}
                    priority = 1 if io_type == "disk" and workers == args.workers[len(args.workers) // 2] else 2
                    data_items.append((priority, "data", row, 4 * args.data_time_s + 10,
                                       functools.partial(_data_item, row, files, device, args)))
        if data_items:  # the first to run writes the files
            first = min(range(len(data_items)), key=lambda i: data_items[i][0])
            p, section, row, cap, fn = data_items[first]
            data_items[first] = (p, section, row, cap + 30, fn)
        items += data_items
    if "realsr" in sections:
        for precision in ("fp32", "bf16"):
            items.append((1 if precision == "fp32" else 2, "realsr", {"precision": precision},
                          20.0 if args.smoke else 60.0, functools.partial(realsr_step, args, device, precision)))
    if "na" in sections:
        for precision in ("fp32", "bf16"):
            for backend in ("reference", "flex"):
                row = {"backend": backend, "precision": precision, "kernel": args.na_kernel, "size": args.na_size,
                       "shape": "x".join(map(str, args.na_shape))}
                cap = args.compile_cap_s if backend == "flex" else args.item_cap_s
                items.append((1 if precision == "fp32" else 2, "na", row, cap,
                              functools.partial(_na_item, row, device, args)))
    if "tiled" in sections:
        row = {"measurement": "tiled vs whole", "input": args.whole_size, "tile": args.tile, "overlap": args.overlap}
        items.append((1, "tiled", row, 45.0, functools.partial(tiled_vs_whole, args, device)))
        row = {"measurement": "peak memory", "input": args.tiled_size, "tile": args.tile, "overlap": args.overlap}
        items.append((1, "tiled", row, 90.0, functools.partial(tiled_memory, args, device)))
    return items


# ------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_report", help="folder for report.json/.md")
    ap.add_argument("--budget-s", type=float, default=300, help="wall-clock budget of the whole report")
    ap.add_argument("--no-limits", action="store_true",
                    help="no budget and no per-item caps: every item runs to its end (CPU tests on a busy machine)")
    ap.add_argument("--smoke", action="store_true", help="tiny networks and shapes (CI proof on the CPU)")
    ap.add_argument("--device", default="auto", help="auto (cuda when available), cuda, cuda:1, cpu")
    ap.add_argument("--sections", default="training,na,tiled,data,realsr",
                    help="comma list of training, na, tiled, data, realsr")
    ap.add_argument("--no-profile", dest="profile_attention", action="store_false",
                    help="skip the one profiled step per training row that names the SDPA kernels used")
    args = ap.parse_args(argv)
    unknown = set(args.sections.split(",")) - {"training", "na", "tiled", "data", "realsr"}
    if unknown:
        ap.error(f"unknown --sections {sorted(unknown)}; choose from training, na, tiled, data, realsr")
    smoke = args.smoke
    # sizes and caps: the GPU values, or tiny ones with --smoke (same code)
    args.batch = 2 if smoke else 16
    args.smoke_size = 32
    args.warmup, args.repeats = (2, 3) if smoke else (3, 20)
    args.step_time_s = 0.5 if smoke else 2.0
    args.item_cap_s = 20.0 if smoke else 25.0
    args.compile_cap_s = 20.0 if smoke else 75.0
    args.min_item_s = 2.0 if smoke else 5.0
    args.compile_backend = "eager" if smoke else "inductor"
    args.na_kernel, args.na_size = (3, 16) if smoke else (7, 256)
    args.na_shape = (1, 1, 4) if smoke else (4, 3, 16)  # (batch, heads, head dim): DSwinIR's first level
    args.tiled_size, args.whole_size, args.tile, args.overlap = (48, 32, 16, 4) if smoke else (2048, 512, 256, 32)
    args.workers = (1, 2) if smoke else (4, 8, 16)
    args.gt_sizes = {2: 32, 4: 32} if smoke else {2: 128, 4: 256}
    args.hr_size, args.n_images = (64, 6) if smoke else (480, 64)
    args.data_time_s = 0.0 if smoke else 2.0  # smoke: a fixed count of batches (4), whatever the load
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # as training runs
    report = Report(args, device)
    env = report.data["env"]
    print(f"GPU report on {env['device_name']} ({device}), torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {env.get('cudnn')}; budget {'none' if args.no_limits else f'{args.budget_s:.0f} s'} -> {args.out}",
          flush=True)
    if "data" in args.sections.split(",") and importlib.util.find_spec("lmdb") is None:
        report.data["data_note"] = "lmdb is not installed: the LMDB rows were not measured"
    files = DataFiles(args)
    items = sorted(plan(args, device, files), key=lambda item: item[0])
    done = 0
    previous = signal.signal(signal.SIGINT, report.on_sigint)
    try:
        for _, section, row, cap, fn in items:
            report.run(section, row, cap, fn)
            done += 1
            if row.get("mode") == "compile":
                torch._dynamo.reset()
            if report.interrupted:
                raise KeyboardInterrupt
    except KeyboardInterrupt:  # SIGINT (Ctrl-C, or a time cap around the report): keep what was measured
        report.data["interrupted"] = True
        for _, section, row, _, _ in items[done:]:
            if not any(r is row for r in report.data[section]):  # the item interrupted recorded itself
                report.data[section].append({**row, "status": "skipped: interrupted"})
        print(f"interrupted: {len(items) - done} items not measured", flush=True)
    finally:
        signal.signal(signal.SIGINT, previous)
        files.close()
    starvation(report)
    report.save()
    print(markdown(report.data), flush=True)
    return report.data


if __name__ == "__main__":
    sys.exit(130 if main().get("interrupted") else 0)
