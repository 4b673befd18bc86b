"""Global defaults for the shared layers: the one place where fast paths are switched.

One convention for every attention op (:data:`ATTENTION_OPS`): each network takes one option,
``attn_backend`` (SwinIR and HAT: window attention; TBSN: masked window attention; DSwinIR: neighbourhood
attention), and ``None``, the default of every architecture, means "use the process-wide default of that
op" (:func:`get_attn_backend`), so a whole program can be switched at run time::

    from restoration.layers import config
    config.set_attn_backend("reference")                       # window attention (SwinIR, HAT)
    config.set_attn_backend("reference", op="neighborhood")    # DSwinIR
    config.available_backends("neighborhood")                  # ['auto', 'reference', 'flex', ...] here

Every op's ``'reference'`` is the official arithmetic, and every other backend is proven equal to it,
forward and backward, by the op's tests. ``'auto'`` (every op's default) picks per call from the device
and shapes, never from timings, so runs stay reproducible. What follows is about window attention.

Backends (all compute the same function; ``tests/test_window_attention.py`` proves them equal,
forward and backward):

* ``'reference'``: the official SwinIR/HAT arithmetic, step by step. Most memory (it keeps every
  attention matrix for backward).
* ``'sdpa'``: fused kernels: on the CPU the hand-tuned kernels of
  :mod:`restoration.layers.window_attention_cpu` (by window size: for SwinIR's 8 x 8 windows the
  reference's arithmetic in place over cache-sized blocks; for HAT's 16 x 16 windows SDPA's flash
  forward and a recomputing backward, no stored attention matrix); elsewhere SDPA's memory-efficient
  kernel, laid out by :mod:`restoration.layers.window_attention_cuda`.

The default, ``'auto'``, picks what measured fastest (:func:`auto_backend`) from the device type and the
head dim alone, never from timings taken at run time, so runs stay reproducible: ``'sdpa'`` on every
device and head dim. Training steps on a 2-core AMD EPYC (torch 2.14.1, fp32, 4 x 64^2;
docs/benchmarks.md, "Window attention on an AMD EPYC"): SwinIR-light x2 (head dim 10, 8 x 8 windows)
and SwinIR-M x2 (30) faster than the reference through the in-place kernel, HAT-S x2 (24, 16 x 16) through
the flash kernel. ``'reference'`` stays selectable (the official arithmetic, bit for bit).
"""

from __future__ import annotations

import torch

__all__ = [
    "ATTENTION_OPS", "ATTN_BACKENDS", "AUTO", "auto_backend", "available_backends",
    "backend_problem", "get_attn_backend", "resolve_attn_backend", "set_attn_backend",
]

#: Every attention op and the backends that compute it (whatever the machine; see :func:`available_backends`).
ATTENTION_OPS: dict[str, tuple[str, ...]] = {
    "window": ("reference", "sdpa"),  # restoration.layers.window_attention (SwinIR, HAT)
    "masked_window": ("reference", "sdpa", "parity"),  # restoration.layers.masked_window_attention (TBSN)
    "neighborhood": ("reference", "flex", "natten"),  # restoration.layers.neighborhood_attention (DSwinIR)
}

#: Backends understood by :func:`restoration.layers.window_attention.window_attention`.
#: FlexAttention is deliberately absent: see the module docstring of ``window_attention.py``.
ATTN_BACKENDS: tuple[str, ...] = ATTENTION_OPS["window"]

#: Not a backend: "what :func:`auto_backend` picks for the tensors at hand".
AUTO = "auto"

_defaults: dict[str, str] = {op: AUTO for op in ATTENTION_OPS}


def available_backends(op: str = "window") -> list[str]:
    """``'auto'`` and the backends of ``op`` usable on this machine (natten only where it imports)."""
    if op not in ATTENTION_OPS:
        raise ValueError(f"unknown attention op {op!r}; one of {', '.join(ATTENTION_OPS)}")
    if op == "neighborhood":
        from restoration.layers.neighborhood_attention import available_backends as neighborhood_backends

        return [AUTO, *neighborhood_backends()]
    return [AUTO, *ATTENTION_OPS[op]]


def backend_problem(name: str | None, op: str = "window") -> str | None:
    """Why ``attn_backend: name`` cannot be used for ``op`` on this machine (None: it can; None means the default)."""
    if name is None:
        return None
    if name in (AUTO, "reference") or (op != "neighborhood" and name in ATTENTION_OPS.get(op, ())):
        return None  # decided without importing natten, whose import alone takes seconds
    available = available_backends(op)
    if name in available:
        return None
    return f"attn_backend {name!r} is not available for {op} attention; available on this machine: {available}"


def get_attn_backend(op: str = "window") -> str:
    """The process-wide default of ``op``, used where a layer got ``attn_backend=None`` (initially ``'auto'``)."""
    return _defaults[op]


def set_attn_backend(name: str, op: str = "window") -> None:
    """Change the process-wide default of ``op``: one of :func:`available_backends`."""
    problem = backend_problem(name, op)
    if problem:
        raise ValueError(problem)
    _defaults[op] = name


def auto_backend(device: torch.device | str, head_dim: int) -> str:
    """What ``'auto'`` means for tensors on ``device`` with ``head_dim`` channels per head: ``'sdpa'``
    everywhere today (the CPU kernels choose by window size themselves); the arguments keep the rule
    a function of the call, never of run-time timings."""
    del device, head_dim
    return "sdpa"


def resolve_attn_backend(name: str | None, device: torch.device | str | None = None, head_dim: int = 0) -> str:
    """Return ``name`` checked against :data:`ATTN_BACKENDS`, the global default for ``None``, and for
    ``'auto'`` :func:`auto_backend` of ``device`` and ``head_dim`` (``'auto'`` itself without a device).

    Raises:
        ValueError: ``name`` is not a known backend (the message lists the known ones).
    """
    if name is None:
        name = _defaults["window"]
    if name == AUTO:
        return AUTO if device is None else auto_backend(device, head_dim)
    if name not in ATTN_BACKENDS:
        raise ValueError(
            f"unknown attention backend {name!r}; choose one of {', '.join(ATTN_BACKENDS)} (or {AUTO!r}: "
            "the measured default for the device and head dim)"
        )
    return name
