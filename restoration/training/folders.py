"""The experiment folder of a training run: made (archiving an earlier run's) and, after a failed start, unmade."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from restoration.errors import ExperimentFolderError
from restoration.utils.experiment_folder import archive_folder, unwritable
from restoration.utils.logger import close_file_handlers

__all__ = ["prepare_folders", "undo_folders"]


def prepare_folders(opt: dict[str, Any], resuming: bool, start_time: str) -> str | None:
    """Create the experiment folders (rank 0); archive an existing folder (as ``<name>_archived_<start_time>``)
    unless we resume into it.

    Returns:
        The archive's path, when an existing folder was archived.
    """
    exp = opt["path"]["experiments_root"]
    archived = None
    if os.path.isdir(exp) and not resuming and os.listdir(exp):  # an empty folder is used as it is
        # only ever the experiment's own folder: archive_folder refuses one holding anything else
        archived = archive_folder(exp, start_time, opt["name"])
        print(f"existing experiment folder archived to {archived}", file=sys.stderr)
    wanted = [opt["path"][key] for key in ("experiments_root", "models", "training_states", "visualization", "options")]
    if opt["logger"].get("use_tb_logger", True):
        wanted.append(opt["path"]["tb_logger"])
    created: list[str] = []
    try:
        for folder in wanted:
            _make_folder(folder, created)
    except OSError as exc:
        for folder in reversed(created):  # nothing half-made: only the (empty) folders made here go
            try:
                os.rmdir(folder)
            except OSError:
                pass
        if archived is not None:
            os.rename(archived, exp)
        if not unwritable(exc):
            raise
        raise ExperimentFolderError(f"cannot create {exc.filename}: {exc.strerror}"
                                    + (f" ({archived} was put back)" if archived else "")) from exc
    return archived


def _make_folder(folder: str, created: list[str]) -> None:
    """``os.makedirs(folder)``, appending each folder it makes (outermost first) to ``created``."""
    missing = []
    path = os.path.abspath(folder)
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(missing):
        os.mkdir(path)
        created.append(path)


def undo_folders(opt: dict[str, Any], archived: str | None, tb_existed: bool) -> None:
    """Remove the folders of a fresh run that failed on the user's files before its first checkpoint
    (an image that cannot be decoded, say), and put an archived folder back: a failed start leaves the
    disk as it was, like a bad option file does. The error itself is on stderr."""
    paths = opt["path"]
    if os.listdir(paths["training_states"]):
        return  # something worth keeping was saved
    close_file_handlers()
    shutil.rmtree(paths["experiments_root"], ignore_errors=True)
    if not tb_existed:
        shutil.rmtree(paths["tb_logger"], ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(paths["tb_logger"]))  # tb_logger/ itself, when this run made it
        except OSError:  # not empty: other runs' logs
            pass
    if archived is not None:
        os.rename(archived, paths["experiments_root"])
    else:
        try:
            os.rmdir(os.path.dirname(paths["experiments_root"]))  # experiments/, when this run made it
        except OSError:  # not empty: other experiments
            pass
    print(f"removed the new experiment folder {paths['experiments_root']} (nothing was saved)"
          + (f"; {archived} restored" if archived else ""), file=sys.stderr)
