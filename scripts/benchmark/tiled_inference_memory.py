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

Peaks come from :func:`restoration.utils.memory.measure_peak_memory` (CUDA allocator peak; on the CPU the
RSS high-water mark). The network's weights are resident before and are reported separately::

    python scripts/benchmark/tiled_inference_memory.py -opt options/test/HAT/test_HAT-L_SRx2.yml \
        --size 2048 --tile 256 --overlap 32            # estimate (CPU: minutes)
    python scripts/benchmark/tiled_inference_memory.py -opt ... --size 2048 --full --device cuda
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
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
from restoration.utils.memory import measure_peak_memory  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-opt", "--opt", required=True, help="option file; its network_g is used")
    ap.add_argument("--kwargs", default="{}", help="JSON constructor kwargs merged over network_g")
    ap.add_argument("--size", type=int, default=2048, help="input side (LR pixels for SR)")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
    ap.add_argument("--full", action="store_true", help="run the real network over the whole input")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    net_opt = {**load_yaml(args.opt)["network_g"], **json.loads(args.kwargs)}
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


if __name__ == "__main__":
    main()
