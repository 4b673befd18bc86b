"""The one base class of the problems a user can fix: bad options, unknown names, bad weights, bad data.

``train.py`` and ``test.py`` report exactly these as one line (``ErrorName: message``) and exit non-zero;
every other exception is a bug and keeps its traceback (in the terminal and in the log file). Each
subclass also derives from the built-in error it used to be (``ValueError``, ``OSError``, ...), so code
that catches those keeps working.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["RestorationError", "DataError", "MissingDataError", "user_error_message", "value_repr"]

#: The longest a user's value may be when an error message quotes it.
VALUE_REPR_LIMIT = 120


class RestorationError(Exception):
    """A problem with the user's files or settings, described well enough to fix it."""


class DataError(RestorationError, ValueError):
    """Data that cannot be used as configured (wrong sizes, unreadable content, a bad listing)."""


class MissingDataError(RestorationError, FileNotFoundError):
    """A data folder or file that the options name does not exist (or holds no image)."""


def user_error_message(exc: BaseException) -> str:
    """The message of ``exc`` without the worker traceback that DataLoader prepends to re-raised errors."""
    text = str(exc)
    if "Original Traceback" in text:
        text = [line for line in text.strip().splitlines() if line.strip()][-1]
        text = text.split(": ", 1)[1] if ": " in text else text
    return text


def _value_reprer() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 8, 8, 8, 8
    r.maxstring, r.maxother, r.maxlong = VALUE_REPR_LIMIT, VALUE_REPR_LIMIT, 40
    return r


_REPR = _value_reprer()


def value_repr(value: Any, limit: int = VALUE_REPR_LIMIT) -> str:
    """``repr(value)`` for an error message, at most ``limit`` characters (``...`` marks a cut).

    Built with :mod:`reprlib`, so a huge value (an option file's aliases expanded a million times) is never
    formatted in full: only its first items and levels are visited.
    """
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
