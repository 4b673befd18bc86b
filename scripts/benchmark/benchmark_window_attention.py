"""The window-attention core alone: forward+backward time per backend, and the check that they agree.

Times :func:`restoration.layers.window_attention.window_attention` as the networks call it: q, k and v
are views of one qkv projection ``(B*nW, N, 3*nH*d)``, the bias ``(nH, N, N)`` is learned, and a
shifted block adds the shift mask of an ``H x H`` token map (``--image``). Every backend is checked
against ``reference`` (output and the gradients of qkv and the bias) before it is timed::

    OMP_NUM_THREADS=2 python scripts/benchmark/benchmark_window_attention.py --preset swinir-light
    OMP_NUM_THREADS=2 python scripts/benchmark/benchmark_window_attention.py --preset hat-s --repeats 3
    python scripts/benchmark/benchmark_window_attention.py --device cuda --dtype bf16 --preset hat

Backends are timed round-robin in one process (a busy machine slows them alike); the best and the
median of ``--repeats`` runs are printed, and the median over repeats of ``time(reference) / time(b)``
(each ratio from one round, so load that comes and goes cancels). On CUDA each timed run is bracketed
by ``torch.cuda.synchronize`` and the peak is ``torch.cuda.max_memory_allocated`` above what was
allocated before; on the CPU peaks are left to ``benchmark.py`` (separate process, docs/benchmarks.md).
``--dtype bf16|fp16`` makes q, k, v that dtype with a float32 bias and runs under autocast, as training
does. The ``kernel`` column says what ran: on CUDA whether SDPA's flash / memory-efficient kernel accepts
the inputs that the ``sdpa`` path builds (``torch.backends.cuda.can_use_*``), else ``math``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from restoration.layers.config import ATTENTION_OPS
from restoration.layers.window_attention import window_attention
from restoration.layers.window_attention_cuda import sdpa_inputs
from restoration.layers.window_partition import shifted_window_mask

#: (images, token-map side, window side, heads, head dim) of a training batch of 4 x 64^2 LR patches.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

PRESETS = {
    "swinir-light": (4, 64, 8, 6, 10),
    "swinir-m": (4, 64, 8, 6, 30),
    "hat-s": (4, 64, 16, 6, 24),
    "hat": (4, 64, 16, 6, 30),
}


class Problem:
    """Inputs of one window-attention call and the closure that runs forward+backward on them."""

    def __init__(self, images: int, side: int, window: int, heads: int, head_dim: int, shifted: bool,
                 device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32) -> None:
        torch.manual_seed(0)
        self.heads, self.head_dim, self.n = heads, head_dim, window * window
        mask = shifted_window_mask(side, side, window, window // 2) if shifted else None
        self.mask = None if mask is None else mask.to(device)
        self.windows = images * (side // window) ** 2
        self.qkv = torch.randn(self.windows, self.n, 3 * heads * head_dim, device=device, dtype=dtype,
                               requires_grad=True)
        # float32 like the learned table under autocast
        self.bias = (0.1 * torch.randn(heads, self.n, self.n, device=device)).requires_grad_()
        self.grad_out = torch.randn(self.windows, heads, self.n, head_dim, device=device, dtype=dtype)

    def qkv_views(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v (B*nW, nH, N, d) as views of the qkv projection, as the networks make them."""
        return self.qkv.view(self.windows, self.n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def run(self, backend: str) -> list[torch.Tensor]:
        """Forward + backward; returns [output, d qkv, d bias] (the gradients are then cleared)."""
        q, k, v = self.qkv_views()
        # low precision as in training: under autocast (the reference's fp32 logits + bias meet bf16 v)
        with torch.autocast(q.device.type, dtype=q.dtype, enabled=q.dtype != torch.float32):
            out = window_attention(q, k, v, bias=self.bias, mask=self.mask, backend=backend)
        out.backward(self.grad_out)
        result = [out.detach(), self.qkv.grad, self.bias.grad]
        self.qkv.grad = self.bias.grad = None
        return result


def sdpa_kernel_used(problem: Problem, backend: str) -> str:
    """Which attention kernel ``backend`` runs on ``problem``'s device (see the module docstring)."""
    if backend == "reference":
        return "reference (bmm + softmax)"
    if problem.qkv.device.type == "cpu":
        from restoration.layers.window_attention_cpu import uses_stored_kernel

        q, k, _ = problem.qkv_views()
        if uses_stored_kernel(q.shape[2], k.shape[2], q.dtype):
            return "CPU kernel (stored P, in place)"
        return "CPU kernel (flash fwd + blocked bwd)"
    try:
        from torch.backends.cuda import SDPAParams, can_use_efficient_attention, can_use_flash_attention
    except ImportError:  # torch < 2.3 has no public SDPAParams
        return "unknown (torch too old to ask)"
    q, k, v = problem.qkv_views()
    qs, ks, vs, mask = sdpa_inputs(q, k, v, problem.bias, problem.mask)
    try:
        params = SDPAParams(qs, ks, vs, mask, 0.0, False, False)  # torch >= 2.5: (..., is_causal, enable_gqa)
    except TypeError:
        params = SDPAParams(qs, ks, vs, mask, 0.0, False)
    if can_use_flash_attention(params):
        return "flash"
    return "memory-efficient" if can_use_efficient_attention(params) else "math (not fused!)"


def timed(problem: Problem, backend: str) -> float:
    """Milliseconds of one forward+backward; on CUDA the queue is drained before and after."""
    device = problem.qkv.device
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    problem.run(backend)
    if cuda:
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) * 1e3


