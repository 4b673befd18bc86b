"""Process-wide torch settings of a run: deterministic kernels, cuDNN autotuning, TF32.

Applied by ``train.py`` from ``train.deterministic`` and ``train.tf32``, before the network is
built and before the first matrix product (cuBLAS reads ``CUBLAS_WORKSPACE_CONFIG`` when it creates
its handle).

What ``deterministic: true`` makes bit-exact on a GPU (same GPU model, driver and torch): every
convolution (cuDNN deterministic algorithms), every matrix product (fixed cuBLAS workspace), scaled
dot-product attention (the fused flash/memory-efficient kernels accumulate their backward in a
non-deterministic order, so they are switched off and SDPA runs its math kernel), and neighbourhood
attention (``auto`` resolves to the reference backend, whose ``index_add_`` torch then runs
deterministically). Operations that have no deterministic CUDA kernel (``grid_sample`` and bilinear
``interpolate`` backward: DSwinIR's deformable offsets, SimpleSRNet's bilinear upsampling; TBSN's
upsamples its input, whose gradient is never computed) warn instead of failing and stay
non-deterministic. Without it, cuDNN picks the fastest algorithm per shape (``cudnn.benchmark``) and
CUDA runs agree to float tolerance, not bit for bit; the CPU is bit-exact either way.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

__all__ = ["torch_settings", "CUBLAS_WORKSPACE"]

#: cuBLAS workspace setting that makes its matrix products deterministic (CUDA >= 10.2).
CUBLAS_WORKSPACE = ":4096:8"


def _snapshot() -> dict:
    cuda = torch.backends.cuda
    return {
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "flash": cuda.flash_sdp_enabled(),
        "mem_efficient": cuda.mem_efficient_sdp_enabled(),
        "cudnn_sdp": cuda.cudnn_sdp_enabled() if hasattr(cuda, "cudnn_sdp_enabled") else None,
        "cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def _restore(state: dict) -> None:
    cuda = torch.backends.cuda
    torch.use_deterministic_algorithms(state["deterministic"], warn_only=state["warn_only"])
    torch.backends.cudnn.deterministic = state["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = state["cudnn_benchmark"]
    torch.backends.cudnn.allow_tf32 = state["cudnn_tf32"]
    torch.set_float32_matmul_precision(state["matmul_precision"])
    cuda.enable_flash_sdp(state["flash"])
    cuda.enable_mem_efficient_sdp(state["mem_efficient"])
    if state["cudnn_sdp"] is not None:
        cuda.enable_cudnn_sdp(state["cudnn_sdp"])
    if state["cublas"] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = state["cublas"]


@contextlib.contextmanager
def torch_settings(deterministic: bool = False, tf32: bool | None = None) -> Iterator[None]:
    """Apply the run's kernel settings to this process for the duration of the block, then put the
    previous ones back (so that one in-process run, e.g. in a test, does not change the next).

    Args:
        deterministic: Deterministic algorithms everywhere torch has them (see the module docstring).
        tf32: True: TF32 tensor cores for fp32 matmuls and convolutions; False: full fp32 for both;
            None: torch's defaults (convolutions TF32, matmuls full fp32).
    """
    previous = _snapshot()
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.enable_flash_sdp(False)
        torch.backends.cuda.enable_mem_efficient_sdp(False)
        if hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
            torch.backends.cuda.enable_cudnn_sdp(False)
    else:
        # training shapes repeat every iteration: autotuning each convolution once pays off
        torch.backends.cudnn.benchmark = True
    if tf32 is not None:
        torch.set_float32_matmul_precision("high" if tf32 else "highest")
        torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        _restore(previous)
