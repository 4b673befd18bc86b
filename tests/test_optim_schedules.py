"""Optimizers and learning-rate schedules an option file may name: torch's semantics, step by step, and one
clear error for every misuse."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from restoration.optim.optimizers import OPTIMIZERS, OptimizerError, build_optimizer, optimizer_problem
from restoration.optim.schedulers import build_scheduler
from restoration.options.parse import OptionsError, parse_options
from tests.helpers import make_sr_pairs, train_options, write_options


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=2, size=32, scale=2)


def _lrs(scheduler_opt: dict, steps: int, lr: float = 0.1, warmup_iter: int = -1, total_iter: int | None = None):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = build_scheduler(opt, scheduler_opt, warmup_iter, total_iter)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def _torch_lrs(cls, steps: int, lr: float = 0.1, **kwargs) -> list[float]:  # noqa: ANN001
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = cls(opt, **kwargs)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("kwargs", [{"pct_start": 0.3}, {"pct_start": 0.25, "anneal_strategy": "linear"},
                                    {"pct_start": 0.2, "three_phase": True, "div_factor": 10, "final_div_factor": 100}])
def test_one_cycle_follows_torch_step_by_step(kwargs: dict) -> None:
    ours = _lrs({"type": "OneCycleLR", "max_lr": 0.5, "total_steps": 40, **kwargs}, 40)
    theirs = _torch_lrs(torch.optim.lr_scheduler.OneCycleLR, 40, max_lr=0.5, total_steps=40, **kwargs)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_one_cycle_defaults_to_the_optimizer_lr_and_total_iter() -> None:
    ours = _lrs({"type": "OneCycleLR"}, 30, lr=0.2, total_iter=30)
    theirs = _torch_lrs(torch.optim.lr_scheduler.OneCycleLR, 30, max_lr=0.2, total_steps=30)
    assert ours == pytest.approx(theirs, rel=1e-12)


def test_linear_lr_follows_torch() -> None:
    ours = _lrs({"type": "LinearLR", "start_factor": 0.1, "end_factor": 0.7, "total_iters": 8}, 12)
    theirs = _torch_lrs(torch.optim.lr_scheduler.LinearLR, 12, start_factor=0.1, end_factor=0.7, total_iters=8)
    assert ours == pytest.approx(theirs, rel=1e-12)


@pytest.mark.parametrize("decay_type,mid", [("linear", 0.055), ("cosine", 0.055), ("sqrt", 0.1 - 0.09 * 0.5**0.5)])
def test_wsd_warms_up_holds_then_decays_to_eta_min(decay_type: str, mid: float) -> None:
    lrs = _lrs({"type": "WSD", "decay_iter": 10, "eta_min": 0.01, "decay_type": decay_type}, 31, lr=0.1,
               warmup_iter=4, total_iter=30)
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # warm-up composes
    assert lrs[4:21] == pytest.approx([0.1] * 17)  # stable until total_iter - decay_iter = 20
    assert lrs[25] == pytest.approx(mid)  # half-way through the decay
    assert lrs[30] == pytest.approx(0.01)  # eta_min at total_iter


def test_warmup_composes_with_one_cycle() -> None:
    plain = _lrs({"type": "OneCycleLR", "total_steps": 20}, 20)
    warm = _lrs({"type": "OneCycleLR", "total_steps": 20}, 20, warmup_iter=5)
    assert warm[:5] == pytest.approx([p * (i + 1) / 5 for i, p in enumerate(plain[:5])])
    assert warm[5:] == pytest.approx(plain[5:])


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax", "RMSprop", "AdamW"])
def test_torch_optimizers_build_with_their_own_options(name: str) -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = build_optimizer([p], {"type": name, "lr": 0.01, "weight_decay": 0.1})
    assert type(opt).__name__ == name and opt.param_groups[0]["weight_decay"] == 0.1


def test_unknown_optimizer_suggests_and_lists_what_is_installed() -> None:
    msg = optimizer_problem("Adamm")
    assert "did you mean 'Adam'" in msg and "installed: Adam, AdamW, SGD, NAdam" in msg


def test_a_missing_extra_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pytorch_optimizer" else real(name, *a))
    assert optimizer_problem("Lion") == ("optimizer 'Lion' needs the package pytorch-optimizer: pip install "
                                         "pytorch-optimizer  (or pip install -e \".[optim]\")")
    assert "the 'optim' extra adds Adan, Lion, Prodigy, SOAP, ADOPT" in optimizer_problem("Lino")


@pytest.mark.parametrize("name", [n for n, t in OPTIMIZERS.items() if not t.startswith("torch")])
def test_library_optimizers_refuse_an_option_their_constructor_does_not_name(name: str) -> None:
    module = OPTIMIZERS[name].split(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed (the 'optim' extra)")
    p = torch.nn.Parameter(torch.ones(3))
    assert build_optimizer([p], {"type": name, "lr": 1e-3}) is not None
    with pytest.raises(OptimizerError, match="unknown key 'weight_decai'"):
        build_optimizer([p], {"type": name, "lr": 1e-3, "weight_decai": 0.1})  # their **kwargs would swallow it


@pytest.mark.parametrize("edit,message", [
    ({"train.optim_g": {"type": "Adamm", "lr": 1e-3}}, "did you mean 'Adam'"),
    ({"train.optim_g": {"type": "NAdam", "lr": 1e-3, "betaz": [0.9, 0.99]}}, "'betaz' (did you mean 'betas'?)"),
    ({"train.scheduler": {"type": "WSD"}}, "WSD needs 'decay_iter'"),
    ({"train.scheduler": {"type": "WSD", "decay_iter": 50}}, "WSD 'decay_iter' 50 > total_iter 6"),
    ({"train.scheduler": {"type": "OneCycleLR", "total_steps": 3}}, "'total_steps' 3 < total_iter 6"),
    ({"train.scheduler": {"type": "OneCycleLR", "anneal_strategy": "cosine"}}, "must be 'cos' or 'linear'"),
    ({"train.scheduler": {"type": "LinearLR", "total_iter": 3}}, "'train.scheduler': unknown key 'total_iter'"),
])
def test_option_errors(data, tmp_path: Path, edit: dict, message: str) -> None:
    opt = train_options(data, "optim_errors")
    for key, value in edit.items():
        opt["train"][key.split(".")[1]] = value
    with pytest.raises(OptionsError) as info:
        parse_options(str(write_options(opt, tmp_path / "o.yml")), is_train=True, root=tmp_path)
    assert message in str(info.value)


@pytest.mark.parametrize("sched", [{"type": "OneCycleLR"}, {"type": "WSD", "decay_iter": 3},
                                   {"type": "LinearLR", "start_factor": 0.5, "total_iters": 4}])
def test_new_schedules_train_through_train_py(data, tmp_path: Path, sched: dict) -> None:
    from restoration.cli.train import main as train_main

    opt = train_options(data, f"sched_{sched['type']}")
    opt["train"]["scheduler"] = sched
    opt["train"]["optim_g"] = {"type": "NAdam", "lr": 1e-3}
    assert train_main(["-opt", str(write_options(opt, tmp_path / "t.yml")), "--root", str(tmp_path)]) == 0
