"""The state of metric-driven schedules (``ReduceLROnPlateau``) after validations that ran after their save.

The loop saves before it validates, so the training state of iteration N holds the plateau state up to the
validation *before* N (as for the best metrics, :mod:`restoration.utils.best_metrics`). The state after the
validation at N goes into ``<experiment>/metric_schedules.json`` (``{"run_id": ..., "records": {"N": {network:
state}}}``, one entry per saved state), and a resume from ``training_states/<N>.state`` reads it back, so
the resumed lr is the one the uninterrupted run has after that validation.
"""

from __future__ import annotations

import json
import os
from typing import Any

from restoration.utils.checkpoint import atomic_write_text

__all__ = ["SCHEDULE_RECORDS_FILE", "write_schedule_record", "read_schedule_record"]

#: The file in the experiment folder that holds the records.
SCHEDULE_RECORDS_FILE = "metric_schedules.json"


def _path(states_dir: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(states_dir)), SCHEDULE_RECORDS_FILE)


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except (FileNotFoundError, ValueError):  # none yet, or cut short: the states' own records stand
        return {}
    return content if isinstance(content, dict) and isinstance(content.get("records"), dict) else {}


def write_schedule_record(states_dir: str, it: int, run_id: str, state: dict[str, Any]) -> None:
    """Record ``state`` (:meth:`~restoration.models.base_model.Trainer.metric_schedule_state`) after the validation
    of iteration ``it``; entries whose training state is gone are dropped. JSON keeps floats (and infinity) exact."""
    path = _path(states_dir)
    content = _read(path)
    records = content.get("records", {}) if content.get("run_id") == run_id else {}
    records[str(it)] = state
    records = {k: v for k, v in records.items() if os.path.exists(os.path.join(states_dir, f"{k}.state"))}
    atomic_write_text(json.dumps({"run_id": run_id, "records": records}, indent=1) + "\n", path)


def read_schedule_record(state_path: str, it: int, run_id: str | None) -> dict[str, Any] | None:
    """The record after the validation of the state's iteration ``it``, or None (no validation then, or a
    record of another run)."""
    content = _read(_path(os.path.dirname(os.path.abspath(state_path))))
    if run_id is not None and content.get("run_id") not in (None, run_id):
        return None
    record = content.get("records", {}).get(str(it))
    return record if isinstance(record, dict) else None
