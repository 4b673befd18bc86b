"""The trainer contract proven by a trainer that lives in this file only: two networks, two optimizers.

:class:`TwoNetTrainer` is what an adversarial trainer needs (a generator ``g`` and a critic ``d``, each
with its own optimizer and schedule, ``d`` trained on ``g``'s outputs) and nothing more. It is named in
the option file as ``model_type: tests.test_trainer_contract:TwoNetTrainer`` and edits no file of the
package, yet checkpoints, resumes bit-exactly and runs on two gloo processes, because the base class owns
the members.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

import pytest
import torch
from torch import Tensor

from restoration.inference import restore
from restoration.losses.loss_list import build_losses, evaluate_losses
from restoration.models.base_model import Trainer
from restoration.schema import Key
from restoration.cli.train import main as train_main
from tests.helpers import make_sr_pairs, torchrun_train, train_options, write_options

ROOT = Path(__file__).resolve().parents[1]
TRAINER = "tests.test_trainer_contract:TwoNetTrainer"


class TwoNetTrainer(Trainer):
    """``g`` restores ``lq`` under the configured losses plus a small critic term; ``d`` learns to score
    targets above ``g``'s outputs (a Wasserstein-style critic, enough to exercise two optimizers)."""

    required_networks = ("g", "d")  # the option check asks for network_d (and its optim_d, declared below)
    options = {
        "optim_d": Key((dict,), required=True, doc="optimizer of the critic"),
        "critic_weight": Key((int, float), default=0.01, doc="weight of the critic term in g's loss"),
    }

    def __init__(self, opt: Mapping[str, Any], device: torch.device, world_size: int = 1, *,
                 is_train: bool = True) -> None:
        super().__init__(opt, device, world_size, is_train=is_train)
        self.add_network("g", opt["network_g"], ema_decay=float(self.train_opt.get("ema_decay", 0) or 0))
        self.add_network("d", opt["network_d"], train=self.is_train)
        if self.is_train:
            self.losses = {k: v.to(device) for k, v in build_losses(self.train_opt).items()}
            self.add_optimizer("g", self.train_opt["optim_g"], self.train_opt.get("scheduler"))
            self.add_optimizer("d", self.train_opt["optim_d"])
            self.weight = float(self.declared_options(self.train_opt)["critic_weight"])
        self.seen = torch.zeros(())  # a per-rank state: the sum of this rank's inputs

    def rank_state(self) -> dict[str, Any]:
        return {"seen": self.seen.clone()}

    def load_rank_state(self, state: Mapping[str, Any]) -> None:
        self.seen = state["seen"].clone()

    def _score(self, net: torch.nn.Module, x: Tensor) -> Tensor:
        return net(x).mean()

    def optimize_parameters(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Tensor]:
        self.seen = self.seen + batch["lq"].double().sum().float()
        critic = self.networks["d"]
        for p in critic.parameters():  # g's step: the critic is a fixed function (bare module: no DDP hooks)
            p.requires_grad_(False)
        output = self.train_networks["g"](batch["lq"])
        losses = evaluate_losses(self.losses, output, batch["gt"])
        losses["l_critic"] = -self.weight * self._score(critic, output)
        log = self.backward_step("g", losses, current_iter)
        for p in critic.parameters():
            p.requires_grad_(True)
        d = self.train_networks["d"]
        gap = self._score(d, output.detach()) - self._score(d, batch["gt"])
        return self.backward_step("d", {"l_d": gap}, current_iter, log)

    @torch.no_grad()
    def inference(self, lq: Tensor) -> Tensor:
        net = self.emas["g"].module if "g" in self.emas else self.networks["g"]
        net.eval()
        out = restore(net, lq, scale=self.scale)
        net.train(self.is_train)
        return out


#: The option files CountingTrainer.check_run was called with (``is_train``, ``name``), in order.
CHECK_RUN_CALLS: list[tuple[bool, str]] = []


class CountingTrainer(TwoNetTrainer):
    """:class:`TwoNetTrainer` that records each call of its whole-file check."""

    @classmethod
    def check_run(cls, opt: Mapping[str, Any], is_train: bool) -> list[str]:
        CHECK_RUN_CALLS.append((is_train, str(opt.get("name"))))
        return super().check_run(opt, is_train)


def _options(data: tuple[Path, Path], name: str, **extra: Any) -> dict[str, Any]:
    opt = train_options(data, name, model_type=TRAINER, **extra)
    opt["network_g"] = {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 2}
    opt["network_d"] = {"type": "SimpleSRNet", "num_feat": 4, "num_block": 1, "upscale": 1}
    opt["train"]["optim_d"] = {"type": "Adam", "lr": 1e-3}
    return opt


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _assert_equal_states(a: dict, b: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f"{key}.{name} differs"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=4, size=32, scale=2)


