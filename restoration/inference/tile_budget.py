"""Choose a tile size from the memory a device has free, so a large image never runs whole by accident.

A whole-image forward keeps activations for every pixel at once: a 41k-parameter x4 network on a 1344x1920 photo
took 6 GB of RAM on the CPU, and a SwinIR-M many times that. Tiles bound it (:mod:`restoration.inference.tiling`).
Here the decision is made up front, from two numbers:

* the activation memory per input pixel, estimated from the network's weights and spec
  (:func:`bytes_per_pixel`; deliberately pessimistic), and
* the memory available now (:func:`available_memory`): ``MemAvailable`` of ``/proc/meminfo`` on the CPU,
  ``torch.cuda.mem_get_info`` on CUDA, of which :data:`BUDGET_FRACTION` is planned for.

The image runs whole when ``H * W * bytes_per_pixel`` fits the budget; otherwise the tile side is the largest
square that does (rounded to the network's size multiple). :class:`TileChoice` says which and why, for the log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from restoration.archs.spec import ArchSpec

__all__ = ["BUDGET_FRACTION", "FALLBACK_CPU_BYTES", "TileChoice", "available_memory", "bytes_per_pixel",
           "choose_tile", "round_tile"]

#: Fraction of the available memory planned for activations (the rest: the input, the output, the allocator's
#: fragmentation and whatever else runs on the machine).
BUDGET_FRACTION = {"cpu": 0.5, "cuda": 0.6}
#: Assumed available RAM where ``/proc/meminfo`` cannot be read (macOS, Windows): 4 GiB.
FALLBACK_CPU_BYTES = 4 * 2 ** 30


def available_memory(device: torch.device) -> int:
    """Bytes the next forward on ``device`` may use: free CUDA memory, or the kernel's ``MemAvailable``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    return FALLBACK_CPU_BYTES


def bytes_per_pixel(net: nn.Module, spec: ArchSpec, dtype_bytes: int) -> int:
    """Rough activation memory per input pixel: 24 maps of the widest layer plus the upsampler's 64·s² channels.

    Deliberately pessimistic (a too-small tile costs some speed; a too-large one on the CPU gets the process
    killed, since CPU out-of-memory seldom raises).
    """
    width = max((p.shape[0] for p in net.parameters() if p.dim() in (2, 4)), default=64)
    return dtype_bytes * (24 * width + 8 * 64 * spec.scale ** 2)


def round_tile(side: int, spec: ArchSpec) -> int:
    """``side`` rounded down to a multiple of the network's ``size_multiple`` (and of 8), at least its minimum."""
    step = int(np.lcm(spec.size_multiple, 8))
    return max(spec.min_size, side // step * step, spec.size_multiple)


@dataclass(frozen=True)
class TileChoice:
    """A tile side (None: the whole image) and the numbers that decided it."""

    tile: int | None
    needed: int
    budget: int
    device: str

    def describe(self) -> str:
        """One line for the log: ``tile 256 (whole image needs ~6.1 GiB, budget 2.0 GiB of cpu memory)``."""
        gib = 2 ** 30
        numbers = f"whole image needs ~{self.needed / gib:.2f} GiB, budget {self.budget / gib:.2f} GiB of " \
                  f"{self.device} memory"
        return f"tile {self.tile} ({numbers})" if self.tile is not None else f"whole image ({numbers})"


def choose_tile(spec: ArchSpec, height: int, width: int, device: torch.device, per_pixel: int) -> TileChoice:
    """The tile for an ``height x width`` input: None when the whole image fits the memory budget.

    The budget is :data:`BUDGET_FRACTION` of :func:`available_memory`; a tile is the largest square whose
    activations (``side² * per_pixel``) fit it, rounded by :func:`round_tile`.
    """
    budget = int(available_memory(device) * BUDGET_FRACTION.get(device.type, 0.5))
    needed = height * width * per_pixel
    if needed <= budget:
        return TileChoice(None, needed, budget, device.type)
    side = round_tile(math.isqrt(max(budget // per_pixel, 1)), spec)
    if side >= max(height, width):  # a thin image: one tile would be the whole of it
        return TileChoice(None, needed, budget, device.type)
    return TileChoice(side, needed, budget, device.type)
