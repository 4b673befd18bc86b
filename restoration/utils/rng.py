"""Capture and restore every random generator, in a form ``torch.load(weights_only=True)`` accepts."""

from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator

import numpy as np
import torch

__all__ = ["get_rng_state", "set_rng_state", "seed_everything", "preserve_rng", "derived_seed", "restore_rank_rng"]


def get_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states as tensors and plain containers.

    The CUDA state is that of this process's own device only (``torch.cuda.current_device()``): each
    rank of a multi-GPU run saves its own, and a state restores on a machine with fewer GPUs.
    """
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, (list, tuple)):  # states written before per-device saving: one per visible GPU
            device = torch.cuda.current_device()
            cuda = cuda[device] if device < len(cuda) else None
        if cuda is not None:
            torch.cuda.set_rng_state(cuda)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (e.g. ``(manual_seed, rank, iteration)``): distinct parts give
    independent streams, unlike ``seed + rank``, whose neighbours overlap with other runs' seeds."""
    return int(np.random.SeedSequence([int(p) % 2**63 for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def restore_rank_rng(saved: list[dict[str, Any]], rank: int, seed: int, iteration: int) -> None:
    """Resume this rank's random streams from a training state's per-rank list.

    A rank the saved run had gets its own streams back (bit-exact resume); a rank it did not have (more
    processes now) gets fresh streams derived from ``(seed, rank, iteration)``, never a copy of another
    rank's, which would repeat that rank's dropout and noise draws.
    """
    if rank < len(saved):
        set_rng_state(saved[rank])
    else:
        seed_everything(derived_seed(seed, rank, iteration))


@contextlib.contextmanager
def preserve_rng() -> Iterator[None]:
    """Run a block (e.g. validation) without disturbing the training run's random streams."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