def cuda_peak_mb(problem: Problem, backend: str) -> float | None:
    """Peak CUDA memory of one forward+backward above what was allocated before (None off CUDA)."""
    device = problem.qkv.device
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    problem.run(backend)
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def relative_error(got: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    """Largest ``|got - ref| / |ref|`` (norms) over the output and the gradients."""
    return max(float((g - r).norm() / r.norm()) for g, r in zip(got, ref))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="swinir-light")
    parser.add_argument("--shape", type=int, nargs=5, metavar=("IMAGES", "SIDE", "WINDOW", "HEADS", "HEAD_DIM"),
                        help="overrides --preset")
    parser.add_argument("--backends", default=",".join(ATTENTION_OPS["window"]))
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="q, k, v dtype (bias stays fp32)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    shape = tuple(args.shape) if args.shape else PRESETS[args.preset]
    backends = [b for b in args.backends.split(",") if b]
    rows = []
    for shifted in (True, False):
        problem = Problem(*shape, shifted=shifted, device=device, dtype=dtype)
        ref = problem.run("reference")
        errors = {b: relative_error(problem.run(b), ref) for b in backends}
        for _ in range(args.warmup):
            for b in backends:
                problem.run(b)
        times: dict[str, list[float]] = {b: [] for b in backends}
        for _ in range(args.repeats):
            for b in backends:
                times[b].append(timed(problem, b))
        for b in backends:
            ratios = [r / t for r, t in zip(times["reference"], times[b])] if "reference" in times else []
            rows.append({"shifted": shifted, "backend": b, "best_ms": min(times[b]),
                         "median_ms": statistics.median(times[b]), "times_ms": times[b],
                         "speedup_vs_reference": statistics.median(ratios) if ratios else None,
                         "peak_mb": cuda_peak_mb(problem, b), "kernel": sdpa_kernel_used(problem, b),
                         "rel_error": errors[b]})
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"window attention {shape[0]} images x {shape[1]}^2 tokens, window {shape[2]}, {shape[3]} heads x "
          f"{shape[4]}; {args.dtype}; forward+backward; {where}; torch {torch.__version__}\n")
    print("| block | backend | kernel | best ms | median ms | median speed-up vs reference | peak MB "
          "| rel. error vs reference |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        speedup = "" if r["speedup_vs_reference"] is None else f"{r['speedup_vs_reference']:.2f}x"
        peak = "" if r["peak_mb"] is None else f"{r['peak_mb']:.1f}"
        print(f"| {'shifted' if r['shifted'] else 'unshifted'} | {r['backend']} | {r['kernel']} | {r['best_ms']:.1f} | "
              f"{r['median_ms']:.1f} | {speedup} | {peak} | {r['rel_error']:.1e} |")
    report = {"shape": dict(zip(("images", "side", "window", "heads", "head_dim"), shape)), "device": where,
              "dtype": args.dtype, "threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
