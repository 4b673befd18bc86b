"""Peak memory of a callable, on CUDA and on the CPU.

CUDA: the caching allocator's ``max_memory_allocated`` after ``reset_peak_memory_stats`` (bytes of live
tensors, excluding the cache), minus what was allocated before the call.

CPU: PyTorch keeps no statistics for host tensors, and ``tracemalloc`` does not see them (they are
allocated in C++). We use the process' resident-set high-water mark instead (Linux only):

1. glibc's malloc is told to serve every block >= 64 KiB with its own ``mmap`` (``mallopt(M_MMAP_THRESHOLD)``,
   which also turns off the dynamic threshold), so freeing a tensor returns its pages to the OS at once and
   the RSS follows the live tensor bytes closely; ``malloc_trim(0)`` returns free heap pages before we start;
2. the kernel's peak counter ``VmHWM`` is reset by writing ``5`` to ``/proc/self/clear_refs``;
3. after the call, peak = ``VmHWM - VmRSS(before)``.

This counts everything the call touches (tensors, oneDNN scratch buffers, the autograd graph), the
CPU analogue of CUDA's allocated peak. Small allocations (< 64 KiB) may be served from already-resident
heap memory and go unseen, which is negligible at image sizes. Where it is unavailable (non-Linux, no
permission for ``clear_refs``) :func:`measure_peak_memory` returns ``None``.

The 64 KiB threshold stays set for the rest of the process. It makes every large allocation page-fault
anew, so never time code in a process after measuring memory in it (``scripts/benchmark/`` time in one
process and measure in another). It cannot be undone: glibc's dynamic threshold cannot be turned back on,
and putting back a fixed larger threshold makes later measurements wrong (blocks then come from the heap,
and freed heap blocks stay resident and count towards the next peak: a SwinIR-light training step
measured 1.70 GB instead of 1.13 GB that way).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from typing import Any, Callable

import torch

__all__ = ["measure_peak_memory", "cpu_peak_supported", "release_free_memory"]

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_MMAP_THRESHOLD_BYTES = 64 * 1024
_libc: Any = None


def _glibc() -> Any:
    """The C library when it is glibc (has ``mallopt`` and ``malloc_trim``), else ``None``."""
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim") else False
        except OSError:
            _libc = False
    return _libc or None


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise OSError(f"{key} not found in /proc/self/status")


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # "5" resets the peak RSS (VmHWM) to the current RSS


def cpu_peak_supported() -> bool:
    """Whether the RSS high-water-mark method works in this process."""
    try:
        _status_bytes("VmHWM")
        _reset_hwm()
        return True
    except OSError:
        return False


def release_free_memory() -> None:
    """Collect garbage and hand glibc's free heap pages back to the OS (``malloc_trim(0)``).

    After a big computation a process may keep gigabytes of freed heap resident; call this before
    starting another memory-hungry process (e.g. a benchmark's measuring subprocess).
    """
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def measure_peak_memory(fn: Callable[[], Any], device: torch.device | str) -> tuple[Any, int | None]:
    """Call ``fn()`` and return ``(its result, peak extra bytes during the call)``.

    Args:
        fn: The work to measure (e.g. a forward pass). Its result is returned, so keep in mind that a
            returned tensor is part of the peak.
        device: ``'cuda'``/``'cuda:N'`` uses the CUDA allocator statistics; anything else the CPU method.

    Returns:
        ``(result, peak_bytes)``; ``peak_bytes`` is ``None`` when the CPU method is unavailable.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        result = fn()
        torch.cuda.synchronize(device)
        return result, torch.cuda.max_memory_allocated(device) - base
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    release_free_memory()
    try:
        base = _status_bytes("VmRSS")
        _reset_hwm()
    except OSError:
        return fn(), None
    result = fn()
    return result, max(0, _status_bytes("VmHWM") - base)
