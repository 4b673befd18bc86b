"""The user errors of the loss toolbox: options that cannot work, inputs a loss cannot take."""

from __future__ import annotations

from restoration.errors import RestorationError

__all__ = ["LossOptionError", "LossInputError"]


class LossOptionError(RestorationError, ValueError):
    """A loss option with a value the loss cannot use (an unknown criterion or channel set, a bad size)."""


class LossInputError(RestorationError, ValueError):
    """Images a loss cannot score as configured (too small for its windows, not divisible into its patches,
    or missing an input the loss needs, such as LDL's EMA output)."""
