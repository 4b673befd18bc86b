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

    Checked: ``CosineAnnealingRestartLR`` ``periods`` summing to more than ``total_iter``; ``MultiStepLR`` /
    ``MultiStepRestartLR`` ``milestones`` (and ``restarts``) after ``total_iter``.
    """
    train = opt.get("train") or {}
    sched, total = train.get("scheduler"), train.get("total_iter")
    if not isinstance(sched, Mapping) or not isinstance(total, int) or isinstance(total, bool):
        return []
    kind, notes = sched.get("type"), []
    periods = _ints(sched.get("periods"))
    if kind == "CosineAnnealingRestartLR" and periods and sum(periods) > total:
        notes.append(f"train.scheduler.periods sum to {sum(periods)} but train.total_iter is {total}: training "
                     f"stops before the schedule ends (the lr never reaches eta_min); set periods to sum to "
                     f"{total} if that is not intended")
    if kind in ("MultiStepLR", "MultiStepRestartLR"):
        for key in ("milestones", "restarts"):
            late = [m for m in (_ints(sched.get(key)) or []) if m > total]
            if late:
                notes.append(f"train.scheduler.{key} {late} come after train.total_iter {total}: "
                             f"{'they are' if len(late) > 1 else 'it is'} never reached")
    return notes
