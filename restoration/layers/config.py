"""Global defaults for the shared layers: the one place where fast paths are switched.

Every attention layer takes an ``attn_backend`` argument; ``None`` (the default of every
architecture) means "use :func:`get_attn_backend`", so a whole program can be switched at run time::

    from restoration.layers import config
    config.set_attn_backend("reference")   # explicit q @ k^T + bias + mask, softmax

Backends (all compute the same function; ``tests/test_window_attention.py`` proves them equal,
forward and backward):

* ``'reference'``: the official SwinIR/HAT arithmetic, step by step. Most memory (it keeps every
  attention matrix for backward).
* ``'sdpa'``: fused kernels: on the CPU the hand-tuned kernel of
  :mod:`restoration.layers.window_attention_cpu` (SDPA's flash forward, a recomputing backward, no
  stored attention matrix); elsewhere SDPA's memory-efficient kernel, laid out by
  :mod:`restoration.layers.window_attention_cuda`.

The default, ``'auto'``, picks what measured fastest (:func:`auto_backend`) from the device type and the
head dim alone, never from timings taken at run time, so runs stay reproducible: ``'sdpa'`` off the CPU;
on the CPU the hand-tuned kernel from head dim :data:`CPU_KERNEL_MIN_HEAD_DIM` on, else ``'reference'``.
Training steps on a 2-core AMD EPYC (torch 2.14.1, time(reference) / time(kernel), medians of paired
rounds; docs/benchmarks.md, "Window attention on an AMD EPYC"): SwinIR-M x2 (head dim 30) 1.45x, HAT-S x2
(24) 1.30x, but SwinIR-light x2 (10) 0.78x (2 threads) and 0.95x (1 thread): at head dim 10 the kernel's
flash forward costs what the reference's forward does, and its memory-lean backward recomputes the
probabilities. Set ``'sdpa'`` explicitly for its lower training memory at any head dim.
"""

from __future__ import annotations

import torch

__all__ = [
    "ATTN_BACKENDS", "AUTO", "CPU_KERNEL_MIN_HEAD_DIM", "auto_backend", "get_attn_backend", "resolve_attn_backend",
    "set_attn_backend",
]

#: Backends understood by :func:`restoration.layers.window_attention.window_attention`.
#: FlexAttention is deliberately absent: see the module docstring of ``window_attention.py``.
ATTN_BACKENDS: tuple[str, ...] = ("reference", "sdpa")

#: Not a backend: "what :func:`auto_backend` picks for the tensors at hand".
AUTO = "auto"

#: On the CPU, ``'auto'`` takes the ``'sdpa'`` kernel from this head dim on: it lost at 10 (SwinIR-light)
#: and won at 24 (HAT-S) and 30 (SwinIR-M) in the measurements above; 16 lies between.
CPU_KERNEL_MIN_HEAD_DIM = 16

_default_attn_backend = AUTO


def get_attn_backend() -> str:
    """The process-wide default used where a layer got ``attn_backend=None`` (initially ``'auto'``)."""
    return _default_attn_backend


def set_attn_backend(name: str) -> None:
    """Change the process-wide default: a backend of :data:`ATTN_BACKENDS`, or ``'auto'``."""
    global _default_attn_backend
    _default_attn_backend = resolve_attn_backend(name)


def auto_backend(device: torch.device | str, head_dim: int) -> str:
    """What ``'auto'`` means for tensors on ``device`` with ``head_dim`` channels per head."""
    if torch.device(device).type != "cpu":
        return "sdpa"
    return "sdpa" if head_dim >= CPU_KERNEL_MIN_HEAD_DIM else "reference"


def resolve_attn_backend(name: str | None, device: torch.device | str | None = None, head_dim: int = 0) -> str:
    """Return ``name`` checked against :data:`ATTN_BACKENDS`, the global default for ``None``, and for
    ``'auto'`` :func:`auto_backend` of ``device`` and ``head_dim`` (``'auto'`` itself without a device).

    Raises:
        ValueError: ``name`` is not a known backend (the message lists the known ones).
    """
    if name is None:
        name = _default_attn_backend
    if name == AUTO:
        return AUTO if device is None else auto_backend(device, head_dim)
    if name not in ATTN_BACKENDS:
        raise ValueError(
            f"unknown attention backend {name!r}; choose one of {', '.join(ATTN_BACKENDS)} (or {AUTO!r}: "
            "the measured default for the device and head dim)"
        )
    return name
