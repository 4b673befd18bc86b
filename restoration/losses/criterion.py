"""The ``criterion`` option of the toolbox losses (traiNNer-redux's key): which pixel loss compares two maps.

``'l1'`` (:class:`~restoration.losses.basic_loss.L1Loss`), ``'l2'`` (:class:`~restoration.losses.basic_loss.MSELoss`)
or ``'charbonnier'`` (:class:`~restoration.losses.basic_loss.CharbonnierLoss`, eps 1e-12), each with mean reduction
and weight 1 (the owning loss applies its own ``loss_weight``).
"""

from __future__ import annotations

import difflib

from torch import nn

from restoration.losses.basic_loss import CharbonnierLoss, L1Loss, MSELoss

__all__ = ["CRITERIA", "build_criterion", "criterion_problems"]

CRITERIA: dict[str, type[nn.Module]] = {"l1": L1Loss, "l2": MSELoss, "charbonnier": CharbonnierLoss}


def criterion_problems(criterion: object) -> list[str]:
    """``[]`` when ``criterion`` names one of :data:`CRITERIA`, else one message (with a did-you-mean)."""
    if isinstance(criterion, str) and criterion in CRITERIA:
        return []
    close = difflib.get_close_matches(str(criterion), list(CRITERIA), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return [f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}{hint}"]


def build_criterion(criterion: str) -> nn.Module:
    """The pixel loss named ``criterion``, one of :data:`CRITERIA` (the owning loss refused any other name
    through its ``check_options``, :func:`criterion_problems`)."""
    return CRITERIA[criterion]()
