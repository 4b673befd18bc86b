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

The default, ``'auto'``, picks per device type what measured fastest (:data:`DEVICE_DEFAULTS`): the
choice depends only on the device, never on timings taken at run time, so runs stay reproducible.
``'reference'`` on the CPU: on an AMD EPYC (torch 2.14.1) a SwinIR-light x2 training step ran at
0.78x (2 threads) and 0.95x (1 thread) of the reference's speed with the CPU ``'sdpa'`` kernel: at head
dim 10 its flash forward costs what the reference's forward does, and its memory-lean backward
recomputes the probabilities (docs/benchmarks.md, "Window attention on an AMD EPYC"). Set ``'sdpa'``
explicitly for its lower training memory, or where it measures faster: HAT's 256-token windows (1.37x
for HAT-S x2 on that EPYC, few samples), SwinIR-light on a 2-core AVX-512 Xeon (1.27x, torch 2.15).
"""

from __future__ import annotations

import torch

__all__ = ["ATTN_BACKENDS", "AUTO", "DEVICE_DEFAULTS", "get_attn_backend", "set_attn_backend", "resolve_attn_backend"]

#: Backends understood by :func:`restoration.layers.window_attention.window_attention`.
#: FlexAttention is deliberately absent: see the module docstring of ``window_attention.py``.
ATTN_BACKENDS: tuple[str, ...] = ("reference", "sdpa")

#: Not a backend: "the default of the device type the tensors are on" (:data:`DEVICE_DEFAULTS`).
AUTO = "auto"

#: What ``'auto'`` means per device type; every type not listed gets ``'sdpa'``.
DEVICE_DEFAULTS: dict[str, str] = {"cpu": "reference"}

_default_attn_backend = AUTO


def get_attn_backend() -> str:
    """The process-wide default used where a layer got ``attn_backend=None`` (initially ``'auto'``)."""
    return _default_attn_backend


def set_attn_backend(name: str) -> None:
    """Change the process-wide default: a backend of :data:`ATTN_BACKENDS`, or ``'auto'``."""
    global _default_attn_backend
    _default_attn_backend = resolve_attn_backend(name)


def resolve_attn_backend(name: str | None, device: torch.device | str | None = None) -> str:
    """Return ``name`` checked against :data:`ATTN_BACKENDS`, the global default for ``None``, and for
    ``'auto'`` the default of ``device`` (``'auto'`` itself while no device is given).

    Raises:
        ValueError: ``name`` is not a known backend (the message lists the known ones).
    """
    if name is None:
        name = _default_attn_backend
    if name == AUTO:
        return AUTO if device is None else DEVICE_DEFAULTS.get(torch.device(device).type, "sdpa")
    if name not in ATTN_BACKENDS:
        raise ValueError(
            f"unknown attention backend {name!r}; choose one of {', '.join(ATTN_BACKENDS)} (or {AUTO!r}: "
            "the device's default)"
        )
    return name
