"""Build the data loaders: per-sample seeding for training, sharded evaluation, prefetching."""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.util  # registers its exit hook before ours, so ours runs first
import signal
from typing import Any, Callable, Iterator, Mapping

import torch
from torch.utils.data import DataLoader, Dataset

from restoration.data import register_datasets
from restoration.data.base_dataset import COMMON_OPTIONS
from restoration.schema import bind_options
from restoration.data.sampler import ResumableSampler, SeededDataset, ShardSampler
from restoration.errors import DataError
from restoration.registry import DATASET_REGISTRY
from restoration.utils.image_io import read_image_size
from restoration.utils.stop_signals import STOP_SIGNALS

__all__ = ["build_dataset", "build_train_loader", "build_eval_loader", "CUDAPrefetcher", "IgnoreStopSignals",
           "check_image_files"]


class IgnoreStopSignals:
    """A DataLoader ``worker_init_fn``: the worker ignores the training's stop signals (SIGTERM, SIGINT,
    SIGHUP, SIGUSR1: :data:`~restoration.utils.stop_signals.STOP_SIGNALS`), then runs ``then``.

    torchrun's shutdown, slurm pre-emption, ``kill -- -PGID``, Ctrl-C and a dropped ssh session signal
    the whole process group. Workers that died of it would make the main process crash (with nothing saved) before it
    reaches the iteration boundary where it saves; ignoring the signal lets the main process decide,
    and the workers end when it shuts the loader down. A class, not a closure, so it pickles for the
    ``spawn`` start method.
    """

    def __init__(self, then: Callable[[int], None] | None = None) -> None:
        self.then = then
        _register_exit_hook()

    def __call__(self, worker_id: int) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        if self.then is not None:
            self.then(worker_id)


def build_dataset(opt: Mapping[str, Any]) -> Dataset:
    """Instantiate the dataset named by ``opt['type']`` with the whole option dict (BasicSR style)."""
    register_datasets()
    return DATASET_REGISTRY.get(opt["type"])(dict(opt))


_EXIT_HOOK_REGISTERED = False


def _kill_daemonic_children() -> None:
    """At exit multiprocessing sends SIGTERM to daemonic children (DataLoader workers still alive) and
    then joins them: a worker that ignores SIGTERM would hang the exit forever. Daemonic children end
    with their parent by contract, so they get SIGKILL here first."""
    for child in multiprocessing.active_children():
        if child.daemon:
            child.kill()
            child.join(timeout=5)


def _register_exit_hook() -> None:
    global _EXIT_HOOK_REGISTERED
    if not _EXIT_HOOK_REGISTERED:
        atexit.register(_kill_daemonic_children)  # atexit runs last-registered first
        _EXIT_HOOK_REGISTERED = True


