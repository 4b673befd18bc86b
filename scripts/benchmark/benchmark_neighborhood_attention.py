"""Cost of DSwinIR's neighbourhood attention: time and peak memory of one forward+backward.

Compares the DSwinIR network (paper defaults unless overridden) using a neighbourhood-attention
backend with the *same* network whose attention layers are replaced by plain 3x3 convolutions
(``C -> C``), i.e. what the attention costs over a conv net of identical layout::

    OMP_NUM_THREADS=2 python scripts/benchmark/benchmark_neighborhood_attention.py \
        --size 128 --batch 1 --backend reference --repeats 3

CPU peak memory is the RSS high-water mark (see :mod:`scripts.benchmark.memory`); CUDA uses the
allocator's peak. On CUDA every clock reading follows ``torch.cuda.synchronize`` (kernels are
asynchronous: without it the time is the launch time), and the warm-up steps, which compile the
``flex`` backend, are not timed. The Dynamo graphs compiled during warm-up and during the timed steps
are reported: a compile in the timed steps means a recompilation the network should not need.
Prints a markdown table; the numbers recorded in ``docs/dswinir.md`` come from it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a checkout without installing; scripts.benchmark.memory lives there
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from restoration.archs.dswinir.dswinir_arch import DSwinIR, DSwinTransformerBlock  # noqa: E402
from scripts.benchmark.memory import measure_peak_memory  # noqa: E402


def build(variant: str, backend: str, dim: int, num_blocks: list[int], refinement: int) -> nn.Module:
    """``'attention'``: DSwinIR as configured; ``'conv'``: every attention replaced by a 3x3 conv."""
    net = DSwinIR(dim=dim, num_blocks=num_blocks, num_refinement_blocks=refinement, attn_backend=backend)
    if variant == "conv":
        for block in net.modules():
            if isinstance(block, DSwinTransformerBlock):
                c = block.norm1.body.weight.numel()
                block.attn = nn.Conv2d(c, c, 3, padding=1)
    return net


def _step(net: nn.Module, x: torch.Tensor) -> None:
    net.zero_grad(set_to_none=True)
    net(x).mean().backward()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def graphs_compiled() -> int:
    """Dynamo graphs compiled so far in this process (the flex backend's compiles; 0 before Dynamo is
    first imported, which this does not do)."""
    dynamo = sys.modules.get("torch._dynamo")
    return int(dynamo.utils.counters["stats"]["unique_graphs"]) if dynamo is not None else 0


def time_steps(net: nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> dict:
    """Median seconds of forward+backward (default malloc: see :func:`peak_bytes`) and the graphs
    compiled during warm-up and during the timed steps."""
    graphs0 = graphs_compiled()
    for _ in range(warmup):  # allocator, oneDNN primitives, torch.compile of the flex backend
        _step(net, x)
    _sync(x.device)
    graphs1 = graphs_compiled()
    times = []
    for _ in range(repeats):
        _sync(x.device)
        t0 = time.perf_counter()
        _step(net, x)
        _sync(x.device)
        times.append(time.perf_counter() - t0)
        print(f"  step {len(times)}/{repeats}: {times[-1]:.3f} s", file=sys.stderr, flush=True)
    return {"seconds": statistics.median(times), "warmup_graphs": graphs1 - graphs0,
            "timed_graphs": graphs_compiled() - graphs1}


def peak_bytes(net: nn.Module, x: torch.Tensor) -> int | None:
    """Peak extra memory of one forward+backward. On the CPU this switches glibc to mmap every block
    >= 64 KiB for the rest of the process (page faults on every large allocation), so it runs after
    all timings."""
    return measure_peak_memory(lambda: _step(net, x), x.device)[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dim", type=int, default=48)
    parser.add_argument("--num-blocks", type=int, nargs=4, default=[4, 6, 6, 8])
    parser.add_argument("--refinement", type=int, default=4)
    parser.add_argument("--backend", default="reference")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print a JSON line instead of a table")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size, device=args.device)
    results, nets = {}, {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for variant in ("attention", "conv"):  # all timings first, then the memory measurements
            nets[variant] = net = build(variant, args.backend, args.dim, args.num_blocks,
                                        args.refinement).to(args.device).train()
            params = sum(p.numel() for p in net.parameters())
            print(f"{variant}: {params:,} parameters", file=sys.stderr, flush=True)
            results[variant] = {"params": params, **time_steps(net, x, args.repeats, args.warmup)}
    # flex refusing a shape (served by 'reference') or running uncompiled would falsify the timing
    results["flex_warnings"] = sorted({str(w.message) for w in caught if "flex" in str(w.message)})
    for message in results["flex_warnings"]:
        print(f"warning: {message}", file=sys.stderr)
    for variant, net in nets.items():
        results[variant]["peak_bytes"] = peak_bytes(net, x)
    ratio = None
    if results["attention"]["peak_bytes"] and results["conv"]["peak_bytes"]:
        ratio = results["attention"]["peak_bytes"] / results["conv"]["peak_bytes"]
    results["memory_ratio"] = ratio
    results["config"] = vars(args)
    if args.json:
        print(json.dumps(results))
        return results
    print(f"DSwinIR dim {args.dim}, {args.batch}x3x{args.size}x{args.size}, {args.device}, fp32, fwd+bwd, "
          f"NA backend '{args.backend}', torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| variant | params | time (s) | peak memory (MiB) | graphs compiled: warm-up / timed |")
    print("|---|---:|---:|---:|---:|")
    for variant in ("attention", "conv"):
        r = results[variant]
        mem = f"{r['peak_bytes'] / 2 ** 20:.0f}" if r["peak_bytes"] is not None else "n/a"
        label = f"MS-DSwin ({args.backend})" if variant == "attention" else "3x3 conv instead"
        print(f"| {label} | {r['params']:,} | {r['seconds']:.3f} | {mem} | "
              f"{r['warmup_graphs']} / {r['timed_graphs']} |")
    if ratio is not None:
        print(f"memory ratio attention / conv: {ratio:.2f}x")
    return results


if __name__ == "__main__":
    main()
