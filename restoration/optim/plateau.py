"""``ReduceLROnPlateau`` driven by a validation metric, inside the iteration-based schedules.

torch's semantics (``torch.optim.lr_scheduler.ReduceLROnPlateau``): after each validation the chosen metric
is compared with the best so far (``threshold_mode`` ``rel``: better by more than ``threshold`` times the
best; ``abs``: by more than ``threshold``); after more than ``patience`` validations without improvement
the lr is multiplied by ``factor`` (never below ``min_lr``), then ``cooldown`` validations are not counted.
The direction comes from the metric's own ``val.metrics.<name>.better`` (``higher``: torch's ``max``
mode), so it is never configured twice. Patience and cooldown count validations, not iterations.

The reduction is a factor per parameter group that multiplies the iteration schedule (constant, with
``train.warmup_iter``'s ramp), so a warm-up composes; ``min_lr`` bounds the factor as ``min_lr / lr``.
Its whole state (best, bad validations, cooldown, factors) is a small dict that the training state
saves, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from restoration.schema import Key, did_you_mean

__all__ = ["PLATEAU_OPTIONS", "PlateauState", "PlateauLR", "plateau_problems", "default_val_set"]

#: The keys of ``train.scheduler`` with ``type: ReduceLROnPlateau`` (torch's names; ``metric`` and ``val_set``
#: name what drives it). Ranges and the metric are checked against the whole file by :func:`plateau_problems`.
PLATEAU_OPTIONS: dict[str, Key] = {
    "metric": Key((str,), doc="the val.metrics entry that drives it"),
    "val_set": Key((str,), doc="the validation set whose score counts (default: the first)"),
    "factor": Key((int, float), default=0.1, doc="lr multiplier at each reduction, in (0, 1)"),
    "patience": Key((int,), default=10, doc="validations without improvement before a reduction"),
    "threshold": Key((int, float), default=1e-4, doc="smallest improvement that counts"),
    "threshold_mode": Key((str,), default="rel", doc="rel: the threshold is relative to the best; abs: absolute"),
    "cooldown": Key((int,), default=0, doc="validations not counted after a reduction"),
    "min_lr": Key((int, float), default=0, doc="lower bound of the lr"),
}

#: torch's smallest lr change that counts as a reduction.
_EPS = 1e-8


class PlateauState:
    """The plateau bookkeeping shared by an optimizer's parameter groups.

    Args:
        base_lrs: Each group's configured lr (``min_lr`` is divided by it).
        higher_is_better: The metric's direction (torch ``mode='max'`` when True).
        factor, patience, threshold, threshold_mode, cooldown, min_lr: torch's arguments of those names.
    """

    def __init__(self, base_lrs: Sequence[float], higher_is_better: bool, factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0) -> None:
        self.base_lrs = [float(lr) for lr in base_lrs]
        self.higher = higher_is_better
        self.factor, self.patience, self.cooldown = float(factor), int(patience), int(cooldown)
        self.threshold, self.threshold_mode, self.min_lr = float(threshold), threshold_mode, float(min_lr)
        self.best = -math.inf if higher_is_better else math.inf
        self.num_bad = 0
        self.cooldown_counter = 0
        self.factors = [1.0] * len(self.base_lrs)

    def is_better(self, value: float) -> bool:
        """Whether ``value`` improves on the best by more than the threshold (NaN never does)."""
        if self.threshold_mode == "rel":  # torch's exact comparisons (also for a negative best)
            return value > self.best * (1 + self.threshold) if self.higher else value < self.best * (1 - self.threshold)
        return value > self.best + self.threshold if self.higher else value < self.best - self.threshold

    def step(self, value: float) -> bool:
        """Feed one validation's metric; returns whether the lr was reduced now."""
        if self.is_better(value):
            self.best, self.num_bad = float(value), 0
        else:
            self.num_bad += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad = 0
        if self.num_bad <= self.patience:
            return False
        reduced = False
        for i, base in enumerate(self.base_lrs):
            old = base * self.factors[i]
            new = max(old * self.factor, self.min_lr)
            if old - new > _EPS:
                self.factors[i] = new / base if base else 0.0
                reduced = True
        self.cooldown_counter, self.num_bad = self.cooldown, 0
        return reduced

    def state_dict(self) -> dict[str, Any]:
        """Plain values only (saved in the training state and as JSON beside it)."""
        return {"best": self.best, "num_bad": self.num_bad, "cooldown_counter": self.cooldown_counter,
                "factors": list(self.factors)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = float(state["best"])
        self.num_bad = int(state["num_bad"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.factors = [float(f) for f in state["factors"]]


class _Scaled:
    """Picklable ``iteration -> schedule(iteration) * plateau factor`` of one parameter group."""

    def __init__(self, schedule: Any, plateau: PlateauState, group: int) -> None:
        self.schedule, self.plateau, self.group = schedule, plateau, group

    def __call__(self, it: int) -> float:
        return self.schedule(it) * self.plateau.factors[self.group]


class PlateauLR(LambdaLR):
    """A ``LambdaLR`` over ``schedules`` (one per group) whose lr also follows a validation metric.

    Args:
        metric: Name of the metric in ``val.metrics``; ``val_set``: the validation set's name it is read from.
    """

    def __init__(self, optimizer: Optimizer, schedules: Sequence[Any], plateau: PlateauState, metric: str,
                 val_set: str) -> None:
        self.plateau, self.metric, self.val_set = plateau, metric, val_set
        super().__init__(optimizer, [_Scaled(s, plateau, i) for i, s in enumerate(schedules)])

    def step_metric(self, scores: Mapping[str, Mapping[str, float]]) -> float | None:
        """Feed ``scores[val_set][metric]`` of a validation (``{set name: {metric: value}}``, the same on every
        rank) and apply the new lr at once, as torch does. Returns the value used, or None when that set or
        metric was not scored (a failed or stopped validation is not counted)."""
        value = (scores.get(self.val_set) or {}).get(self.metric)
        if value is None:
            return None
        self.plateau.step(float(value))
        for group, lr_lambda, base in zip(self.optimizer.param_groups, self.lr_lambdas, self.base_lrs):
            group["lr"] = base * lr_lambda(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        return float(value)


def default_val_set(opt: Mapping[str, Any]) -> str | None:
    """The name of the first ``datasets.val*`` entry (its ``name``, else its key), as the loop names it."""
    datasets = opt.get("datasets") if isinstance(opt.get("datasets"), Mapping) else {}
    for key, dopt in datasets.items():
        if str(key).startswith("val"):
            return str(dopt.get("name", key)) if isinstance(dopt, Mapping) else str(key)
    return None


def plateau_problems(sched: Mapping[str, Any], opt: Mapping[str, Any]) -> list[str]:
    """What is wrong with a ``ReduceLROnPlateau`` schedule given the whole option file: the metric must be one
    that validation computes, on a validation set that exists, and torch's ranges must hold."""
    bad: list[str] = []
    val = opt.get("val") if isinstance(opt.get("val"), Mapping) else None
    metric = sched.get("metric")
    if not isinstance(metric, str):
        bad.append(f"ReduceLROnPlateau needs 'metric', the name of a 'val.metrics' entry, got {metric!r}")
    elif val is None:
        bad.append(f"ReduceLROnPlateau follows metric '{metric}' but there is no 'val' section: validation "
                   "computes no metric")
    else:
        metrics = val.get("metrics") if isinstance(val.get("metrics"), Mapping) else {}
        if metric not in metrics:
            bad.append(f"ReduceLROnPlateau 'metric': validation computes no metric '{metric}' "
                       f"(val.metrics has {sorted(metrics) or 'none'}){did_you_mean(metric, set(metrics))}")
    names = []
    datasets = opt.get("datasets") if isinstance(opt.get("datasets"), Mapping) else {}
    for key, dopt in datasets.items():
        if str(key).startswith("val"):
            names.append(str(dopt.get("name", key)) if isinstance(dopt, Mapping) else str(key))
    val_set = sched.get("val_set")
    if val is not None and not names:
        bad.append("ReduceLROnPlateau needs a validation set: add a 'datasets.val_1' entry")
    elif val_set is not None and val_set not in names:
        bad.append(f"ReduceLROnPlateau 'val_set' {val_set!r} is not a validation set's name (they are {names})")
    factor = sched.get("factor", 0.1)
    if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not 0 < factor < 1:
        bad.append(f"ReduceLROnPlateau 'factor' must be in (0, 1), got {factor!r}")
    for key in ("patience", "cooldown"):
        value = sched.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            bad.append(f"ReduceLROnPlateau '{key}' must be a whole number >= 0 (validations), got {value!r}")
    for key in ("threshold", "min_lr"):
        value = sched.get(key, 0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            bad.append(f"ReduceLROnPlateau '{key}' must be a number >= 0, got {value!r}")
    if sched.get("threshold_mode", "rel") not in ("rel", "abs"):
        bad.append(f"ReduceLROnPlateau 'threshold_mode' must be 'rel' or 'abs', got {sched['threshold_mode']!r}")
    return bad
