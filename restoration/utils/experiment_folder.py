"""The experiment folder's own record: which folders may be archived, under which name, and its run id.

A fresh run archives an existing ``experiments/<name>`` (renames it ``<name>_archived_<time>``). That
rename must only ever hit an experiment folder: ``path.experiments_root`` set to a folder that holds
other things (the project, a data folder) is refused, never renamed. The run id ties the training
states in the folder to the run that made it (``--auto_resume`` refuses another run's state).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import uuid

from restoration.errors import ExperimentFolderError
from restoration.utils.checkpoint import CheckpointError, atomic_write_text

__all__ = ["ExperimentFolderError", "RUN_ID_FILE", "foreign_entries", "archive_folder", "new_run_id",
           "read_run_id", "write_run_id", "unwritable"]

#: The file in the experiment folder that holds its run id (one line).
RUN_ID_FILE = "run_id"

# What a run of this package writes into its experiment folder; anything else means the folder is not one
_OURS = ("models", "training_states", "visualization", "options", RUN_ID_FILE, "best_metrics.json", "train_*.log",
         ".tmp_*")


def foreign_entries(folder: str) -> list[str]:
    """The entries of ``folder`` that a training run does not write (sorted); empty for an experiment folder."""
    return sorted(name for name in os.listdir(folder) if not any(fnmatch.fnmatch(name, p) for p in _OURS))


def archive_folder(folder: str, stamp: str, name: str) -> str:
    """Rename ``folder`` to ``<folder>_archived_<stamp>`` (``..._2``, ``..._3``, ... when taken); returns the name.

    Two fresh starts in the same second get distinct archives: the name is claimed with ``mkdir``
    (atomic, fails when it exists) and the folder then renamed over that empty directory.

    Raises:
        ExperimentFolderError: ``folder`` holds entries a run does not write (it is not an experiment
            folder, e.g. ``path.experiments_root`` set to the project), or it cannot be renamed.
    """
    if os.path.ismount(folder):
        raise ExperimentFolderError(
            f"{folder} is a mount point and holds an earlier run: a fresh run archives its experiment folder by "
            "renaming it, which a mount point cannot be; point path.experiments_root at a folder inside it (e.g. "
            f"{os.path.join(folder, name)}), empty it, or resume with --auto_resume")
    foreign = foreign_entries(folder)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ExperimentFolderError(
            f"{folder} exists and is not an experiment folder (it holds {shown}); a fresh run archives its "
            "experiment folder, so path.experiments_root must name the experiment's own folder: a new one, an "
            f"empty one or an earlier run's (e.g. {os.path.join(folder, name)})")
    for n in range(1, 1000):
        target = f"{folder}_archived_{stamp}" + (f"_{n}" if n > 1 else "")
        try:
            os.mkdir(target)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ExperimentFolderError(f"cannot archive {folder} as {target}: {exc.strerror}") from exc
        try:
            os.rename(folder, target)  # onto the empty directory just made: atomic on POSIX
        except OSError as exc:  # another file system's folder (EXDEV), a busy one (EBUSY), no permission
            os.rmdir(target)
            raise ExperimentFolderError(f"cannot archive {folder} as {target}: {exc.strerror}") from exc
        return target
    raise ExperimentFolderError(f"cannot archive {folder}: {folder}_archived_{stamp}_2 ... _999 all exist")


def new_run_id() -> str:
    """A fresh run id (32 hex digits)."""
    return uuid.uuid4().hex


def read_run_id(folder: str) -> str | None:
    """The run id recorded in ``folder`` (None: none recorded, e.g. a folder of an older version)."""
    try:
        with open(os.path.join(folder, RUN_ID_FILE), encoding="utf-8") as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def write_run_id(folder: str, run_id: str) -> None:
    """Record ``run_id`` in ``folder`` (atomically: a crash leaves the old record or the new one).

    Raises:
        ExperimentFolderError: The folder is not writable (read-only, full disk).
    """
    try:
        atomic_write_text(run_id + "\n", os.path.join(folder, RUN_ID_FILE))
    except CheckpointError as exc:
        raise ExperimentFolderError(str(exc).split(";")[0]) from exc


def unwritable(exc: OSError) -> bool:
    """Whether ``exc`` means "this folder cannot be written" (reported as one line, not a bug)."""
    return exc.errno in UNWRITABLE_ERRNOS


#: The errors of a write that the user's machine refuses (permission, read-only, full disk, quota, size limit).
UNWRITABLE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
