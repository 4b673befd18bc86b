"""Learning-rate schedules with BasicSR's names and semantics, plus linear warm-up.

Each schedule is a pure function ``iteration -> factor`` wrapped in ``LambdaLR``, so resuming only needs
the iteration counter (``LambdaLR.state_dict`` holds it) and the result never depends on how many times
``step`` was called before. timm's schedulers do not express BasicSR's unequal cosine periods with
per-restart weights, which existing option files rely on.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["SCHEDULERS", "build_scheduler", "multistep_factor", "cosine_restart_factor"]

#: The schedules an option file may name (``train.scheduler.type``) and the keys each one reads.
SCHEDULERS: dict[str, frozenset[str]] = {
    "MultiStepLR": frozenset({"milestones", "gamma", "restarts", "restart_weights"}),
    "MultiStepRestartLR": frozenset({"milestones", "gamma", "restarts", "restart_weights"}),
    "CosineAnnealingRestartLR": frozenset({"periods", "restart_weights", "eta_min"}),
    "CosineAnnealingLR": frozenset({"T_max", "eta_min"}),
    "ConstantLR": frozenset(),
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


class _Factor:
    """Picklable ``iteration -> factor`` for one parameter group (LambdaLR saves callable objects' dicts)."""

    def __init__(self, opt: Mapping[str, Any], base_lr: float, warmup_iter: int) -> None:
        self.opt = dict(opt)
        self.base_lr = base_lr
        self.warmup_iter = warmup_iter

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
        elif kind == "CosineAnnealingLR":
            f = cosine_restart_factor(it, self.base_lr, [self.opt["T_max"]], None, self.opt.get("eta_min", 0.0))
        else:
            f = 1.0
        if self.warmup_iter > 0 and it < self.warmup_iter:
            f *= (it + 1) / self.warmup_iter  # BasicSR-style linear ramp to the scheduled value
        return f


def build_scheduler(optimizer: Optimizer, opt: Mapping[str, Any] | None, warmup_iter: int = -1) -> LambdaLR:
    """A ``LambdaLR`` whose factor at iteration ``t`` is the named schedule (and warm-up) at ``t``.

    Call ``scheduler.step()`` once per training iteration, after ``optimizer.step()``.
    """
    opt = opt or {"type": "ConstantLR"}
    factors = [_Factor(opt, group["lr"], warmup_iter) for group in optimizer.param_groups]
    return LambdaLR(optimizer, lr_lambda=factors)
