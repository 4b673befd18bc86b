"""Process-group setup and the few collective helpers the trainer needs.

Rank rules (written down so nobody has to guess): every rank runs training and its share of
validation; only rank 0 writes logs, tensorboard, images and checkpoints; any decision taken from
local data (stop after a signal, skip a non-finite step, an image that failed) is reduced across ranks so
all ranks take it. Every rank reaches every collective on every path, failures included: a rank that
skipped one would leave the others waiting into the timeout (30 minutes by default).

When a rank dies anyway (its own one-line error, a crash, SIGKILL), the others fail in their next
collective; :func:`peer_failure` recognises that, so they stop with one line saying another rank failed,
not with a traceback that reads like a bug of their own. A rank started by a launcher dies with it
(:func:`~restoration.utils.stop_signals.die_with_parent`).

Every process group made here has a CPU backend (gloo) beside the GPU one (``"cpu:gloo,cuda:nccl"``):
the small host-side decisions (the stop flag, gathered RNG states and validation scores) then travel
through gloo without a GPU synchronisation, and a CPU tensor handed to a collective can never meet
NCCL's "No backend type associated with device type cpu".
"""

from __future__ import annotations

import datetime
import gc
import os
import subprocess
from typing import Any

import torch
import torch.distributed as torch_dist

from restoration.errors import DistError
from restoration.utils.stop_signals import die_with_parent

__all__ = [
    "DistError",
    "init_dist",
    "backend_spec",
    "backend_problem",
    "local_rank",
    "get_dist_info",
    "is_main_process",
    "barrier",
    "finish_dist",
    "all_gather_objects",
    "gather_objects_on_main",
    "any_across_ranks",
    "max_across_ranks",
    "peer_failure",
    "cleanup_dist",
]

#: Variables ``torchrun`` sets for every process; ``--launcher pytorch`` needs all of them.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: What ``srun`` sets that ``--launcher slurm`` reads (SLURM_LOCALID is optional: 0 when absent).
SLURM_ENV = ("SLURM_NODELIST", "SLURM_NTASKS", "SLURM_PROCID")


def backend_spec(backend: str, cuda_available: bool) -> str:
    """The ``init_process_group`` backend string for an option value, always with a CPU backend.

    Args:
        backend: ``'auto'``, ``'nccl'``, ``'gloo'`` or a device map such as ``'cuda:nccl'``.
        cuda_available: Whether this process trains on a GPU.

    Returns:
        ``'auto'`` -> ``'cpu:gloo,cuda:nccl'`` on GPUs, ``'gloo'`` on the CPU; ``'nccl'`` ->
        ``'cpu:gloo,cuda:nccl'``; a device map without ``cpu:`` gets ``cpu:gloo,`` in front.
    """
    if backend == "auto":
        backend = "nccl" if cuda_available else "gloo"
    if backend == "gloo":
        return "gloo"  # gloo serves CPU and CUDA tensors
    if ":" not in backend:
        backend = f"cuda:{backend}"
    if not any(part.strip().startswith("cpu:") for part in backend.split(",")):
        backend = f"cpu:gloo,{backend}"
    return backend


_KNOWN_BACKENDS = ("nccl", "gloo", "mpi", "ucc", "xccl")


def backend_problem(backend: str) -> str | None:
    """Why ``backend`` (``dist_params.backend``) cannot be used, or None when it can."""
    if backend == "auto" or backend in _KNOWN_BACKENDS:
        return None
    for part in backend.split(","):
        device, _, name = part.strip().partition(":")
        if device not in ("cpu", "cuda") or name not in _KNOWN_BACKENDS:
            return (f"{backend!r} is not a backend; use auto, nccl, gloo, or a device map such as "
                    "'cpu:gloo,cuda:nccl'")
    return None


