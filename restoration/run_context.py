"""What a run knows about itself that no option file says: its process, its device, its identity.

The option dict holds what the user wrote (defaults and experiment paths resolved); a :class:`RunContext`
holds what the launcher and the command decide for this process. Keeping them apart means the saved
options of a 4-GPU run read exactly like the file the user wrote, and nothing the launcher sets can be
overridden from YAML.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import torch

__all__ = ["RunContext"]


@dataclass(frozen=True)
class RunContext:
    """One process of one run.

    Attributes:
        rank: This process's rank (0 without a launcher).
        world_size: Number of processes of the run (1 without a launcher).
        device: Where this process's networks run.
        is_train: ``train.py`` (True) or ``test.py`` (False).
        opt_path: The option file the command read (absolute; None when the options came from Python code).
        start_time: When the run started, ``YYYYmmdd_HHMMSS`` (local time; names the log file and an archived
            folder).
        run_id: The experiment folder's run id (training; None until the folder's lock is held and it is claimed).
    """

    rank: int
    world_size: int
    device: torch.device
    is_train: bool = True
    opt_path: str | None = None
    start_time: str = field(default_factory=lambda: time.strftime("%Y%m%d_%H%M%S"))
    run_id: str | None = None

    @property
    def distributed(self) -> bool:
        """Whether the run has several processes (DDP wrapping, sharded validation)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files and logs (rank 0)."""
        return self.rank == 0

    def with_run_id(self, run_id: str) -> "RunContext":
        """The same context with its run id claimed."""
        return dataclasses.replace(self, run_id=run_id)
