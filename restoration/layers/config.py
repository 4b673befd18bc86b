"""The one switch for every attention op: which backend computes it, and what ``'auto'`` means.

Every network takes one option, ``attn_backend`` (SwinIR and HAT: window attention; TBSN: masked window
attention; DSwinIR: neighbourhood attention). ``None``, every architecture's default, means "the process-wide
default of that op" (:func:`get_attn_backend`), so a whole program can be switched at run time::

    from restoration.layers import config
    config.set_attn_backend("reference")                       # window attention (SwinIR, HAT)
    config.set_attn_backend("reference", op="neighborhood")    # DSwinIR
    config.available_backends("neighborhood")                  # ['auto', 'reference', 'flex', ...] here

Every op's ``'reference'`` is the official arithmetic; every other backend computes the same function, which
the op's tests prove forward and backward. :func:`resolve_backend` is the only place where a backend is
chosen: ``'auto'`` is a rule of the op, the device, the shapes and ``torch.are_deterministic_algorithms_enabled``,
never of timings taken at run time, so runs are reproducible. The rules (what they pick and why is measured
in docs/benchmarks.md):

* ``window`` (:mod:`restoration.layers.window_attention`): ``'sdpa'`` on every device, the CPU's hand-tuned
  kernels or SDPA's memory-efficient kernel elsewhere.
* ``masked_window`` (:mod:`restoration.layers.masked_window_attention`): ``'parity'`` for an even window (a
  quarter of the logits), else ``'sdpa'``.
* ``neighborhood`` (:mod:`restoration.layers.neighborhood_attention`): off CUDA, or in deterministic mode,
  ``'reference'``; on CUDA ``'natten'`` (installed, no bias, a head dim its kernels are known to handle), else
  ``'flex'`` (torch >= 2.6), else ``'reference'``.

Ops that no constructor argument reaches (the depthwise convolution's backward, the channel norms' training path)
keep their process-wide choice in an :class:`OpSwitch` (``set``, and ``using`` for a block).

This module imports nothing of the package: every op imports it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
from typing import Iterator

import torch

__all__ = [
    "ATTENTION_OPS", "AUTO", "OpSwitch", "available_backends", "backend_problem", "get_attn_backend",
    "kernel_available", "resolve_backend", "set_attn_backend",
]

#: Every attention op and the backends that compute it (whatever the machine; see :func:`available_backends`).
ATTENTION_OPS: dict[str, tuple[str, ...]] = {
    "window": ("reference", "sdpa"),
    "masked_window": ("reference", "sdpa", "parity"),
    "neighborhood": ("reference", "flex", "natten"),
}

#: Not a backend: "what :func:`resolve_backend` picks for the call at hand".
AUTO = "auto"

#: Head dims NATTEN's fused CUDA kernels are known to handle; others go to flex under ``'auto'``.
NATTEN_AUTO_HEAD_DIMS = (32, 64, 128)

_defaults: dict[str, str] = {op: AUTO for op in ATTENTION_OPS}
_FOUND: dict[str, bool] = {}  # optional kernel -> usable, decided once per process


# assume_constant_result: a compiled network calls these through resolve_backend; Dynamo then takes the
# answer as a constant instead of tracing find_spec (torch 2.11 breaks the graph there, so a fullgraph
# compile failed). A plain dict as the cache: Dynamo 2.11 traces through an lru_cache wrapper.
@torch.compiler.assume_constant_result
def _has_flex() -> bool:
    if "flex" not in _FOUND:
        _FOUND["flex"] = _flex_usable()
    return _FOUND["flex"]


@torch.compiler.assume_constant_result
def _has_natten() -> bool:
    if "natten" not in _FOUND:
        _FOUND["natten"] = _natten_usable()
    return _FOUND["natten"]


def _flex_usable() -> bool:
    if importlib.util.find_spec("torch.nn.attention.flex_attention") is None:
        return False
    from torch.nn.attention.flex_attention import BlockMask  # optional dependency

    # torch >= 2.6: block masks for lengths that are not multiples of the block size. torch 2.5's flex
    # called mask_mod on padded positions, and a compiled DSwinIR gave wrong outputs (docs/benchmarks.md)
    return "seq_lengths" in inspect.signature(BlockMask.from_kv_blocks).parameters


def _natten_usable() -> bool:
    if importlib.util.find_spec("natten") is None:
        return False
    try:
        import natten  # optional dependency

        return hasattr(natten, "na2d")  # natten >= 0.20 (fused op); 0.17's na2d had another API
    except Exception:  # a broken install must not break the reference path
        return False


def kernel_available(name: str) -> bool:
    """Whether an optional kernel (``'flex'``, ``'natten'``) is usable here; every other backend always is."""
    return {"flex": _has_flex, "natten": _has_natten}.get(name, lambda: True)()


def _check_op(op: str) -> None:
    if op not in ATTENTION_OPS:
        raise ValueError(f"unknown attention op {op!r}; one of {', '.join(ATTENTION_OPS)}")


def available_backends(op: str = "window") -> list[str]:
    """``'auto'`` and the backends of ``op`` usable on this machine (flex and natten only where they work)."""
    _check_op(op)
    return [AUTO, *(b for b in ATTENTION_OPS[op] if kernel_available(b))]


def backend_problem(name: str | None, op: str = "window") -> str | None:
    """Why ``attn_backend: name`` cannot be used for ``op`` on this machine (None: it can, or it is the default)."""
    if name is None or name == AUTO or (name in ATTENTION_OPS.get(op, ()) and name not in ("flex", "natten")):
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


def _auto(op: str, device: torch.device, head_dim: int, has_bias: bool, window_size: int | None) -> str:
    """The ``'auto'`` rule of ``op`` (module docstring)."""
    if op == "window":
        return "sdpa"
    if op == "masked_window":
        return "parity" if window_size is not None and window_size % 2 == 0 else "sdpa"
    # neighborhood: the CPU decides before probing natten, whose import alone takes seconds; deterministic mode
    # (train.deterministic): the fused kernels accumulate gradients in a non-deterministic order
    if device.type != "cuda" or torch.are_deterministic_algorithms_enabled():
        return "reference"
    if not has_bias and head_dim in NATTEN_AUTO_HEAD_DIMS and _has_natten():
        return "natten"
    return "flex" if _has_flex() else "reference"


def resolve_backend(
    op: str,
    name: str | None,
    device: torch.device | str | None = None,
    *,
    head_dim: int = 0,
    has_bias: bool = False,
    needs_grad: bool = False,
    window_size: int | None = None,
) -> str:
    """The backend that computes one call of ``op``: the one place where backends are chosen.

    Args:
        op: A key of :data:`ATTENTION_OPS`.
        name: ``attn_backend`` of the layer: a backend, ``'auto'``, or None (the process-wide default).
        device: Device of the call; None (a layer checking its option at construction) leaves ``'auto'``
            unresolved.
        head_dim: Channels per head (neighbourhood attention's natten rule).
        has_bias: A relative-position bias is added (natten has none).
        needs_grad: Autograd will need a backward pass (flex and natten have none on the CPU).
        window_size: Query window side (masked window attention: ``'parity'`` needs it even).

    Raises:
        ValueError: an unknown or unavailable backend, or one that cannot do this call; the message says
            what can.
    """
    _check_op(op)
    name = _defaults[op] if name is None else name
    if name != AUTO and name not in ATTENTION_OPS[op]:
        raise ValueError(f"unknown {op} attention backend {name!r}; choose one of {', '.join(ATTENTION_OPS[op])} "
                         f"or {AUTO!r}; available on this machine: {available_backends(op)}")
    if name == "parity" and window_size is not None and window_size % 2:
        raise ValueError(f"attention backend 'parity' needs an even window_size, got {window_size}")
    if device is None:
        return name
    device = torch.device(device)
    if name == AUTO:
        return _auto(op, device, head_dim, has_bias, window_size)
    if op == "neighborhood" and name != "reference":
        if not kernel_available(name):
            raise ValueError(f"unknown or unavailable neighbourhood-attention backend {name!r}; "
                             f"available on this machine: {available_backends(op)}")
        if name == "natten" and has_bias:
            raise ValueError("backend 'natten' (natten>=0.20 na2d) does not support a relative-position bias; "
                             "use backend='reference' or 'flex' (or 'auto')")
        if device.type == "cpu" and needs_grad:
            raise ValueError(f"backend {name!r} has no backward pass on CPU (FlexAttention limitation); "
                             "use backend='reference' for CPU training")
    return name


class OpSwitch:
    """The process-wide backend of an op that no constructor argument reaches (the depthwise convolution's
    backward, the channel norms' training path): one value among ``choices``, initially the first.

    Args:
        what: The op, as error messages name it (``"unknown {what} backend ..."``).
        choices: Its backends, the default first.
    """

    def __init__(self, what: str, choices: tuple[str, ...]) -> None:
        self.what, self.choices, self.value = what, choices, choices[0]

    def check(self, name: str) -> None:
        """Raise ``ValueError`` unless ``name`` is one of :attr:`choices`."""
        if name not in self.choices:
            raise ValueError(f"unknown {self.what} backend {name!r}; one of {', '.join(self.choices)}")

    def set(self, name: str) -> None:
        """Make ``name`` the process-wide backend."""
        self.check(name)
        self.value = name

    @contextlib.contextmanager
    def using(self, name: str) -> Iterator[None]:
        """``name`` for the duration of the block, then the previous value again."""
        previous = self.value
        self.set(name)
        try:
            yield
        finally:
            self.value = previous
