"""The window-attention core alone: forward+backward time per backend, and the check that they agree.

Times :func:`restoration.layers.window_attention.window_attention` as the networks call it: q, k and v
are views of one qkv projection ``(B*nW, N, 3*nH*d)``, the bias ``(nH, N, N)`` is learned, and a
shifted block adds the shift mask of an ``H x H`` token map (``--image``). Every backend is checked
against ``reference`` (output and the gradients of qkv and the bias) before it is timed::

    OMP_NUM_THREADS=2 python scripts/benchmark/benchmark_window_attention.py --preset swinir-light
    OMP_NUM_THREADS=2 python scripts/benchmark/benchmark_window_attention.py --preset hat-s --repeats 3

Backends are timed round-robin in one process (a busy machine slows them alike); the best and the
median of ``--repeats`` runs are printed. Times only: peak memory is measured per network by
``benchmark.py`` (in a separate process, see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from restoration.layers.config import ATTN_BACKENDS
from restoration.layers.window_attention import window_attention
from restoration.layers.window_partition import shifted_window_mask

#: (images, token-map side, window side, heads, head dim) of a training batch of 4 x 64^2 LR patches.
PRESETS = {
    "swinir-light": (4, 64, 8, 6, 10),
    "swinir-m": (4, 64, 8, 6, 30),
    "hat-s": (4, 64, 16, 6, 24),
    "hat": (4, 64, 16, 6, 30),
}


class Problem:
    """Inputs of one window-attention call and the closure that runs forward+backward on them."""

    def __init__(self, images: int, side: int, window: int, heads: int, head_dim: int, shifted: bool) -> None:
        torch.manual_seed(0)
        self.heads, self.head_dim, self.n = heads, head_dim, window * window
        self.mask = shifted_window_mask(side, side, window, window // 2) if shifted else None
        self.windows = images * (side // window) ** 2
        self.qkv = torch.randn(self.windows, self.n, 3 * heads * head_dim, requires_grad=True)
        self.bias = (0.1 * torch.randn(heads, self.n, self.n)).requires_grad_()
        self.grad_out = torch.randn(self.windows, heads, self.n, head_dim)

    def run(self, backend: str) -> list[torch.Tensor]:
        """Forward + backward; returns [output, d qkv, d bias] (the gradients are then cleared)."""
        q, k, v = self.qkv.view(self.windows, self.n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = window_attention(q, k, v, bias=self.bias, mask=self.mask, backend=backend)
        out.backward(self.grad_out)
        result = [out.detach(), self.qkv.grad, self.bias.grad]
        self.qkv.grad = self.bias.grad = None
        return result


def relative_error(got: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    """Largest ``|got - ref| / |ref|`` (norms) over the output and the gradients."""
    return max(float((g - r).norm() / r.norm()) for g, r in zip(got, ref))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="swinir-light")
    parser.add_argument("--shape", type=int, nargs=5, metavar=("IMAGES", "SIDE", "WINDOW", "HEADS", "HEAD_DIM"),
                        help="overrides --preset")
    parser.add_argument("--backends", default=",".join(ATTN_BACKENDS))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = tuple(args.shape) if args.shape else PRESETS[args.preset]
    backends = [b for b in args.backends.split(",") if b]
    rows = []
    for shifted in (True, False):
        problem = Problem(*shape, shifted=shifted)
        ref = problem.run("reference")
        errors = {b: relative_error(problem.run(b), ref) for b in backends}
        for _ in range(args.warmup):
            for b in backends:
                problem.run(b)
        times: dict[str, list[float]] = {b: [] for b in backends}
        for _ in range(args.repeats):
            for b in backends:
                t0 = time.perf_counter()
                problem.run(b)
                times[b].append((time.perf_counter() - t0) * 1e3)
        for b in backends:
            rows.append({"shifted": shifted, "backend": b, "best_ms": min(times[b]),
                         "median_ms": statistics.median(times[b]), "times_ms": times[b], "rel_error": errors[b]})
    print(f"window attention {shape[0]} images x {shape[1]}^2 tokens, window {shape[2]}, {shape[3]} heads x "
          f"{shape[4]}; forward+backward; {torch.get_num_threads()} threads; torch {torch.__version__}\n")
    print("| block | backend | best ms | median ms | rel. error vs reference |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {'shifted' if r['shifted'] else 'unshifted'} | {r['backend']} | {r['best_ms']:.1f} | "
              f"{r['median_ms']:.1f} | {r['rel_error']:.1e} |")
    report = {"shape": dict(zip(("images", "side", "window", "heads", "head_dim"), shape)),
              "threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
