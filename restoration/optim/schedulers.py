"""Learning-rate schedules with BasicSR's and torch's names and semantics, plus linear warm-up.

Each schedule is a pure function ``iteration -> factor`` wrapped in ``LambdaLR``, so resuming only needs
the iteration counter (``LambdaLR.state_dict`` holds it) and the result never depends on how many times
``step`` was called before. timm's schedulers do not express BasicSR's unequal cosine periods with
per-restart weights, which existing option files rely on. ``LinearLR`` and ``OneCycleLR`` follow torch's
classes of those names (the tests compare every step with them); ``WSD`` is warmup-stable-decay: the
scheduled lr until the last ``decay_iter`` iterations, then a decay to ``eta_min``. ``warmup_iter``
multiplies any of them by a linear ramp. ``ReduceLROnPlateau`` (:mod:`restoration.optim.plateau`) is
constant in the iteration and multiplied by a factor that a validation metric lowers.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from restoration.schema import Key

from restoration.optim.plateau import PLATEAU_OPTIONS, PlateauLR, PlateauState, default_val_set

__all__ = ["SCHEDULERS", "WSD_DECAYS", "build_scheduler", "scheduler_problems", "multistep_factor", "cosine_restart_factor", "cosine_cyclic_lr", "linear_factor",
           "one_cycle_lr", "wsd_factor"]

_NUM = (int, float)
_RESTARTS = {
    "restarts": Key((list,), default=[0], doc="iterations at which the schedule restarts"),
    "restart_weights": Key((list,), default=[1.0], doc="lr factor of each restart"),
}

#: The schedules an option file may name (``train.scheduler.type``) and the keys each one reads (types here;
#: values against ``total_iter`` and the rest of the file: :func:`scheduler_problems`, the option check).
SCHEDULERS: dict[str, dict[str, Key]] = {
    "MultiStepLR": {"milestones": Key((list,), default=[], doc="iterations at which the lr is multiplied by gamma"),
                    "gamma": Key(_NUM, default=0.1, doc="factor at each milestone"), **_RESTARTS},
    "MultiStepRestartLR": {"milestones": Key((list,), default=[], doc="iterations at which the lr is multiplied by gamma"),
                           "gamma": Key(_NUM, default=0.1, doc="factor at each milestone"), **_RESTARTS},
    "CosineAnnealingRestartLR": {"periods": Key((list,), doc="length of each cosine period (iterations)"),
                                 "restart_weights": Key((list,), doc="lr factor of each period"),
                                 "eta_min": Key(_NUM, default=0.0, doc="the lr at the end of each period")},
    "CosineAnnealingRestartCyclicLR": {
        "periods": Key((list,), required=True, doc="length of each cosine period (iterations)"),
        "restart_weights": Key((list,), doc="lr factor of each period (default: 1 each)"),
        "eta_mins": Key((list,), doc="the lr at the end of each period (default: 0 each)")},
    "CosineAnnealingLR": {"T_max": Key((int,), doc="iterations of the half cosine"),
                          "eta_min": Key(_NUM, default=0.0, doc="the lr at its end")},
    "ConstantLR": {},
    "LinearLR": {"start_factor": Key(_NUM, default=1.0 / 3, doc="lr factor at the first iteration"),
                 "end_factor": Key(_NUM, default=1.0, doc="lr factor after total_iters"),
                 "total_iters": Key((int,), default=5, doc="iterations of the ramp")},
    "OneCycleLR": {"max_lr": Key(_NUM, doc="peak lr (default: the optimizer's lr)"),
                   "total_steps": Key((int,), doc="length of the cycle (default: total_iter)"),
                   "pct_start": Key(_NUM, default=0.3, doc="fraction of the cycle spent rising"),
                   "anneal_strategy": Key((str,), default="cos", doc="cos or linear"),
                   "div_factor": Key(_NUM, default=25.0, doc="initial lr = max_lr / div_factor"),
                   "final_div_factor": Key(_NUM, default=1e4, doc="final lr = initial lr / final_div_factor"),
                   "three_phase": Key((bool,), default=False, doc="torch's three-phase variant")},
    "WSD": {"decay_iter": Key((int,), doc="iterations of the final decay"),
            "eta_min": Key(_NUM, default=0.0, doc="the lr at the end of the decay"),
            "decay_type": Key((str,), default="linear", doc="linear, cosine or sqrt")},
    # driven by a validation metric (restoration.optim.plateau), on top of a constant schedule
    "ReduceLROnPlateau": PLATEAU_OPTIONS,
}

#: How WSD's decay phase falls from the lr to ``eta_min`` (fraction ``t`` of the phase done).
WSD_DECAYS: dict[str, Any] = {
    "linear": lambda t: 1.0 - t,
    "cosine": lambda t: 0.5 * (1.0 + math.cos(math.pi * t)),
    "sqrt": lambda t: 1.0 - math.sqrt(t),
}


def multistep_factor(
    it: int,
    milestones: Sequence[int],
    gamma: float = 0.1,
    restarts: Sequence[int] = (0,),
    restart_weights: Sequence[float] = (1.0,),
) -> float:
    """BasicSR ``MultiStepRestartLR``: decay by ``gamma`` at each milestone; at a restart the factor
    jumps back to that restart's weight. Milestones are absolute iterations."""
    weight, last_restart = 1.0, 0
    for r, w in zip(restarts, restart_weights):
        if r > 0 and it >= r:
            weight, last_restart = w, r
    passed = sum(1 for m in milestones if last_restart < m <= it)
    return weight * gamma**passed


