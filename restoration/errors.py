"""Every error a user can fix (bad options, unknown names, bad weights, bad data, a busy folder), in one place.

``train.py``, ``test.py`` and the other commands report exactly these as one line (``ErrorName: message``)
and exit non-zero; every other exception is a bug and keeps its traceback (in the terminal and in the log
file). Each class also derives from the built-in error of its nature (``ValueError`` for a bad value,
``OSError`` for a file, ``KeyError`` for a name), as Python's own errors do, so ``except ValueError`` works.
This module is a leaf: it imports nothing of the package, and every module may raise from it.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml

__all__ = [
    "RestorationError",
    "OptionsError",
    "YAMLLimitError",
    "RegistryError",
    "DatasetOptionError",
    "LossOptionError",
    "OptimizerError",
    "DataError",
    "MissingDataError",
    "ImageReadError",
    "EvaluationError",
    "ScaleMismatchError",
    "LossInputError",
    "FIDError",
    "WeightsError",
    "DetectionError",
    "UnrecognisedCheckpointError",
    "CheckpointError",
    "ForeignStateError",
    "LPIPSWeightsError",
    "DISTSWeightsError",
    "FIDWeightsError",
    "NIQEParamsError",
    "ZooError",
    "DiskWriteError",
    "ExperimentFolderError",
    "RunLockedError",
    "DistError",
    "TrainingStalledError",
    "MainRankFailedError",
    "InferError",
    "InferArgumentError",
    "ExportError",
    "user_error_message",
    "value_repr",
]

#: The longest a user's value may be when an error message quotes it.
VALUE_REPR_LIMIT = 120


class RestorationError(Exception):
    """A problem with the user's files or settings, described well enough to fix it."""


# -------------------------------------------------------------------------------- Options and names
class OptionsError(RestorationError, ValueError):
    """A bad option file. ``problems`` lists every issue; ``str()`` is the full report."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in {source}:\n{lines}")


class YAMLLimitError(RestorationError, yaml.YAMLError):
    """A YAML document whose aliases expand past :data:`MAX_EXPANDED_NODES` values, or into itself."""


class RegistryError(RestorationError, KeyError):
    """Unknown or duplicate registry name. ``str()`` gives the plain message (not KeyError's repr)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable.
        return str(self.args[0]) if self.args else ""


class DatasetOptionError(RestorationError, ValueError):
    """The dataset options have problems; the message lists all of them, one per line."""


class LossOptionError(RestorationError, ValueError):
    """A loss option with a value the loss cannot use (an unknown criterion or channel set, a bad size)."""


class OptimizerError(RestorationError, ValueError):
    """An optimizer that is unknown, not installed, or given an option it does not take."""



# ---------------------------------------------------------------------------------- Data and images
class DataError(RestorationError, ValueError):
    """Data that cannot be used as configured (wrong sizes, unreadable content, a bad listing)."""


class MissingDataError(RestorationError, FileNotFoundError):
    """A data folder or file that the options name does not exist (or holds no image)."""


class ImageReadError(RestorationError, OSError):
    """An image file is missing, unreadable or corrupt. The message names the file."""


class EvaluationError(DataError):
    """An image failed on some rank of a multi-rank evaluation; raised on every rank, so all of them leave
    the evaluation together. The message is each failing rank's ``'<ErrorName>: <message> (rank r)'``."""


class ScaleMismatchError(RestorationError, ValueError):
    """The network's output is not ``scale`` times its input (the option check catches this for registered
    architectures; a network built outside it can still disagree)."""


class LossInputError(RestorationError, ValueError):
    """Images a loss cannot score as configured (too small for its windows, not divisible into its patches,
    or missing an input the loss needs, such as LDL's EMA output)."""


class FIDError(RestorationError, ValueError):
    """A folder that cannot give FID statistics, or statistics whose distance is not real."""



# -------------------------------------------------------------------------- Weights and checkpoints
class WeightsError(RestorationError, RuntimeError):
    """A checkpoint cannot be loaded into a network; the message lists every mismatch."""


class DetectionError(RestorationError, ValueError):
    """A checkpoint whose architecture cannot be determined; the message lists the closest candidates."""


class UnrecognisedCheckpointError(DetectionError):
    """A checkpoint no family's detector accepts; the message names the closest family and the keys that differ."""


class CheckpointError(RestorationError, ValueError):
    """A training state that cannot be resumed from (unreadable, or not a training state)."""


class ForeignStateError(CheckpointError):
    """A training state written by another run than the one of this experiment folder."""


class LPIPSWeightsError(RestorationError, FileNotFoundError):
    """An LPIPS weight file is missing or does not fit."""


class DISTSWeightsError(RestorationError, FileNotFoundError):
    """A DISTS weight file is missing or does not fit."""


class FIDWeightsError(RestorationError, FileNotFoundError):
    """The Inception weights file is missing or does not fit."""


class NIQEParamsError(RestorationError, FileNotFoundError):
    """The NIQE pristine-model file is missing or holds something else."""


class ZooError(RestorationError, ValueError):
    """An unknown checkpoint name, a malformed manifest or a bad ``verify`` command line."""



# ---------------------------------------------------------------------- Runs, folders and processes
class DiskWriteError(RestorationError, OSError):
    """A file or folder that cannot be written: no permission, a read-only file system, a full disk, a quota,
    a file-size limit. Says which path and why."""


class ExperimentFolderError(RestorationError, OSError):
    """An experiment folder that cannot be used: not an experiment folder, or not writable."""


class RunLockedError(RestorationError, RuntimeError):
    """Another process is training in the same experiment folder."""


class DistError(RestorationError, RuntimeError):
    """A launcher or process-group setting that cannot work (reported as one line)."""


class TrainingStalledError(RestorationError, RuntimeError):
    """Every step of a stretch was skipped (non-finite loss or gradient): the run is not training."""


class MainRankFailedError(RestorationError, RuntimeError):
    """On the other ranks: rank 0 stopped at a step only it takes (its error says why)."""



# ----------------------------------------------------------------------------------------- Commands
class InferError(RestorationError, ValueError):
    """Bad inputs, outputs or options of ``restoration-infer`` (and ``restoration-export``); one line for the user."""


class InferArgumentError(InferError):
    """A command-line value that cannot work (exit code 2, argparse's convention)."""


class ExportError(RestorationError, ValueError):
    """Bad export arguments, a missing optional dependency, or an exported model that differs from PyTorch."""


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
