"""Build the data loaders: per-sample seeding for training, sharded evaluation, prefetching."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch
from torch.utils.data import DataLoader, Dataset

from restoration.data.base_dataset import COMMON_OPTIONS, bind_options
from restoration.data.sampler import ResumableSampler, SeededDataset, ShardSampler
from restoration.registry import DATASET_REGISTRY

__all__ = ["build_dataset", "build_train_loader", "build_eval_loader", "CUDAPrefetcher"]


def build_dataset(opt: Mapping[str, Any]) -> Dataset:
    """Instantiate the dataset named by ``opt['type']`` with the whole option dict (BasicSR style)."""
    from restoration.data import register_datasets

    register_datasets()
    return DATASET_REGISTRY.get(opt["type"])(dict(opt))


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
