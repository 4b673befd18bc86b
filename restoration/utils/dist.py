"""Process-group setup and the few collective helpers the trainer needs.

Rank rules (written down so nobody has to guess): every rank runs training and its share of
validation; only rank 0 writes logs, tensorboard, images and checkpoints; any decision taken from
local data (stop after a signal, skip a non-finite step) is reduced across ranks so all ranks take it.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import torch
import torch.distributed as torch_dist

__all__ = [
    "init_dist",
    "get_dist_info",
    "is_main_process",
    "barrier",
    "all_gather_objects",
    "any_across_ranks",
    "cleanup_dist",
]


def init_dist(launcher: str, backend: str = "auto", port: int = 29500) -> None:
    """Initialise the default process group.

    Args:
        launcher: ``'pytorch'`` (``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) or
            ``'slurm'`` (read SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST; master = first node).
        backend: ``'nccl'``, ``'gloo'`` or ``'auto'`` (nccl when CUDA is available, else gloo).
        port: Master port for slurm when MASTER_PORT is not set.
    """
    if launcher == "slurm":
        proc_id = int(os.environ["SLURM_PROCID"])
        ntasks = int(os.environ["SLURM_NTASKS"])
        node_list = os.environ["SLURM_NODELIST"]
        addr = subprocess.getoutput(f"scontrol show hostname {node_list} | head -n1")
        os.environ.setdefault("MASTER_PORT", str(port))
        os.environ.setdefault("MASTER_ADDR", addr)
        os.environ["WORLD_SIZE"] = str(ntasks)
        os.environ["RANK"] = str(proc_id)
        os.environ["LOCAL_RANK"] = str(proc_id % max(torch.cuda.device_count(), 1))
    elif launcher != "pytorch":
        raise ValueError(f"unknown launcher '{launcher}'; use none, pytorch or slurm")
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    torch_dist.init_process_group(backend=backend)


def get_dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without a process group."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_rank(), torch_dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return get_dist_info()[0] == 0


def barrier() -> None:
    if get_dist_info()[1] > 1:
        torch_dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (a one-element list without a process group)."""
    world = get_dist_info()[1]
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    torch_dist.all_gather_object(out, obj)
    return out


def any_across_ranks(flag: bool, device: torch.device | None = None) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    if get_dist_info()[1] == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device or "cpu")
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def cleanup_dist() -> None:
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
