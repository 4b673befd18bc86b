"""Images per second of the real-world SR degradations: the data-worker side and the training-device side.

* ``worker_kernels``: what a ``RealESRGANDataset`` worker adds per sample — drawing ``kernel1``,
  ``kernel2`` and ``sinc_kernel`` with the x4plus recipe (no image reading), one CPU thread;
* ``device_degrade``: ``realesrgan_degrade`` on a batch of ``--batch`` GT images of ``--size``² (USM,
  both orders, torch JPEG, 8-bit rounding, ``gt_size`` = ``--size``, no pool) on ``--device``;
* ``bsrgan``: ``bsrgan_degrade`` x4 on one ``--size``² image (the per-sample CPU path of
  ``DegradationDataset``), one CPU thread.

Each number is the median over ``--repeats`` timed runs after one warm-up, so a shared machine's load
bursts stay out of it; on a GPU every run ends with ``torch.cuda.synchronize()``.

Usage: ``python scripts/benchmark/degradation_throughput.py [--device auto|cpu|cuda] [--batch 16] [--size 256] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from restoration.data.degradations.bsrgan import bsrgan_degrade  # noqa: E402
from restoration.data.degradations.kernels import draw_batch_kernels, draw_sample_kernels  # noqa: E402
from restoration.data.realesrgan_dataset import RealESRGANDataset  # noqa: E402
from restoration.data.degradations.realesrgan import degradation_generator, realesrgan_degrade  # noqa: E402
from restoration.options.schema import all_defaults  # noqa: E402

RECIPE = all_defaults(RealESRGANDataset.options)  # Real-ESRGAN x4plus dataset options (the dataset's defaults)


def _median_seconds(fn: Callable[[int], None], repeats: int, sync: Callable[[], None]) -> float:
    fn(0)  # warm-up
    sync()
    times = []
    for i in range(1, repeats + 1):
        start = time.perf_counter()
        fn(i)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _kernels(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return draw_sample_kernels(rng, RECIPE)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=256, help="GT side length")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    b, size = args.batch, args.size

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a data worker has one thread
    worker = _median_seconds(lambda i: [_kernels(np.random.default_rng([i, j])) for j in range(b)], args.repeats,
                             lambda: None)
    img = np.random.default_rng(0).random((size, size, 3)).astype(np.float32)
    bsrgan = _median_seconds(lambda i: bsrgan_degrade(img, 4, np.random.default_rng(i)), args.repeats, lambda: None)
    torch.set_num_threads(threads)

    batch = {"gt": torch.rand(b, 3, size, size, device=device)}
    batch.update({key: torch.from_numpy(k).to(device)
                  for key, k in draw_batch_kernels(np.random.default_rng(0), RECIPE, b).items()})
    opt = {"gt_size": size, "queue_size": 0}
    degrade = _median_seconds(lambda i: realesrgan_degrade(batch, opt, degradation_generator(0, i)), args.repeats, sync)

    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} threads)",
        "batch": b, "gt_size": size, "repeats": args.repeats,
        "worker_kernels_images_per_s": round(b / worker, 1),
        "device_degrade_images_per_s": round(b / degrade, 1),
        "device_degrade_ms_per_batch": round(1000 * degrade, 1),
        "bsrgan_x4_images_per_s": round(1 / bsrgan, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
