"""Actions of the main rank that every rank must agree on, and the stop flag every rank reads."""

from __future__ import annotations

import signal
from typing import Any

from restoration.errors import MainRankFailedError, RestorationError
from restoration.utils.dist import any_across_ranks

__all__ = ["on_main_rank", "StopFlag"]


def on_main_rank(rank: int, action: Any) -> Any:
    """``action()`` on rank 0 only; when it raises a user error every rank raises (rank 0 that error), so no
    rank waits in a collective for a rank that has stopped. Returns ``action()``'s value (None elsewhere)."""
    error, value = None, None
    if rank == 0:
        try:
            value = action()
        except RestorationError as exc:
            error = exc
    if any_across_ranks(error is not None):
        if error is not None:
            raise error
        raise MainRankFailedError("rank 0 stopped before training (its error is above)")
    return value


class StopFlag:
    """Set by a stop signal (:data:`~restoration.utils.stop_signals.STOP_SIGNALS`: SIGTERM, SIGINT, SIGHUP,
    SIGUSR1); the loop saves a training state at the next iteration boundary, or stops a validation
    between two images first. Every rank acts on the flag only through an all-reduce (any rank's flag).

    Only a second Ctrl-C stops at once: other signals come twice on their own (slurm's SIGTERM to every
    process of a step reaches a rank directly and again through torchrun), and must not cost the save.
    """

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        if self.signal is None:
            self.signal = signum
