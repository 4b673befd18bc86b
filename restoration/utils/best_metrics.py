"""The best-metric records of validations that ran after their iteration's training state was saved.

The loop saves before it validates (a failing validation must never cost the checkpoint), so the state
of iteration N holds the best metrics up to the validation *before* N. The record after the validation
at N goes into ``<experiment>/best_metrics.json`` (``{"run_id": ..., "records": {"N": best}}``, one entry
per saved state), and a resume from ``training_states/<N>.state`` reads it back.
"""

from __future__ import annotations

import json
import os
from typing import Any

from restoration.utils.checkpoint import atomic_write_text

__all__ = ["BEST_METRICS_FILE", "write_best_record", "forget_best_record", "read_best_record"]

#: The file in the experiment folder that holds the records.
BEST_METRICS_FILE = "best_metrics.json"


def _path_for_state(state_path: str) -> str:
    """``<experiment>/best_metrics.json`` for ``<experiment>/training_states/<N>.state``."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(state_path))), BEST_METRICS_FILE)


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError:  # cut short or edited by hand: the states' own records stand
        return {}
    return content if isinstance(content, dict) and isinstance(content.get("records"), dict) else {}


def write_best_record(states_dir: str, it: int, run_id: str, best: dict[str, Any]) -> None:
    """Record ``best`` after the validation of iteration ``it``; entries whose state is gone are dropped.

    Written atomically; JSON keeps the floats exact.
    """
    path = _path_for_state(os.path.join(states_dir, f"{it}.state"))
    content = _read(path)
    records = content.get("records", {}) if content.get("run_id") == run_id else {}
    records[str(it)] = best
    records = {k: v for k, v in records.items() if os.path.exists(os.path.join(states_dir, f"{k}.state"))}
    atomic_write_text(json.dumps({"run_id": run_id, "records": records}, indent=1) + "\n", path)


def forget_best_record(states_dir: str, it: int) -> None:
    """Drop the record of iteration ``it`` (left by an earlier pass through it) before its state is replaced."""
    path = _path_for_state(os.path.join(states_dir, f"{it}.state"))
    content = _read(path)
    if str(it) in content.get("records", {}):
        del content["records"][str(it)]
        atomic_write_text(json.dumps(content, indent=1) + "\n", path)


def read_best_record(state_path: str, it: int, run_id: str | None) -> dict[str, Any] | None:
    """The best metrics recorded after the validation of the state's iteration ``it``, or None (no validation
    then, a record of another run, or an unreadable file)."""
    content = _read(_path_for_state(state_path))
    if run_id is not None and content.get("run_id") not in (None, run_id):
        return None
    record = content.get("records", {}).get(str(it))
    return record if isinstance(record, dict) else None