def test_options_of_an_outside_trainer_are_checked(data, tmp_path: Path) -> None:
    from restoration.options.parse import OptionsError, parse_options

    opt = _options(data, "bad")
    opt["train"]["optim_d"] = {"type": "Adamm", "lr": 1e-3}
    opt["train"]["critic_wieght"] = 1
    with pytest.raises(OptionsError) as err:
        parse_options(str(write_options(opt, tmp_path / "bad.yml")), is_train=True, root=tmp_path)
    text = str(err.value)
    assert "'train.optim_d.type': unknown optimizer 'Adamm' (did you mean 'Adam'?); installed: Adam, AdamW" in text
    assert "'train': unknown key 'critic_wieght' (did you mean 'critic_weight'?)" in text
    assert not (tmp_path / "experiments").exists()
    del opt["network_d"]
    with pytest.raises(OptionsError, match=f"{TRAINER} needs 'network_d'"):
        parse_options(str(write_options(opt, tmp_path / "bad2.yml")), is_train=True, root=tmp_path)
    sr = {**_options(data, "sr"), "model_type": "SRModel"}  # a second network that SRModel would ignore
    with pytest.raises(OptionsError, match="'network_d' is set but SRModel trains only network_g"):
        parse_options(str(write_options(sr, tmp_path / "sr.yml")), is_train=True, root=tmp_path)


def test_the_whole_file_check_runs_once_per_run_and_a_direct_build_is_still_checked(data, tmp_path: Path) -> None:
    import importlib

    from restoration.errors import OptionsError
    from restoration.options.parse import parse_options

    # the module train.py imports for `model_type: tests.test_trainer_contract:...` (pytest names this file otherwise)
    named = importlib.import_module("tests.test_trainer_contract")
    calls, counting = named.CHECK_RUN_CALLS, named.CountingTrainer
    opt = {**_options(data, "once", **{"train.total_iter": 1, "train.warmup_iter": -1, "val": None,
                                       "logger.save_checkpoint_freq": 1}),
           "model_type": "tests.test_trainer_contract:CountingTrainer"}
    cfg = write_options(opt, tmp_path / "once.yml")
    calls.clear()
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    assert calls == [(True, "once")]  # the start-up check; the trainer's constructor skipped it

    parsed = parse_options(str(cfg), is_train=True, root=tmp_path / "second")
    calls.clear()
    counting(parsed, torch.device("cpu"))
    assert calls == []  # exactly the dict the start-up check passed
    unchecked = {**parsed, "name": "by_hand"}
    del unchecked["network_d"]  # built by Python code from a dict no start-up check saw
    with pytest.raises(OptionsError, match="CountingTrainer needs 'network_d'"):
        counting(unchecked, torch.device("cpu"))
    assert calls == [(True, "by_hand")]


def test_two_networks_checkpoint_and_resume_bit_exactly(data, tmp_path: Path) -> None:
    opt = _options(data, "straight", **{"logger.save_checkpoint_freq": 2})
    assert train_main(["-opt", str(write_options(opt, tmp_path / "s.yml")), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "straight"
    state = _load(exp / "training_states" / "6.state")
    for key in ("net_g", "net_d", "optimizer", "optimizer_d", "scheduler", "scheduler_d", "scaler", "scaler_d", "ema"):
        assert key in state, key
    log = next(exp.glob("train_straight_*.log")).read_text()
    assert "network d (SimpleSRNet)" in log and "l_critic" in log and "l_d" in log and "grad_norm_d" in log

    resumed = tmp_path / "resumed"  # the same run, stopped after iteration 4 and resumed
    shutil.copytree(exp, resumed)
    (resumed / "training_states" / "6.state").unlink()
    opt2 = {**opt, "name": "resumed", "path": {"experiments_root": str(resumed)}}
    assert train_main(["-opt", str(write_options(opt2, tmp_path / "r.yml")), "--root", str(tmp_path),
                       "--auto_resume"]) == 0
    resumed_state = _load(resumed / "training_states" / "6.state")
    _assert_equal_states(state, resumed_state, ("net_g", "net_d", "ema"))
    assert torch.equal(state["rank_states"][0]["seen"], resumed_state["rank_states"][0]["seen"])  # restored


def test_two_networks_on_two_gloo_processes(data, tmp_path: Path) -> None:
    opt = _options(data, "ddp2", **{"datasets.train.num_worker_per_gpu": 0, "train.total_iter": 4,
                                    "logger.save_checkpoint_freq": 4, "val": None})
    cfg = write_options(opt, tmp_path / "ddp2.yml")
    run = torchrun_train(cfg, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    state = _load(tmp_path / "experiments" / "ddp2" / "training_states" / "4.state")
    assert state["world_size"] == 2 and "net_d" in state and "optimizer_d" in state
    seen = [r["seen"] for r in state["rank_states"]]  # every rank's own part, gathered on rank 0
    assert len(seen) == 2 and not torch.equal(seen[0], seen[1])