def check_image_files(dataset: Dataset, where: str, gt_size: int | None, scale: int) -> int:
    """Read the header of every image file of ``dataset`` (disk backend), or look up every key it lists in its
    LMDB (lmdb backend), before training starts.

    An unreadable validation image, or a training image smaller than the crop, would otherwise fail
    hours into the run (or at its first validation) in a half-made experiment folder.

    Args:
        dataset: A dataset with ``paths`` (file paths, or ``{'gt_path', 'lq_path'}`` dicts).
        where: The option section, for messages (``datasets.train``).
        gt_size: Training crop on GT images (LQ images need ``gt_size // scale``); None: no size check.

    Returns:
        The number of files (or LMDB keys) checked (0 for datasets without a file list).

    Raises:
        ImageReadError: A file is missing or its header is not an image's.
        DataError: A training image is smaller than its crop; names the file.
    """
    if getattr(dataset, "io_type", "disk") == "lmdb" and isinstance(getattr(dataset, "paths", None), list):
        return _check_lmdb_keys(dataset, where)
    if getattr(dataset, "io_type", "disk") != "disk" or not isinstance(getattr(dataset, "paths", None), list):
        return 0
    checked = 0
    for entry in dataset.paths:  # type: ignore[attr-defined]
        files = entry.items() if isinstance(entry, Mapping) else [("gt_path", entry)]
        sizes = {}
        for key, path in files:
            if not isinstance(path, str):
                continue
            size = sizes[key] = read_image_size(path)
            checked += 1
            need = None if gt_size is None else (gt_size // scale if key == "lq_path" else gt_size)
            if size is not None and need is not None and min(size) < need:
                raise DataError(f"'{where}': {path} is {size[0]}x{size[1]} pixels, smaller than the "
                                f"{need}x{need} training crop (gt_size {gt_size}); lower gt_size or remove the image")
        gt, lq = sizes.get("gt_path"), sizes.get("lq_path")
        check = getattr(dataset, "pair_size_problem", None)
        if gt_size is not None and gt is not None and lq is not None and check is not None:
            # the dataset's own rule, before anything is built: it would stop at this pair mid-run
            problem = check(gt, lq, entry["gt_path"], entry["lq_path"])
            if problem:
                raise DataError(f"'{where}': {problem}")
    return checked


def _check_lmdb_keys(dataset: Dataset, where: str) -> int:
    """Every key a dataset lists (its ``meta_info.txt``) is in its LMDB, else one DataError naming the first few."""
    backend = getattr(dataset, "backend", None)
    if not hasattr(backend, "missing_keys"):
        return 0
    by_client: dict[str, list[str]] = {}
    for entry in dataset.paths:  # type: ignore[attr-defined]
        for key, value in (entry.items() if isinstance(entry, Mapping) else [("gt_path", entry)]):
            if isinstance(value, str):
                by_client.setdefault(key.removesuffix("_path"), []).append(value)
    for client, keys in by_client.items():
        missing = backend.missing_keys(keys, client)
        if missing:
            raise DataError(f"'{where}': {len(missing)} of the {len(keys)} keys listed in meta_info.txt are not in "
                            f"LMDB {backend.db_paths[client]}: {', '.join(missing[:5])}"
                            + (" ..." if len(missing) > 5 else "") + "; recreate it with scripts/data/create_lmdb.py")
    return sum(len(keys) for keys in by_client.values())


def build_train_loader(
    dataset: Dataset, opt: Mapping[str, Any], seed: int, rank: int, world_size: int, use_cuda: bool
) -> tuple[DataLoader, ResumableSampler]:
    """Training loader: ``batch_size_per_gpu`` per rank, shuffled and resumable, ``drop_last``.

    ``opt`` is the dataset's option dict; its loader keys are read bound to their declaration
    (:data:`~restoration.data.base_dataset.COMMON_OPTIONS`), which holds their defaults.

    Returns:
        The loader and its sampler (call ``sampler.set_epoch(epoch, start)`` before iterating).
    """
    opt = bind_options(opt, COMMON_OPTIONS)
    sampler = ResumableSampler(
        len(dataset),  # type: ignore[arg-type]
        num_replicas=world_size,
        rank=rank,
        ratio=int(opt["dataset_enlarge_ratio"]),
        seed=seed,
        shuffle=bool(opt["use_shuffle"]),
    )
    workers = int(opt["num_worker_per_gpu"])
    # A private generator: creating a loader iterator must not draw from the global torch RNG, or a
    # resumed run (which creates iterators at different moments) would diverge from an uninterrupted one.
    generator = torch.Generator()
    generator.manual_seed(seed + rank)
    # pin_memory and persistent_workers are declared without a default: unset, they follow the device
    # and the worker count.
    pin_memory = use_cuda if opt["pin_memory"] is None else opt["pin_memory"]
    persistent = workers > 0 if opt["persistent_workers"] is None else opt["persistent_workers"]
    loader = DataLoader(
        SeededDataset(dataset),
        batch_size=int(opt["batch_size_per_gpu"]),
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=bool(pin_memory),
        persistent_workers=bool(persistent),
        prefetch_factor=int(opt["prefetch_factor"]) if workers > 0 else None,
        generator=generator,
        worker_init_fn=IgnoreStopSignals(),
    )
    return loader, sampler


def build_eval_loader(dataset: Dataset, opt: Mapping[str, Any], rank: int, world_size: int) -> DataLoader:
    """Evaluation loader: batch 1, each image on exactly one rank."""
    workers = int(bind_options(opt, COMMON_OPTIONS)["num_worker_per_gpu"])
    return DataLoader(
        dataset,
        batch_size=1,
        sampler=ShardSampler(len(dataset), world_size, rank),  # type: ignore[arg-type]
        num_workers=workers,
        worker_init_fn=IgnoreStopSignals(),
    )


class CUDAPrefetcher:
    """Copy the next batch to the GPU on a side stream while the current one is being used."""

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self.loader = loader
        self.device = device
        self.stream = torch.cuda.Stream(device=device)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        it = iter(self.loader)
        nxt = self._preload(it)
        while nxt is not None:
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            batch = nxt
            for v in batch.values():
                if isinstance(v, torch.Tensor):
                    v.record_stream(torch.cuda.current_stream(self.device))
            nxt = self._preload(it)
            yield batch

    def _preload(self, it: Iterator[dict[str, Any]]) -> dict[str, Any] | None:
        try:
            batch = next(it)
        except StopIteration:
            return None
        with torch.cuda.stream(self.stream):
            return {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
