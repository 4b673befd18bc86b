"""The optimizers an option file may name (``optim_g: {type: Adam, lr: 2e-4, ...}``): the one table."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["OPTIMIZERS", "optimizer_class", "build_optimizer"]

#: ``type`` name -> ``torch.optim`` class name.
OPTIMIZERS: dict[str, str] = {"Adam": "Adam", "AdamW": "AdamW", "SGD": "SGD"}


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The ``torch.optim`` class of a table name (KeyError for others)."""
    return getattr(torch.optim, OPTIMIZERS[name])


def build_optimizer(params: list[nn.Parameter], opt: Mapping[str, Any]) -> torch.optim.Optimizer:
    """``torch.optim.<type>(params, **rest)`` for a type in :data:`OPTIMIZERS`."""
    opt = dict(opt)
    kind = opt.pop("type")
    if kind not in OPTIMIZERS:
        raise ValueError(f"unsupported optimizer '{kind}'; use one of {', '.join(OPTIMIZERS)}")
    if "betas" in opt:
        opt["betas"] = tuple(opt["betas"])
    return optimizer_class(kind)(params, **opt)
