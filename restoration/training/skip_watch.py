"""Stops a run whose steps are all being skipped (non-finite losses or gradients) instead of "finishing" it."""

from __future__ import annotations

from typing import Any

from restoration.errors import TrainingStalledError

__all__ = ["SkipWatch"]


class SkipWatch:
    """Counts iterations whose step was skipped (non-finite loss or gradient, see ``Trainer._skip``).

    A run that skips ``max_in_a_row`` iterations in a row, or every iteration it ran, is not training:
    it stops with :class:`TrainingStalledError` instead of reporting "training finished" (exit 0).
    """

    def __init__(self, model: Any, max_in_a_row: int) -> None:
        self.model = model
        self.max_in_a_row = max_in_a_row
        self.seen = model.skipped_steps  # a resumed state carries the earlier skips
        self.in_a_row = 0
        self.skipped_iters = 0
        self.steps = 0
        self.first_in_a_row = 0

    def after_step(self, it: int) -> None:
        self.steps += 1
        if self.model.skipped_steps == self.seen:
            self.in_a_row = 0
            return
        self.seen = self.model.skipped_steps  # several networks may skip in one iteration: count it once
        self.skipped_iters += 1
        self.in_a_row += 1
        if self.in_a_row == 1:
            self.first_in_a_row = it
        if self.max_in_a_row and self.in_a_row >= self.max_in_a_row:
            raise TrainingStalledError(
                f"iterations {self.first_in_a_row}-{it}: {self.in_a_row} steps in a row skipped (non-finite loss or "
                "gradient), the weights are not changing; lower the learning rate, set train.grad_clip or check the "
                "data, then resume from the last training state (limit: train.max_skipped_in_a_row)")

    def at_end(self, it: int) -> None:
        if self.steps and self.skipped_iters == self.steps:
            raise TrainingStalledError(
                f"every one of the {self.steps} steps up to iteration {it} was skipped (non-finite loss or gradient): "
                "nothing was trained; lower the learning rate, set train.grad_clip or check the data")
