"""What a resume checks before it continues from a training state: whose state it is, what changed.

Every state records the run id of its experiment folder and the options it was trained with (as YAML).
A resume

* refuses a state of another run (another folder's run id) unless ``--resume_foreign`` is given;
* logs every option that differs from the saved ones (``key: saved -> now``), whatever it is. Each
  change is then applied (see the README's "Resume" bullet for what each group of keys does): the
  learning rate and optimizer settings follow the current options from the resumed iteration on, a
  network or trainer that does not fit the saved tensors is a :class:`CheckpointError`.
"""

from __future__ import annotations

from typing import Any, Mapping

import yaml

from restoration.errors import ForeignStateError

__all__ = ["ForeignStateError", "options_text", "plain", "option_diff", "check_run_id"]


def options_text(opt: Mapping[str, Any]) -> str:
    """The experiment's options as YAML (plain types only), for a training state to record."""
    return yaml.safe_dump(plain(opt), sort_keys=False)


def option_diff(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key.sub: saved -> now`` for every leaf that differs (``(absent)`` for a missing one), sorted by key."""
    old, new = _leaves(plain(saved)), _leaves(plain(current))
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a != b or type(a) is not type(b):
            lines.append(f"{key}: {a!r} -> {b!r}")
    return lines


def check_run_id(state_path: str, state_run: str | None, folder: str, folder_run: str | None,
                 allow_foreign: bool) -> str | None:
    """Refuse a state of another run; returns a note for the log (None: nothing to say).

    Raises:
        ForeignStateError: ``state_run`` and ``folder_run`` are both known and differ, and not ``allow_foreign``.
    """
    if state_run is None:
        return f"{state_path} records no run id (written by an older version): not checked"
    if folder_run is None or state_run == folder_run:
        return None
    if not allow_foreign:
        raise ForeignStateError(
            f"{state_path} was written by run {state_run}, not by run {folder_run} of the experiment folder "
            f"{folder} (a run with the same name, or a copied state); pass --resume_foreign to continue from "
            "it anyway, or remove it")
    return f"--resume_foreign: continuing run {folder_run} from {state_path} of run {state_run}"


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{'a.b': leaf}`` of nested mappings (lists are leaves)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_leaves(sub, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def plain(value: Any) -> Any:
    """``value`` with YAML's plain types only (a tuple becomes a list, anything else its ``str``)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