def cosine_restart_factor(
    it: int, base_lr: float, periods: Sequence[int], restart_weights: Sequence[float] | None = None, eta_min: float = 0.0
) -> float:
    """BasicSR ``CosineAnnealingRestartLR``: cosine from ``weight·lr`` to ``eta_min`` over each period."""
    weights = list(restart_weights or [1.0] * len(periods))
    start = 0
    for i, (period, weight) in enumerate(zip(periods, weights)):
        if it < start + period or i == len(periods) - 1:
            t = min(it - start, period)
            lr = eta_min + weight * 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * t / period))
            return lr / base_lr if base_lr else 0.0
        start += period
    return eta_min / base_lr if base_lr else 0.0


def cosine_cyclic_lr(it: int, base_lr: float, periods: Sequence[int], restart_weights: Sequence[float] | None = None,
                     eta_mins: Sequence[float] | None = None) -> float:
    """Restormer's ``CosineAnnealingRestartCyclicLR``: the lr at scheduler step ``it``.

    Period ``i`` holds the steps up to and including its end (``sum(periods[:i+1])``) and runs a cosine from
    ``eta_mins[i] + weight·(lr − eta_mins[i])`` at its start to ``eta_mins[i]`` at its end, so step ``periods[0]``
    is still the first period's last value; after the last period the lr stays at its end value (Restormer's
    class has no period there and fails). Restormer's files: ``periods [92000, 208000]``, ``eta_mins
    [3e-4, 1e-6]`` with lr 3e-4: a constant 3e-4, then a cosine down to 1e-6.
    """
    weights = list(restart_weights or [1.0] * len(periods))
    floors = list(eta_mins or [0.0] * len(periods))
    start = 0
    for i, period in enumerate(periods):
        if it <= start + period or i == len(periods) - 1:
            t = min(it - start, period)
            return floors[i] + weights[i] * 0.5 * (base_lr - floors[i]) * (1 + math.cos(math.pi * t / period))
        start += period
    raise AssertionError("unreachable: the last period catches every step")


def linear_factor(it: int, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5) -> float:
    """torch ``LinearLR``: the factor moves linearly from ``start_factor`` to ``end_factor`` over ``total_iters``."""
    return start_factor + (end_factor - start_factor) * min(it, total_iters) / total_iters


