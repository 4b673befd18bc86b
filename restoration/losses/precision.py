"""AMP safety for losses: compute in float32 (or float64) whatever the autocast state and input dtypes.

Frequency transforms, variances and SSIM's ``sigma² = E[x²] - E[x]²`` lose most of their digits in float16 or
bfloat16 (and ``torch.fft`` has no half kernels on the CPU), so every toolbox loss runs its forward through
:func:`full_precision`: half-precision tensors are upcast to float32, float64 stays float64 (the tests' references),
and autocast is switched off for the device so the operations inside are not cast back down.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor

__all__ = ["full_precision", "upcast"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def upcast(x: Tensor) -> Tensor:
    """``x`` in float32 when it is float16/bfloat16, unchanged otherwise."""
    return x.float() if x.dtype in _LOW_PRECISION else x


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Autocast off on ``device``'s type for the block (a no-op outside autocast)."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield
