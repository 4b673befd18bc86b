"""One training run per experiment folder: an exclusive lock held (by rank 0) for the whole run.

Two runs with the same name used to share one folder: the second archived the first's folder while it
ran, both then saved into one ``training_states/``, and ``--auto_resume`` picked whichever state was
newest. The lock is a POSIX record lock (``lockf``) on a file *beside* the experiment folder
(``.<name>.lock``), so it protects the name through the archiving of an old folder. The kernel releases it
when its process dies, so a run killed with SIGKILL leaves a stale file but never a stale lock. A record
lock, not a ``flock``: a ``flock`` is shared with every child forked after it was taken (DataLoader
workers), so a killed run's worker still dying held it, and the ``--auto_resume`` started at once was
refused (1 of 41 SIGKILL repetitions of scripts/faults/run_faults.py).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from types import TracebackType

from restoration.errors import RunLockedError
from restoration.utils.experiment_folder import ExperimentFolderError, unwritable

__all__ = ["RunLock", "RunLockedError", "lock_path"]


#: Lock files held by this process: a record lock is per process, so a second lock of the same file here
#: would succeed (and its release would drop the first); refused from this set instead.
_HELD: set[str] = set()


def lock_path(experiment_folder: str) -> str:
    """``<parent>/.<name>.lock`` for ``<parent>/<name>``."""
    folder = os.path.abspath(experiment_folder)
    return os.path.join(os.path.dirname(folder), f".{os.path.basename(folder)}.lock")


class RunLock:
    """An exclusive, non-blocking lock on one experiment folder.

    Use as a context manager, or call :meth:`acquire` and :meth:`release`. Folders that :meth:`acquire`
    had to create for the lock file (e.g. ``experiments/``) are removed again by :meth:`release` when
    they are empty, so a run that stops before writing anything leaves the disk as it was.
    """

    def __init__(self, experiment_folder: str) -> None:
        self.folder = os.path.abspath(experiment_folder)
        self.path = lock_path(self.folder)
        self._fd: int | None = None
        self._created: list[str] = []

    def acquire(self) -> "RunLock":
        """Take the lock or fail at once.

        Raises:
            RunLockedError: Another live process holds it; the message names the folder and that
                process (PID, host, start time).
            ExperimentFolderError: The folder beside which the lock lives cannot be written.
        """
        if os.path.realpath(self.path) in _HELD:
            raise RunLockedError(f"experiment folder {self.folder} is in use by this process (PID {os.getpid()}); "
                                 "give this run another name")
        try:
            self._created = _make_parents(os.path.dirname(self.path))
        except OSError as exc:
            if not unwritable(exc):
                raise
            raise ExperimentFolderError(f"cannot create {os.path.dirname(self.path)}: {exc.strerror}") from exc
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                if not unwritable(exc):
                    raise
                self._remove_created()
                raise ExperimentFolderError(f"cannot create the lock file {self.path} beside the experiment folder: "
                                            f"{exc.strerror}") from exc
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                self._remove_created()
                raise RunLockedError(
                    f"experiment folder {self.folder} is in use by {holder} (lock {self.path}); wait for that "
                    "run to end, stop it, or give this run another name") from None
            # the holder before us may have removed the file between our open and our flock: then we locked
            # a file nobody else will see; start over on the file now at the path
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.write(fd, f"PID {os.getpid()} on host {socket.gethostname()} (since {started})\n".encode())
        self._fd = fd
        _HELD.add(os.path.realpath(self.path))
        return self

    def release(self) -> None:
        """Remove the lock file, then unlock (in this order, see :meth:`acquire`); idempotent."""
        if self._fd is None:
            return
        _HELD.discard(os.path.realpath(self.path))
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)  # releases the record lock (this process opens the file only here)
        self._fd = None
        self._remove_created()

    def _remove_created(self) -> None:
        for folder in reversed(self._created):  # deepest first
            try:
                os.rmdir(folder)
            except OSError:  # not empty: the run wrote into it
                break
        self._created = []

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _make_parents(folder: str) -> list[str]:
    """``os.makedirs(folder)``; returns the folders it created, outermost first."""
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    os.makedirs(missing[0] if missing else folder, exist_ok=True)
    return list(reversed(missing))