def one_cycle_lr(
    it: int,
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> float:
    """torch ``OneCycleLR``'s lr at step ``it`` (held at the last value after ``total_steps``): up from
    ``max_lr / div_factor`` to ``max_lr`` over ``pct_start`` of the steps, then down to
    ``max_lr / div_factor / final_div_factor`` (``three_phase``: back to the start first)."""
    initial = max_lr / div_factor
    low = initial / final_div_factor
    if three_phase:
        phases = [(pct_start * total_steps - 1, initial, max_lr), (2 * pct_start * total_steps - 2, max_lr, initial),
                  (total_steps - 1, initial, low)]
    else:
        phases = [(pct_start * total_steps - 1, initial, max_lr), (total_steps - 1, max_lr, low)]
    step = min(it, total_steps - 1)
    start_step = 0.0
    for i, (end_step, start_lr, end_lr) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            if anneal_strategy == "cos":
                return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1)
            return (end_lr - start_lr) * pct + start_lr
        start_step = end_step
    raise AssertionError("unreachable")


def wsd_factor(it: int, base_lr: float, total_iter: int, decay_iter: int, eta_min: float = 0.0,
               decay_type: str = "linear") -> float:
    """Warmup-stable-decay: 1 until ``total_iter - decay_iter``, then down to ``eta_min / base_lr`` at
    ``total_iter`` along :data:`WSD_DECAYS` ``[decay_type]`` (the warm-up is ``warmup_iter``'s ramp)."""
    start = total_iter - decay_iter
    if it < start or decay_iter <= 0:
        return 1.0
    t = min(1.0, (it - start) / decay_iter)
    floor = eta_min / base_lr if base_lr else 0.0
    return floor + (1.0 - floor) * WSD_DECAYS[decay_type](t)


class _Factor:
    """Picklable ``iteration -> factor`` for one parameter group (LambdaLR saves callable objects' dicts)."""

    def __init__(self, opt: Mapping[str, Any], base_lr: float, warmup_iter: int, total_iter: int | None = None) -> None:
        self.opt = dict(opt)
        self.base_lr = base_lr
        self.warmup_iter = warmup_iter
        self.total_iter = total_iter

    def __call__(self, it: int) -> float:
        kind = self.opt.get("type", "ConstantLR")
        if kind in ("MultiStepLR", "MultiStepRestartLR"):
            f = multistep_factor(
                it,
                self.opt.get("milestones", []),
                self.opt.get("gamma", 0.1),
                self.opt.get("restarts", [0]),
                self.opt.get("restart_weights", [1.0]),
            )
        elif kind == "CosineAnnealingRestartLR":
            f = cosine_restart_factor(
                it, self.base_lr, self.opt["periods"], self.opt.get("restart_weights"), self.opt.get("eta_min", 0.0)
            )
        elif kind == "CosineAnnealingRestartCyclicLR":
            f = cosine_cyclic_lr(it, self.base_lr, self.opt["periods"], self.opt.get("restart_weights"),
                                 self.opt.get("eta_mins")) / self.base_lr if self.base_lr else 0.0
        elif kind == "CosineAnnealingLR":
            f = cosine_restart_factor(it, self.base_lr, [self.opt["T_max"]], None, self.opt.get("eta_min", 0.0))
        elif kind == "LinearLR":
            f = linear_factor(it, **{k: v for k, v in self.opt.items() if k != "type"})
        elif kind == "OneCycleLR":
            args = {k: v for k, v in self.opt.items() if k != "type"}
            args.setdefault("max_lr", self.base_lr)
            args.setdefault("total_steps", self.total_iter)
            f = one_cycle_lr(it, **args) / self.base_lr if self.base_lr else 0.0
        elif kind == "WSD":
            f = wsd_factor(it, self.base_lr, self.total_iter or 0, self.opt["decay_iter"],
                           self.opt.get("eta_min", 0.0), self.opt.get("decay_type", "linear"))
        else:
            f = 1.0
        if self.warmup_iter > 0 and it < self.warmup_iter:
            f *= (it + 1) / self.warmup_iter  # BasicSR-style linear ramp to the scheduled value
        return f


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_ints(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_positive_int(v) for v in value)


