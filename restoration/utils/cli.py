"""How ``train.py`` and ``test.py`` end: the user's problems as one line, bugs with their traceback."""

from __future__ import annotations

from typing import Callable

from restoration.errors import RestorationError, user_error_message
from restoration.utils.dist import cleanup_dist, get_dist_info, peer_failure
from restoration.utils.experiment_folder import unwritable
from restoration.utils.logger import close_file_handlers, get_logger

__all__ = ["run_reporting_errors"]


def run_reporting_errors(run: Callable[[], int]) -> int:
    """``run()``'s exit code; a :class:`~restoration.errors.RestorationError` (something in the user's
    files) is logged as one line and gives 1, and so is an ``OSError`` of a write the machine refuses
    (permission, read-only, full disk, quota, file-size limit), wherever it happened; any other exception
    is a bug: its traceback goes to the log file as well, and it propagates.

    Under a launcher, a collective that fails because another rank has gone (its own one-line error, a
    crash, a kill) is not this rank's bug either: one line saying so, exit 1; the other rank's output says why.
    """
    try:
        return run()
    except RestorationError as exc:
        get_logger().error(f"{type(exc).__name__}: {user_error_message(exc)}")
    except Exception as exc:
        if isinstance(exc, OSError) and unwritable(exc):
            # a folder or file the machine refuses (permission, read-only, full disk, quota, size limit),
            # wherever it was written: the user's to fix, one line
            where = f" {exc.filename}" if exc.filename else ""
            get_logger().error(f"DiskWriteError: cannot write{where}: {exc.strerror or exc}")
        elif not peer_failure(exc):
            get_logger().exception("unexpected error (a bug, not a problem with your files: please report it)")
            close_file_handlers()
            raise
        else:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            get_logger().error(f"rank {get_dist_info()[0]} stopped: another rank failed (its own output says "
                               f"why); here: {first_line}")
    # outside the except blocks: the traceback's frames (and the DDP wrappers they hold) are gone before
    # the process group is destroyed (see finish_dist)
    close_file_handlers()
    cleanup_dist()
    return 1
