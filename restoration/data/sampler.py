"""A resumable, distributed, epoch-reseeded training sampler and the per-sample seeding wrapper.

Why per-sample seeds: random crops/flips/noise must not depend on which worker decodes a sample or on
whether the run was interrupted. The sampler yields ``(index, seed)`` pairs where the seed is a pure
function of ``(manual_seed, epoch, position)``; :class:`SeededDataset` seeds Python, NumPy and torch
with it around each ``__getitem__``. Together with the saved position inside the epoch this makes a
resumed run draw exactly the batches, crops and noise of an uninterrupted one.
"""

from __future__ import annotations

import math
import random
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

__all__ = ["ResumableSampler", "SeededDataset", "ShardSampler", "sample_seed"]


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 31-bit seed for one sample, decorrelated across epochs and positions."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, position]).generate_state(1)[0]) & 0x7FFFFFFF


class ResumableSampler(Sampler):
    """Shuffled, enlarged, rank-sharded indices that can start mid-epoch.

    Args:
        dataset_len: Number of distinct samples.
        num_replicas: World size; ``rank``: this process.
        ratio: ``dataset_enlarge_ratio`` — indices cover ``len * ratio`` positions (mod ``len``), so one
            "epoch" is long enough to amortise loader start-up on small datasets.
        seed: ``manual_seed``; the shuffle of epoch ``e`` uses ``seed + e`` on every rank.
        shuffle: Shuffle (training) or keep the order.
    """

    def __init__(
        self,
        dataset_len: int,
        num_replicas: int = 1,
        rank: int = 0,
        ratio: int = 1,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        self.dataset_len = dataset_len
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0
        self.num_samples = math.ceil(dataset_len * ratio / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch (reseeds the shuffle) and skip this rank's first ``start`` samples."""
        self.epoch = epoch
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.total_size, generator=g).tolist()
        else:
            order = list(range(self.total_size))
        mine = order[self.rank : self.total_size : self.num_replicas]
        for pos in range(self.start, len(mine)):
            global_pos = pos * self.num_replicas + self.rank
            yield mine[pos] % self.dataset_len, sample_seed(self.seed, self.epoch, global_pos)

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardSampler(Sampler):
    """Evaluation indices ``rank, rank + world, ...``: every image exactly once over all ranks, no padding."""

    def __init__(self, dataset_len: int, num_replicas: int = 1, rank: int = 0) -> None:
        self.indices = list(range(rank, dataset_len, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class SeededDataset(Dataset):
    """Wrap a dataset so ``ds[(index, seed)]`` runs ``dataset[index]`` with all generators seeded.

    The caller's generator states are restored afterwards, so with ``num_worker_per_gpu: 0`` data
    loading does not disturb the training process's own random streams.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int] | int) -> Any:
        if isinstance(item, int):
            return self.dataset[item]
        index, seed = item
        py, npy, th = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.seed(seed)
        np.random.seed(seed)
        # CPU generator only: torch.manual_seed would also queue a (traceback-capturing) lazy CUDA seed
        # per sample; datasets draw their randomness on the CPU.
        torch.default_generator.manual_seed(seed)
        try:
            return self.dataset[index]
        finally:
            random.setstate(py)
            np.random.set_state(npy)
            torch.set_rng_state(th)

    def __getattr__(self, name: str) -> Any:  # expose the wrapped dataset's attributes (opt, paths, ...)
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
