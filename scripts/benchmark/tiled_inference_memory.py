"""Peak memory of tiled inference on a large image (e.g. HAT-L x2 on 2048 x 2048 within 16 GB).

Two ways, both through :func:`restoration.inference.tiling.tiled_forward`, fp32 (or ``--bf16``
autocast), under ``torch.no_grad``:

* ``--full``: the real network over the whole input; the peak is measured directly. Use it on a GPU
  (on a CPU, HAT-L on 2048^2 takes hours).
* default, the estimate: (a) the peak of ONE tile through the real network, plus (b) the peak of
  ``tiled_forward`` over the whole input with a stand-in network that only upsamples (nearest):
  the padded input, the output and weight accumulators and one tile's output. Tiles run one after
  another and each tile's activations are freed before the next starts, so (a) + (b) bounds the
  full run's peak from above (both count one tile's output).

Peaks come from :func:`scripts.benchmark.memory.measure_peak_memory` (CUDA allocator peak; on the CPU the
RSS high-water mark). The network's weights are resident before and are reported separately::

    python scripts/benchmark/tiled_inference_memory.py -opt options/test/HAT/test_HAT-L_SRx2.yml \
        --size 2048 --tile 256 --overlap 32            # estimate (CPU: minutes)
    python scripts/benchmark/tiled_inference_memory.py -opt ... --size 2048 --full --device cuda

``--infer-sizes 512 1024 2048`` measures the whole command instead: for each size, a fresh process runs
``restoration-infer`` on one random ``size x size`` RGB PNG with the network of ``-opt``/``--kwargs`` (random weights) and
``--tile``, and reports its peak RSS (``getrusage``'s ``ru_maxrss``: the image, the network, the tiles and the
output together), one process per size so that no peak carries over::

    python scripts/benchmark/tiled_inference_memory.py --infer-sizes 512 1024 2048 --tile 128 \
        --kwargs '{"type": "SimpleSRNet", "num_feat": 16, "num_block": 2, "upscale": 2}'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from restoration.archs.build import build_network  # noqa: E402
from restoration.archs.spec import arch_spec  # noqa: E402
from restoration.inference.tiling import tiled_forward  # noqa: E402
from restoration.options.yaml_io import load_yaml  # noqa: E402
from scripts.benchmark.memory import measure_peak_memory  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-opt", "--opt", default=None, help="option file; its network_g is used")
    ap.add_argument("--kwargs", default="{}",
                    help="JSON constructor kwargs merged over network_g (the whole network with 'type' without -opt)")
    ap.add_argument("--size", type=int, default=2048, help="input side (LR pixels for SR)")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
    ap.add_argument("--full", action="store_true", help="run the real network over the whole input")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--infer-sizes", type=int, nargs="+", default=None, metavar="SIZE",
                    help="peak RSS of restoration-infer on one SIZE x SIZE image, a fresh process per size")
    args = ap.parse_args(argv)
    if args.opt is None and "type" not in json.loads(args.kwargs):
        ap.error("give -opt FILE, or --kwargs with the network's 'type'")
    if args.infer_sizes:
        return infer_peaks(args)

    net_opt = {**(load_yaml(args.opt)["network_g"] if args.opt else {}), **json.loads(args.kwargs)}
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = build_network(net_opt).to(device).eval()
    spec = arch_spec(net)
    scale, multiple = spec.scale, spec.size_multiple
    in_chans = int(net_opt.get("in_chans", 3))
    weights_mb = sum(p.numel() * p.element_size() for p in net.parameters()) / 2**20
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()

    def run_tiled(fn, x):
        with torch.no_grad(), autocast:
            return tiled_forward(fn, x, scale, args.tile, args.overlap, multiple=multiple)

    x = torch.rand(1, in_chans, args.size, args.size, device=device)
    report = {"network": net_opt, "size": args.size, "tile": args.tile, "overlap": args.overlap,
              "device": str(device), "bf16": args.bf16, "weights_mb": weights_mb, "torch": torch.__version__}
    t0 = time.perf_counter()
    tile = x[:, :, : args.tile, : args.tile]
    with torch.no_grad(), autocast:
        net(tile)  # warm-up in both modes: one-time oneDNN primitives and lazy buffers are in neither peak
    if args.full:
        _, peak = measure_peak_memory(lambda: run_tiled(net, x), device)
        report.update(mode="full", peak_mb=None if peak is None else peak / 2**20)
    else:
        _, tile_peak = measure_peak_memory(lambda: run_tiled(net, tile), device)
        upsample = lambda t: F.interpolate(t.float(), scale_factor=scale, mode="nearest")  # noqa: E731
        _, buffers_peak = measure_peak_memory(lambda: run_tiled(upsample, x), device)
        both = None if tile_peak is None or buffers_peak is None else (tile_peak + buffers_peak) / 2**20
        report.update(mode="estimate", tile_peak_mb=None if tile_peak is None else tile_peak / 2**20,
                      buffers_peak_mb=None if buffers_peak is None else buffers_peak / 2**20, peak_mb=both)
    report["seconds"] = time.perf_counter() - t0
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


_CHILD = """
import resource, sys
from restoration.cli import infer
code = infer.main(sys.argv[1:])
print("MAXRSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "EXIT", code)
"""


def infer_peaks(args: argparse.Namespace) -> dict:
    """Peak RSS (MiB) of one ``restoration-infer`` process per image size, with the network of ``args.opt``."""
    import numpy as np

    from restoration.utils.image_io import imwrite

    net_opt = {**(load_yaml(args.opt)["network_g"] if args.opt else {}), **json.loads(args.kwargs)}
    torch.manual_seed(0)
    net = build_network(net_opt)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "net.pth"
        torch.save({"params": net.state_dict()}, weights)
        arch_opt = json.dumps({k: v for k, v in net_opt.items() if k != "type"})
        for size in args.infer_sizes:
            img = Path(tmp) / f"in{size}.png"
            imwrite(img, np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8))
            cmd = [sys.executable, "-c", _CHILD, "-i", str(img), "-o", str(Path(tmp) / "out"), "--weights",
                   str(weights), "--arch", net_opt["type"], "--arch-opt", arch_opt, "--tile", str(args.tile),
                   "--tile-overlap", str(args.overlap), "--device", args.device, "--no-progress", "--overwrite"]
            t0 = time.perf_counter()
            run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            seconds = time.perf_counter() - t0
            words = run.stdout.split()
            if "MAXRSS_KIB" not in words or words[words.index("EXIT") + 1] != "0":
                raise SystemExit(f"size {size}: restoration-infer failed:\n{run.stderr[-2000:]}")
            peak_mib = int(words[words.index("MAXRSS_KIB") + 1]) / 1024
            out_mib = size * size * 3 * arch_spec(net).scale ** 2 / 2**20
            rows.append({"size": size, "peak_rss_mib": round(peak_mib, 1), "output_uint8_mib": round(out_mib, 1),
                         "seconds": round(seconds, 1)})
            print(json.dumps(rows[-1]), flush=True)
    report = {"network": net_opt, "tile": args.tile, "overlap": args.overlap, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "infer_peaks": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
