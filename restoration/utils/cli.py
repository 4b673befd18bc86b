"""How ``train.py`` and ``test.py`` end: the user's problems as one line, bugs with their traceback."""

from __future__ import annotations

from typing import Callable

from restoration.errors import RestorationError, user_error_message
from restoration.utils.dist import cleanup_dist
from restoration.utils.logger import close_file_handlers, get_logger

__all__ = ["run_reporting_errors"]


def run_reporting_errors(run: Callable[[], int]) -> int:
    """``run()``'s exit code; a :class:`~restoration.errors.RestorationError` (something in the user's
    files) is logged as one line and gives 1; any other exception is a bug: its traceback goes to the log
    file as well, and it propagates."""
    try:
        return run()
    except RestorationError as exc:
        get_logger().error(f"{type(exc).__name__}: {user_error_message(exc)}")
        close_file_handlers()
        cleanup_dist()
        return 1
    except Exception:
        get_logger().exception("unexpected error (a bug, not a problem with your files: please report it)")
        close_file_handlers()
        raise
