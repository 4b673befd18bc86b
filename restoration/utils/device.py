"""Where this process computes: the one rule shared by train.py and test.py."""

from __future__ import annotations

import torch

from restoration.utils.dist import local_rank

__all__ = ["select_device"]


def select_device(num_gpu: int) -> torch.device:
    """This process's device for ``num_gpu`` (resolved options: a count, 0 = the CPU).

    With GPUs, rank ``LOCAL_RANK`` of a node uses GPU ``LOCAL_RANK % device_count`` (the one
    :func:`restoration.utils.dist.init_dist` bound it to; more ranks than GPUs share them).
    """
    if num_gpu and torch.cuda.is_available():
        return torch.device("cuda", local_rank() % torch.cuda.device_count())
    return torch.device("cpu")
