"""The optimizers an option file may name (``optim_g: {type: AdamW, lr: 2e-4, ...}``): the one table.

torch's own optimizers are always there. Two optional packages add the ones traiNNer-redux and neosr users
ask for, installed with ``pip install -e ".[optim]"``:

* ``pytorch-optimizer`` (Apache-2.0): Adan, Lion, Prodigy, SOAP and ADOPT. One well-kept package with
  tested implementations of the recent optimizers, instead of five copied files.
* ``schedulefree`` (Apache-2.0, Meta's reference implementation): ``AdamWScheduleFree``. It keeps two
  points; the trainer switches it to the averaged one (``optimizer.eval()``) before validating and saving
  weights, and back after (:func:`uses_eval_point`).

Every option of an optimizer is a keyword of its constructor; a key the constructor does not name is an
error even where the class swallows ``**kwargs`` (pytorch-optimizer's do), so a typo never goes unnoticed.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import inspect
from typing import Any, Mapping

import torch
from torch import nn

from restoration.declare import Declared, refuse_bad_arguments
from restoration.errors import OptimizerError
from restoration.schema import Key

__all__ = ["OPTIMIZERS", "EXTRAS", "OptimizerError", "build_optimizer", "optimizer_class", "optimizer_options",
           "optimizer_problem", "optimizer_declaration", "schedule_problem", "uses_eval_point"]

#: ``type`` name -> ``"module:attribute"`` of the class.
OPTIMIZERS: dict[str, str] = {
    **{name: f"torch.optim:{name}" for name in ("Adam", "AdamW", "SGD", "NAdam", "RAdam", "Adamax", "RMSprop")},
    **{name: f"pytorch_optimizer:{name}" for name in ("Adan", "Lion", "Prodigy", "SOAP", "ADOPT")},
    "AdamWScheduleFree": "schedulefree:AdamWScheduleFree",
}

#: Optional module -> the package that provides it (installed by the ``optim`` extra).
EXTRAS: dict[str, str] = {"pytorch_optimizer": "pytorch-optimizer", "schedulefree": "schedulefree"}


def _installed(module: str) -> bool:
    return module == "torch.optim" or importlib.util.find_spec(module) is not None


def optimizer_problem(name: Any) -> str | None:
    """Why ``type: name`` cannot be used here (unknown, or its optional package missing); None if it can."""
    if name not in OPTIMIZERS:
        close = difflib.get_close_matches(str(name), list(OPTIMIZERS), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        here = [n for n, t in OPTIMIZERS.items() if _installed(t.split(":")[0])]
        extra = [n for n in OPTIMIZERS if n not in here]
        more = f"; the 'optim' extra adds {', '.join(extra)}" if extra else ""
        return f"unknown optimizer {name!r}{hint}; installed: {', '.join(here)}{more}"
    module = OPTIMIZERS[name].split(":")[0]
    if not _installed(module):
        return (f"optimizer {name!r} needs the package {EXTRAS[module]}: "
                f"pip install {EXTRAS[module]}  (or pip install -e \".[optim]\")")
    return None


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The class of a table name.

    Raises:
        OptimizerError: see :func:`optimizer_problem`.
    """
    problem = optimizer_problem(name)
    if problem:
        raise OptimizerError(problem)
    module, attr = OPTIMIZERS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def optimizer_options(cls: type) -> dict[str, inspect.Parameter]:
    """The options ``cls`` declares: its named constructor keywords but ``params`` (``**kwargs`` is not one)."""
    return {n: p for n, p in inspect.signature(cls).parameters.items()
            if n != "params" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _value_types(default: Any) -> tuple[type, ...]:
    """The YAML types an optimizer keyword takes, read from its default: a number takes any number, a tuple
    (``betas``) a list, a flag a bool; a keyword defaulting to None takes anything."""
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, (int, float)):
        return (int, float)
    if isinstance(default, (tuple, list)):
        return (list, tuple)
    if isinstance(default, str):
        return (str,)
    return (object,)


@functools.lru_cache(maxsize=None)
def optimizer_declaration(name: str) -> Declared:
    """The options of table optimizer ``name`` as a :class:`~restoration.declare.Declared` row: its named
    constructor keywords but ``params`` (:func:`optimizer_options`), typed by their defaults, and ``lr``,
    which the framework requires (schedules and logs read it). A ``**kwargs`` of the class declares nothing.

    Raises:
        OptimizerError: see :func:`optimizer_problem`.
    """
    cls = optimizer_class(name)
    options = {key: Key(_value_types(p.default), default=None if p.default is p.empty else p.default,
                        required=p.default is p.empty)
               for key, p in optimizer_options(cls).items()}
    options["lr"] = Key((int, float), required=True, doc="learning rate")
    return Declared(cls.__name__, options)


def uses_eval_point(optimizer: torch.optim.Optimizer | type) -> bool:
    """Whether ``optimizer`` (or its class) keeps a separate point to evaluate at (schedule-free): then weights
    are validated and saved at ``optimizer.eval()``'s point (:meth:`Trainer.evaluation_point`)."""
    return callable(getattr(optimizer, "eval", None)) and callable(getattr(optimizer, "train", None))


def schedule_problem(name: str, train: Mapping[str, Any]) -> str | None:
    """Why the ``train`` section's schedule cannot drive optimizer ``name`` (None: it can). A schedule-free
    optimizer replaces the schedule: a ``scheduler`` or ``warmup_iter`` beside it would fight its averaging."""
    if optimizer_problem(name) or not uses_eval_point(optimizer_class(name)):
        return None
    scheduler = train.get("scheduler")
    kind = scheduler.get("type") if isinstance(scheduler, Mapping) else None
    if kind not in (None, "ConstantLR"):
        return f"{name} is schedule-free: remove 'train.scheduler' ({kind}); it needs a constant lr"
    if isinstance(train.get("warmup_iter"), int) and train["warmup_iter"] > 0:
        return f"{name} is schedule-free: use its own 'warmup_steps' instead of 'train.warmup_iter'"
    return None


def build_optimizer(params: list[nn.Parameter], opt: Mapping[str, Any]) -> torch.optim.Optimizer:
    """``<type>(params, **rest)`` for a type in :data:`OPTIMIZERS` (options checked before, at start-up).

    Raises:
        OptimizerError: unknown or unavailable type, or options :func:`optimizer_declaration` refuses (not
            checked again when the start-up check found exactly these clean).
    """
    opt = dict(opt)
    name = opt.pop("type")
    cls = optimizer_class(name)
    refuse_bad_arguments(optimizer_declaration(name), opt, OptimizerError)  # not again after the start-up check
    if "betas" in opt:
        opt["betas"] = tuple(opt["betas"])
    return cls(params, **opt)
