"""Atomic checkpoint files, checking them before they are trusted, finding the newest good training state,
keeping the last N."""

from __future__ import annotations

import errno
import glob
import os
import re
import tempfile
import zipfile
from typing import IO, Any, Callable

import torch

from restoration.errors import CheckpointError

__all__ = ["CheckpointError", "atomic_save", "atomic_write_text", "archive_problem", "find_latest_state",
           "prune_checkpoints", "load_training_state", "remove_stale_temporaries", "umask_mode", "TMP_PREFIX"]

#: Prefix of the temporary files :func:`atomic_save` writes before the rename; a killed write leaves one.
TMP_PREFIX = ".tmp_"

# errno values that mean "this folder cannot take the file", not a bug: reported as one line
# (EFBIG: the file system's or the job's file-size limit, e.g. ``ulimit -f`` or FAT32's 4 GiB)
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG)


_STATE_RE = re.compile(r"^(\d+)\.state$")


def umask_mode() -> int:
    """``0o666`` less the process umask: the mode ``open()`` would give a new file.

    ``mkstemp`` creates files ``0600`` whatever the umask, so a checkpoint shared with a group (or read
    by a serving process under another user) would not be readable; the temporaries get this mode.
    """
    mask = os.umask(0)
    os.umask(mask)  # reading the umask means setting it; set it straight back
    return 0o666 & ~mask


def _is_write_failure(exc: BaseException) -> bool:
    """A full disk, a quota or a read-only folder, as ``OSError`` or as torch's zip writer reports it."""
    if isinstance(exc, OSError):
        return exc.errno in _WRITE_ERRNOS
    # torch's PytorchStreamWriter turns a failed fwrite (ENOSPC, EDQUOT, ...) into a bare RuntimeError
    return isinstance(exc, RuntimeError) and ("file write failed" in str(exc) or "PytorchStreamWriter failed" in str(exc))


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash leaves either the old file or the new one, never a truncated file under the final name.
    The file gets the mode ``open()`` would give it (``0o666`` less the umask).

    Raises:
        CheckpointError: The folder cannot take the file (disk full, quota, file-size limit, read-only or
            unwritable folder); names ``path``. No temporary file is left behind.
    """
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` as :func:`atomic_save` writes a checkpoint (same errors)."""
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


class _ErrorKeepingFile:
    """A file whose ``write`` remembers its ``OSError``: torch's zip writer turns one (EFBIG, ENOSPC) into
    a ``RuntimeError`` without an errno ("unexpected pos ..."), which would read as a bug."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._f.flush()


def _atomic_write(path: str, write: Callable[[Any], Any]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    tmp, kept = None, None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=os.path.basename(path), dir=folder)
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as f:
            kept = _ErrorKeepingFile(f)
            write(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        failure = kept.error if kept is not None and kept.error is not None else exc
        if _is_write_failure(failure):
            reason = (failure.strerror if isinstance(failure, OSError) and failure.strerror
                      else str(failure).strip().splitlines()[-1])
            raise CheckpointError(f"cannot write {path}: {reason} (disk full, quota, file-size limit or an "
                                  "unwritable folder?); the previous checkpoint is intact") from exc
        raise


def archive_problem(path: str) -> str | None:
    """Why ``path`` is not an intact ``torch.save`` archive (None: every record matches its CRC-32).

    ``torch.load`` does not check the CRC-32 that the zip format stores for every record, so a flipped
    bit in a tensor loads silently; this reads the whole file once and compares.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        return f"not an intact torch.save archive (cut short, overwritten or another format: {exc})"
    if bad is not None:
        return f"corrupt: record '{bad}' fails its CRC-32 check (a flipped bit or a bad copy)"
    return None


def remove_stale_temporaries(folder: str) -> list[str]:
    """Delete the ``.tmp_*`` files a killed :func:`atomic_save` left in ``folder``; returns their names.

    Only call this while no other process writes into ``folder`` (at the start of a run, on rank 0).
    """
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        if name.startswith(TMP_PREFIX) and os.path.isfile(os.path.join(folder, name)):
            os.remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def load_training_state(path: str) -> dict[str, Any]:
    """Read a ``.state`` file with ``weights_only=True`` (states hold only tensors and plain containers),
    after checking every record's CRC-32 (:func:`archive_problem`).

    Raises:
        CheckpointError: The file is missing, unreadable (truncated, garbage, a flipped bit, not ours) or not a training
            state (e.g. a weights file); the message names the file.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"training state {path} does not exist")
    problem = archive_problem(path)
    if problem is not None:
        raise CheckpointError(f"cannot read training state {path}: {problem}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle garbage, a forbidden global: all mean "not resumable"
        detail = str(exc).splitlines()[0] if str(exc) else "the file is empty or cut short"
        raise CheckpointError(f"cannot read training state {path}: {type(exc).__name__}: {detail}") from exc
    if not isinstance(state, dict) or "iter" not in state or "net_g" not in state:
        kind = "a weights file (models/net_g_*.pth)" if isinstance(state, dict) and "params" in state else "not a training state"
        raise CheckpointError(f"{path} is {kind}; resume from a training_states/<iter>.state file")
    return state


def find_latest_state(states_dir: str, on_skip: Callable[[str, str], None] | None = None) -> str | None:
    """The highest-iteration ``<iter>.state`` in ``states_dir`` that can actually be read, or None.

    Files are only ever renamed into place complete, but a copy, a full disk or a foreign tool can
    still leave a bad one; those are skipped (newest first) instead of crashing the resume, and
    ``on_skip(path, reason)`` is told about each, so the skip is never silent.
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
        except CheckpointError as exc:
            if on_skip is not None:
                on_skip(path, str(exc))
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