def scheduler_problems(opt: Mapping[str, Any], total_iter: Any) -> list[str]:
    """What is wrong with the settings of a ``LinearLR``, ``OneCycleLR``, ``CosineAnnealingRestartCyclicLR`` or
    ``WSD`` schedule (keys and types of every schedule are checked by the option validator from
    :data:`SCHEDULERS`)."""
    kind, bad = opt.get("type"), []
    total = total_iter if _positive_int(total_iter) else None
    if kind == "LinearLR" and "total_iters" in opt and not _positive_int(opt["total_iters"]):
        bad.append(f"LinearLR 'total_iters' must be a positive integer, got {opt['total_iters']!r}")
    if kind == "OneCycleLR":
        steps = opt.get("total_steps", total)
        if steps is not None and not _positive_int(steps):
            bad.append(f"OneCycleLR 'total_steps' must be a positive integer, got {steps!r}")
        elif steps is not None and total is not None and steps < total:
            bad.append(f"OneCycleLR 'total_steps' {steps} < total_iter {total}: the cycle would end before training")
        if opt.get("anneal_strategy", "cos") not in ("cos", "linear"):
            bad.append(f"OneCycleLR 'anneal_strategy' must be 'cos' or 'linear', got {opt['anneal_strategy']!r}")
        pct = opt.get("pct_start", 0.3)
        if not isinstance(pct, (int, float)) or not 0 < pct < (0.5 if opt.get("three_phase") else 1):
            bad.append(f"OneCycleLR 'pct_start' must be in (0, 1) (three_phase: (0, 0.5)), got {pct!r}")
    if kind == "CosineAnnealingRestartCyclicLR":
        periods = opt.get("periods")  # required: a missing one is the declaration's problem
        if periods is not None and not _positive_ints(periods):
            bad.append(f"CosineAnnealingRestartCyclicLR 'periods' must be a non-empty list of positive integers, "
                       f"got {periods!r}")
        elif periods is not None:
            if total is not None and sum(periods) < total:
                bad.append(f"CosineAnnealingRestartCyclicLR 'periods' sum to {sum(periods)} < total_iter {total}")
            for key in ("restart_weights", "eta_mins"):
                values = opt.get(key)
                if values is not None and (not isinstance(values, list) or len(values) != len(periods)
                                           or not all(isinstance(v, (int, float)) for v in values)):
                    bad.append(f"CosineAnnealingRestartCyclicLR '{key}' must be a list of {len(periods)} numbers "
                               f"(one per period), got {values!r}")
    if kind == "WSD":
        decay = opt.get("decay_iter")
        if not _positive_int(decay):
            bad.append(f"WSD needs 'decay_iter', the iterations of the final decay (a positive integer), got {decay!r}")
        elif total is not None and decay > total:
            bad.append(f"WSD 'decay_iter' {decay} > total_iter {total}")
        if opt.get("decay_type", "linear") not in WSD_DECAYS:
            bad.append(f"WSD 'decay_type' must be one of {sorted(WSD_DECAYS)}, got {opt['decay_type']!r}")
    return bad


def build_scheduler(optimizer: Optimizer, opt: Mapping[str, Any] | None, warmup_iter: int = -1,
                    total_iter: int | None = None, options: Mapping[str, Any] | None = None) -> LambdaLR:
    """A ``LambdaLR`` whose factor at iteration ``t`` is the named schedule (and warm-up) at ``t``.

    Args:
        total_iter: ``train.total_iter``: where ``WSD`` ends and ``OneCycleLR``'s default ``total_steps``.
        options: The whole option file, read by ``ReduceLROnPlateau`` (its metric's ``better``, the first
            validation set's name); that schedule is a :class:`~restoration.optim.plateau.PlateauLR`.

    Call ``scheduler.step()`` once per training iteration, after ``optimizer.step()``.
    """
    opt = opt or {"type": "ConstantLR"}
    factors = [_Factor(opt, group["lr"], warmup_iter, total_iter) for group in optimizer.param_groups]
    if opt.get("type") == "ReduceLROnPlateau":
        options = options or {}
        metrics = (options.get("val") or {}).get("metrics") or {}
        better = (metrics.get(opt["metric"]) or {}).get("better", "higher")
        kwargs = {k: v for k, v in opt.items() if k not in ("type", "metric", "val_set")}
        plateau = PlateauState([group["lr"] for group in optimizer.param_groups], better == "higher", **kwargs)
        return PlateauLR(optimizer, factors, plateau, opt["metric"], opt.get("val_set") or default_val_set(options) or "")
    return LambdaLR(optimizer, lr_lambda=factors)
