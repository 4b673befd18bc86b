"""Global defaults for the shared layers: the one place where fast paths are switched.

Every attention layer takes an ``attn_backend`` argument; ``None`` (the default of every
architecture) means "use :func:`get_attn_backend`", so a whole program can be switched at run time::

    from restoration.layers import config
    config.set_attn_backend("reference")   # explicit q @ k^T + bias + mask, softmax

Backends (all compute the same function; ``tests/test_window_attention.py`` proves them equal,
forward and backward):

* ``'reference'``: the official SwinIR/HAT arithmetic, step by step. Slowest, most memory.
* ``'sdpa'``: fused kernels: on the CPU SDPA's flash kernel forward plus a memory-lean hand-written
  backward (no stored attention matrix); elsewhere
  :func:`torch.nn.functional.scaled_dot_product_attention` with the relative-position bias and the
  shifted-window mask folded into one additive float mask.
"""

from __future__ import annotations

__all__ = ["ATTN_BACKENDS", "get_attn_backend", "set_attn_backend", "resolve_attn_backend"]

#: Backends understood by :func:`restoration.layers.window_attention.window_attention`.
#: FlexAttention is deliberately absent: see the module docstring of ``window_attention.py``.
ATTN_BACKENDS: tuple[str, ...] = ("reference", "sdpa")

_default_attn_backend = "sdpa"


def get_attn_backend() -> str:
    """The process-wide default attention backend (initially ``'sdpa'``)."""
    return _default_attn_backend


def set_attn_backend(name: str) -> None:
    """Change the process-wide default attention backend used where a layer got ``attn_backend=None``."""
    global _default_attn_backend
    _default_attn_backend = resolve_attn_backend(name)


def resolve_attn_backend(name: str | None) -> str:
    """Return ``name`` checked against :data:`ATTN_BACKENDS`, or the global default for ``None``.

    Raises:
        ValueError: ``name`` is not a known backend (the message lists the known ones).
    """
    if name is None:
        return _default_attn_backend
    if name not in ATTN_BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {', '.join(ATTN_BACKENDS)}")
    return name