def local_rank() -> int:
    """This process's index on its node (``LOCAL_RANK``; 0 without a launcher)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def init_dist(launcher: str, backend: str = "auto", port: int = 29500, timeout_s: float | None = None) -> None:
    """Initialise the default process group and bind this process to its GPU.

    Args:
        launcher: ``'pytorch'`` (``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) or
            ``'slurm'`` (read SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, SLURM_NODELIST; master =
            first node).
        backend: See :func:`backend_spec` (``dist_params.backend``).
        port: Master port for slurm when MASTER_PORT is not set (``dist_params.port``).
        timeout_s: Collective timeout in seconds (``dist_params.timeout``); None keeps torch's default.

    Raises:
        DistError: ``--launcher pytorch`` without torchrun's environment, or an unknown launcher.
    """
    if launcher == "slurm":
        missing = [key for key in SLURM_ENV if key not in os.environ]
        if missing:
            raise DistError(
                f"--launcher slurm needs srun's environment ({', '.join(missing)} not set); start with "
                "'srun --ntasks=<gpus> python train.py -opt ... --launcher slurm', or drop --launcher"
            )
        node_list = os.environ["SLURM_NODELIST"]
        addr = subprocess.getoutput(f"scontrol show hostname {node_list} | head -n1")
        os.environ.setdefault("MASTER_PORT", str(port))
        os.environ.setdefault("MASTER_ADDR", addr)
        os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
        os.environ["RANK"] = os.environ["SLURM_PROCID"]
        # the task's index on its node: PROCID % device_count is wrong when nodes run fewer tasks than GPUs
        os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    elif launcher == "pytorch":
        missing = [key for key in TORCHRUN_ENV if key not in os.environ]
        if missing:
            raise DistError(
                f"--launcher pytorch needs torchrun's environment ({', '.join(missing)} not set); start with "
                "'torchrun --nproc_per_node=<gpus> train.py -opt ... --launcher pytorch', or drop --launcher"
            )
    else:
        raise DistError(f"unknown launcher '{launcher}'; use none, pytorch or slurm")
    # torchrun starts each rank in a session of its own: without this, SIGKILL to the agent would leave
    # the ranks training (and saving) on their own; with it they get SIGTERM, save and exit
    die_with_parent()
    cuda = torch.cuda.is_available()
    if cuda:
        # ranks beyond the visible GPUs share them (e.g. 2 ranks on one GPU for testing)
        torch.cuda.set_device(local_rank() % torch.cuda.device_count())
    kwargs: dict[str, Any] = {}
    if timeout_s is not None:
        kwargs["timeout"] = datetime.timedelta(seconds=float(timeout_s))
    store = _attempt_store(kwargs.get("timeout"))
    if store is not None:
        kwargs.update(store=store, rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    torch_dist.init_process_group(backend=backend_spec(backend, cuda), **kwargs)


def _attempt_store(timeout: datetime.timedelta | None) -> torch_dist.Store | None:
    """Under ``torchrun``: the agent's store, with keys of this restart attempt only; None elsewhere.

    The agent keeps one store for all attempts of ``--max-restarts``, and torch (2.14) adds no attempt
    prefix: a restarted rank read the address a rank of the failed attempt had left there and its process
    group timed out connecting to it ("Gloo connectFullMesh failed ... Connection refused").
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "TORCHELASTIC_RESTART_COUNT" not in os.environ:
        return None
    client = torch_dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                 timeout=timeout or datetime.timedelta(minutes=30))
    return torch_dist.PrefixStore(f"restoration/attempt_{os.environ['TORCHELASTIC_RESTART_COUNT']}", client)


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


def gather_objects_on_main(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (a list in rank order), None on the other ranks.

    For large per-rank states (e.g. a training-pair pool): only rank 0 holds them all, unlike
    :func:`all_gather_objects`.
    """
    rank, world = get_dist_info()
    if world == 1:
        return [obj]
    out: list[Any] | None = [None] * world if rank == 0 else None
    torch_dist.gather_object(obj, out, dst=0)
    return out


def _host_collective_device() -> torch.device:
    """Where a small host-side flag is reduced: the CPU when the group has a CPU backend (ours always
    does; no GPU synchronisation), else this process's GPU (a group made elsewhere, e.g. NCCL only)."""
    config = str(torch_dist.get_backend_config())
    if config == "gloo" or "cpu:" in config or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def any_across_ranks(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    return bool(max_across_ranks([int(flag)])[0])


def max_across_ranks(values: list[int]) -> list[int]:
    """The element-wise maximum of every rank's ``values`` (same length on every rank), on every rank.

    Several flags travel in one small all-reduce (e.g. "has an image", "was asked to stop", "failed").
    """
    if get_dist_info()[1] == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.int64, device=_host_collective_device())
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return [int(v) for v in t.tolist()]


#: What gloo says when the rank at the other end of a connection has gone (exited, crashed, killed).
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "remote worker crashing")


def peer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective failing because another rank has gone, not a bug of this rank.

    True in a multi-rank run for NCCL's and the network's errors (``DistBackendError``,
    ``DistNetworkError``) and for gloo's "connection closed/reset by peer". Timeouts (of a collective or
    of the store) are not included: they also mean ranks disagreeing on which collective comes next, a
    bug worth its traceback.
    """
    if get_dist_info()[1] == 1:
        return False
    if isinstance(exc, (torch_dist.DistBackendError, torch_dist.DistNetworkError)):
        return True
    return isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in _PEER_GONE)


def cleanup_dist() -> None:
    """Destroy the process group (without waiting for the other ranks; see :func:`finish_dist`)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        gc.collect()  # a DDP wrapper in a reference cycle must not outlive the group (see finish_dist)
        torch_dist.destroy_process_group()


def finish_dist() -> None:
    """The end of a run: free what still holds the process group, wait for every rank, destroy the group.

    Call it after the trainer (its DDP wrappers) has gone out of scope. The collection frees reference cycles
    too, while the interpreter is whole: a DDP wrapper that outlives ``destroy_process_group`` is otherwise
    freed during interpreter shutdown, where gloo's worker threads abort the process ("terminate called
    without an active exception", exit -6 after "training finished"; the counts are in docs/benchmarks.md,
    "Process-group shutdown").
    """
    if get_dist_info()[1] > 1:
        gc.collect()
    barrier()
    cleanup_dist()
