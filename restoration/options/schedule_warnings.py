"""Warnings (not errors) about a learning-rate schedule that does not fit ``train.total_iter``.

A run stays valid when its schedule is longer than the training, but the user probably changed ``total_iter``
(often with ``--force_yml``) and forgot the schedule: the cosine never reaches ``eta_min``, a milestone never
lowers the lr. ``periods`` summing to *less* than ``total_iter`` is an error already
(:mod:`restoration.options.validate`); these are the cases it lets through. the training run logs each line at
the start of training.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["schedule_warnings"]


def _ints(value: Any) -> list[int] | None:
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return value
    return None


def schedule_warnings(opt: Mapping[str, Any]) -> list[str]:
    """One line per mismatch between ``train.scheduler`` and ``train.total_iter`` (``[]`` when they agree).

    Checked: ``CosineAnnealingRestartLR`` / ``CosineAnnealingRestartCyclicLR`` ``periods`` summing to more than
    ``total_iter``; ``MultiStepLR`` / ``MultiStepRestartLR`` ``milestones`` (and ``restarts``) after ``total_iter``;
    the progressive stages' ``datasets.train.iters`` summing to anything but ``total_iter``.
    """
    train = opt.get("train") or {}
    sched, total = train.get("scheduler"), train.get("total_iter")
    if not isinstance(total, int) or isinstance(total, bool):
        return []
    kind, notes = sched.get("type") if isinstance(sched, Mapping) else None, []
    sched = sched if isinstance(sched, Mapping) else {}
    periods = _ints(sched.get("periods"))
    if kind in ("CosineAnnealingRestartLR", "CosineAnnealingRestartCyclicLR") and periods and sum(periods) > total:
        notes.append(f"train.scheduler.periods sum to {sum(periods)} but train.total_iter is {total}: training "
                     f"stops before the schedule ends (the lr never reaches eta_min); set periods to sum to "
                     f"{total} if that is not intended")
    if kind in ("MultiStepLR", "MultiStepRestartLR"):
        for key in ("milestones", "restarts"):
            late = [m for m in (_ints(sched.get(key)) or []) if m > total]
            if late:
                notes.append(f"train.scheduler.{key} {late} come after train.total_iter {total}: "
                             f"{'they are' if len(late) > 1 else 'it is'} never reached")
    datasets = opt.get("datasets")
    train_set = datasets.get("train") if isinstance(datasets, Mapping) else None
    stages = _ints(train_set.get("iters")) if isinstance(train_set, Mapping) else None
    if stages and sum(stages) < total:
        notes.append(f"datasets.train.iters (progressive training) sum to {sum(stages)} but train.total_iter is "
                     f"{total}: the last stage continues to the end (as Restormer's train.py does)")
    elif stages and sum(stages) > total:
        notes.append(f"datasets.train.iters (progressive training) sum to {sum(stages)} but train.total_iter is "
                     f"{total}: training stops before the last stages")
    return notes
