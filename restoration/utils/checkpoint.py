"""Atomic checkpoint files, finding the newest complete training state, keeping the last N."""

from __future__ import annotations

import glob
import os
import re
import tempfile
from typing import Any

import torch

from restoration.errors import RestorationError

__all__ = ["CheckpointError", "atomic_save", "find_latest_state", "prune_checkpoints", "load_training_state"]


class CheckpointError(RestorationError, ValueError):
    """A training state that cannot be resumed from (unreadable, or not a training state)."""

_STATE_RE = re.compile(r"^(\d+)\.state$")


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash leaves either the old file or the new one, never a truncated file under the final name.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_training_state(path: str) -> dict[str, Any]:
    """Read a ``.state`` file with ``weights_only=True`` (states hold only tensors and plain containers).

    Raises:
        CheckpointError: The file is missing, unreadable (truncated, garbage, not ours) or not a training
            state (e.g. a weights file); the message names the file.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"training state {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle garbage, a forbidden global: all mean "not resumable"
        raise CheckpointError(f"cannot read training state {path}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if not isinstance(state, dict) or "iter" not in state or "net_g" not in state:
        kind = "a weights file (models/net_g_*.pth)" if isinstance(state, dict) and "params" in state else "not a training state"
        raise CheckpointError(f"{path} is {kind}; resume from a training_states/<iter>.state file")
    return state


def find_latest_state(states_dir: str) -> str | None:
    """The highest-iteration ``<iter>.state`` in ``states_dir`` that can actually be read, or None.

    Files are only ever renamed into place complete, but a copy, a full disk or a foreign tool can
    still leave a bad one; those are skipped (newest first) instead of crashing the resume.
    """
    if not os.path.isdir(states_dir):
        return None
    candidates = []
    for path in glob.glob(os.path.join(states_dir, "*.state")):
        m = _STATE_RE.match(os.path.basename(path))
        if m:
            candidates.append((int(m.group(1)), path))
    for _, path in sorted(candidates, reverse=True):
        try:
            load_training_state(path)
        except CheckpointError:
            continue
        return path
    return None


def prune_checkpoints(folder: str, pattern: str, keep_last: int) -> list[str]:
    """Delete all but the ``keep_last`` highest-numbered files matching ``pattern`` (one ``(\\d+)`` group)."""
    if keep_last <= 0 or not os.path.isdir(folder):
        return []
    regex = re.compile(pattern)
    numbered = sorted(
        (int(m.group(1)), name) for name in os.listdir(folder) if (m := regex.match(name))
    )
    removed = []
    for _, name in numbered[:-keep_last]:
        os.remove(os.path.join(folder, name))
        removed.append(name)
    return removed
