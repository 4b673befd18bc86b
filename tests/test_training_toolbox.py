"""The training toolbox: ReduceLROnPlateau on a validation metric, wandb logging, batch augmentations."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
import torch

from restoration.data.batch_augment import BatchAugment
from restoration.optim.schedulers import build_scheduler
from restoration.models.sr_model import SRModel
from restoration.options.parse import OptionsError, parse_options
from tests.helpers import make_sr_pairs, train_options, write_options


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=2, size=32, scale=2)


# ---------------------------------------------------------------- ReduceLROnPlateau
@pytest.mark.parametrize("better,kwargs", [
    ("higher", {"factor": 0.5, "patience": 1, "threshold": 0.01}),
    ("lower", {"factor": 0.3, "patience": 0, "cooldown": 2, "min_lr": 0.004}),
    ("higher", {"factor": 0.5, "patience": 0, "threshold": 0.5, "threshold_mode": "abs"}),
])
def test_plateau_follows_torch_validation_by_validation(better: str, kwargs: dict) -> None:
    values = [-3.0, -2.0, -2.01, -2.0, -1.99, -1.5, -1.5, -1.6, -1.0, -1.0, -1.0, -0.9, -2.0, -2.0]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ours = build_scheduler(opt, {"type": "ReduceLROnPlateau", "metric": "psnr", **kwargs}, -1, 100,
                           {"val": {"metrics": {"psnr": {"better": better}}}, "datasets": {"val_1": {"name": "v"}}})
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, mode="max" if better == "higher" else "min", **kwargs)
    for v in values:
        ours.step_metric({"v": {"psnr": v}})
        ref.step(v)
        assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-12)
    assert opt.param_groups[0]["lr"] < 0.1  # it did reduce


def _record_lrs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    seen: list[tuple[int, float]] = []
    original = SRModel.optimize_parameters

    def recording(self, batch, current_iter):  # noqa: ANN001
        seen.append((current_iter, self.current_lr()))
        return original(self, batch, current_iter)

    monkeypatch.setattr(SRModel, "optimize_parameters", recording)
    return seen


def _final_weights(root: Path, name: str) -> dict:
    return torch.load(root / "experiments" / name / "models" / "net_g_latest.pth", map_location="cpu")["params"]


def test_resumed_plateau_and_batch_augment_continue_exactly(data, tmp_path: Path, monkeypatch) -> None:
    """A run stopped at iteration 3 and resumed has the lr sequence and final weights of an uninterrupted run
    (the plateau state after the validation at 3 included), with batch augmentations on."""
    from restoration.cli.train import main as train_main

    def options(name: str, total: int) -> dict:
        opt = train_options(data, name, **{"train.total_iter": total, "val.val_freq": 1, "val.save_img": False})
        opt["train"]["scheduler"] = {"type": "ReduceLROnPlateau", "metric": "psnr", "factor": 0.5, "patience": 0,
                                     "cooldown": 1, "threshold": 100.0, "threshold_mode": "abs"}
        opt["train"]["batch_augment"] = [{"type": "cutblur", "prob": 0.5, "alpha": 0.5},
                                         {"type": "mixup", "prob": 0.5}, {"type": "cutmix", "prob": 0.5}]
        opt["logger"]["use_tb_logger"] = False
        return opt

    seen = _record_lrs(monkeypatch)
    assert train_main(["-opt", str(write_options(options("whole", 6), tmp_path / "a.yml")), "--root", str(tmp_path)]) == 0
    whole = list(seen)
    seen.clear()
    assert train_main(["-opt", str(write_options(options("parts", 3), tmp_path / "b.yml")), "--root", str(tmp_path)]) == 0
    assert train_main(["-opt", str(write_options(options("parts", 6), tmp_path / "b.yml")), "--root", str(tmp_path),
                       "--auto_resume"]) == 0
    assert [i for i, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert seen == whole
    # warm-up (2 iterations) then halvings after the validations at 2 and 4
    assert [lr for _, lr in whole] == pytest.approx([1e-3, 2e-3, 1e-3, 1e-3, 5e-4, 5e-4])
    a, b = _final_weights(tmp_path, "whole"), _final_weights(tmp_path, "parts")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("edit,message", [
    ({"train.scheduler": {"type": "ReduceLROnPlateau", "metric": "ssim"}},
     "validation computes no metric 'ssim' (val.metrics has ['psnr'])"),
    ({"train.scheduler": {"type": "ReduceLROnPlateau", "metric": "psnr"}, "val": None},
     "follows metric 'psnr' but there is no 'val' section"),
    ({"train.scheduler": {"type": "ReduceLROnPlateau", "metric": "psnr", "val_set": "nope"}},
     "'val_set' 'nope' is not a validation set's name (they are ['tiny_val'])"),
    ({"train.scheduler": {"type": "ReduceLROnPlateau", "metric": "psnr", "mode": "max"}},
     "'train.scheduler': unknown key 'mode'"),
    ({"train.batch_augment": [{"type": "cutblr"}]}, "unknown batch augmentation 'cutblr' (did you mean 'cutblur'?)"),
    ({"train.batch_augment": [{"type": "mixup", "prob": 1.5}]}, "'train.batch_augment[0]': prob must be in [0, 1]"),
    ({"train.batch_augment": [{"type": "cutmix", "alpah": 0.5}]}, "has no argument 'alpah' (did you mean 'alpha'?)"),
])
def test_option_errors(data, tmp_path: Path, edit: dict, message: str) -> None:
    opt = train_options(data, "toolbox_errors")
    for key, value in edit.items():
        if key == "val":
            del opt["val"]
        else:
            opt["train"][key.split(".")[1]] = value
    with pytest.raises(OptionsError) as info:
        parse_options(str(write_options(opt, tmp_path / "o.yml")), is_train=True, root=tmp_path)
    assert message in str(info.value)


# ---------------------------------------------------------------- wandb
def test_wandb_without_the_package_is_an_option_error_and_writes_nothing(data, tmp_path: Path, monkeypatch,
                                                                         capsys) -> None:
    from restoration.cli.train import main as train_main
    from restoration.utils import wandb_writer

    monkeypatch.setattr(wandb_writer, "wandb_installed", lambda: False)
    opt = train_options(data, "no_wandb")
    opt["logger"]["wandb"] = {"project": "p"}
    assert train_main(["-opt", str(write_options(opt, tmp_path / "o.yml")), "--root", str(tmp_path)]) == 2
    assert 'the wandb package is not installed: pip install -e ".[wandb]"' in capsys.readouterr().err
    assert not (tmp_path / "experiments").exists()


def _offline_history(run_dir: str) -> dict[str, list[float]]:
    """The numbers logged into an offline run, read from its ``run-<id>.wandb`` record file: each history item
    is the key's bytes, then field 16 (``0x82 0x01``), its length and the value as JSON text."""
    raw = Path(glob.glob(os.path.join(run_dir, "*.wandb"))[0]).read_bytes()
    out: dict[str, list[float]] = {}
    for m in re.finditer(rb"\x12(.)([a-z_]+/[\w/]+)\x82\x01(.)", raw, re.S):
        if m.group(1)[0] == len(m.group(2)):
            value = raw[m.end():m.end() + m.group(3)[0]]
            out.setdefault(m.group(2).decode(), []).append(json.loads(value))
    return out


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed (pip install wandb)")
def test_wandb_offline_logs_scalars_and_a_resume_continues_the_run(data, tmp_path: Path, monkeypatch) -> None:
    from restoration.cli.train import main as train_main

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))  # wandb's own caches stay in the test folder

    def options(total: int) -> Path:
        opt = train_options(data, "wb", **{"train.total_iter": total, "train.warmup_iter": -1,
                                                 "val.val_freq": 2})
        opt["logger"]["wandb"] = {"project": "restoration-tests"}
        return write_options(opt, tmp_path / "wb.yml")

    assert train_main(["-opt", str(options(2)), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "wb"
    runs = sorted(glob.glob(str(exp / "wandb" / "offline-run-*")))
    assert len(runs) == 1
    run_id = (exp / "run_id").read_text().strip() if (exp / "run_id").exists() else None
    assert runs[0].endswith(run_id or "")
    logged = _offline_history(runs[0])
    # (each item is in the file as history and as summary)
    assert set(logged["train/lr"]) == {2e-3} and "losses/l_pix" in logged and "train/iter_time" in logged
    best = json.loads((exp / "best_metrics.json").read_text())["records"]["2"]["tiny_val"]["psnr"]["value"]
    assert set(logged["metrics/tiny_val/psnr"]) == {best}
    assert os.path.exists(Path(runs[0], "files", "wb.yml"))  # the option file
    assert train_main(["-opt", str(options(4)), "--root", str(tmp_path), "--auto_resume"]) == 0
    runs = sorted(glob.glob(str(exp / "wandb" / "offline-run-*")))
    assert len(runs) == 2 and {Path(r).name.rsplit("-", 1)[1] for r in runs} == {Path(runs[0]).name.rsplit("-", 1)[1]}


# ---------------------------------------------------------------- batch augmentations
def _batch(b: int = 4, h: int = 6, w: int = 8, scale: int = 2) -> dict:
    """Sample ``i`` is the constant ``i / 10`` (lq and gt), so where a value came from is readable."""
    lq = (torch.arange(b, dtype=torch.float32) / 10).view(b, 1, 1, 1).expand(b, 3, h, w).clone()
    gt = (torch.arange(b, dtype=torch.float32) / 10).view(b, 1, 1, 1).expand(b, 3, h * scale, w * scale).clone()
    return {"lq": lq, "gt": gt}


ALL = [{"type": "cutblur", "alpha": 0.5}, {"type": "mixup"}, {"type": "cutmix", "alpha": 0.5}]


def test_draws_depend_only_on_seed_iteration_rank_and_micro_batch() -> None:
    batch = {"lq": torch.rand(4, 3, 6, 8, generator=torch.Generator().manual_seed(0)),
             "gt": torch.rand(4, 3, 12, 16, generator=torch.Generator().manual_seed(1))}
    used = BatchAugment(ALL, seed=3, rank=0, scale=2)
    for it in range(1, 5):  # an object that has run earlier iterations draws what a fresh one draws (resume)
        used(batch, it)
    fresh = BatchAugment(ALL, seed=3, rank=0, scale=2)
    a, b = used(batch, 5), fresh(batch, 5)
    assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"])
    for other in (BatchAugment(ALL, 4, 0, 2)(batch, 5), BatchAugment(ALL, 3, 1, 2)(batch, 5), fresh(batch, 6),
                  fresh(batch, 5, micro=1)):
        assert not torch.equal(other["lq"], a["lq"])


def test_zero_probability_is_the_identity() -> None:
    batch = _batch()
    out = BatchAugment([{**e, "prob": 0.0} for e in ALL], 0, 0, 2)(batch, 7)
    assert out["lq"] is batch["lq"] and out["gt"] is batch["gt"]


@pytest.mark.parametrize("it", range(1, 6))
def test_cutmix_box_is_the_same_region_of_lq_and_gt_at_the_scale(it: int) -> None:
    scale = 3
    batch = _batch(scale=scale)
    out = BatchAugment([{"type": "cutmix", "alpha": 0.5}], 0, 0, scale)(batch, it)
    for i in range(4):
        changed_lq = out["lq"][i, 0] != batch["lq"][i, 0]
        changed_gt = out["gt"][i, 0] != batch["gt"][i, 0]
        # the gt box is the lq box, each pixel repeated scale x scale times
        assert torch.equal(changed_gt, changed_lq.repeat_interleave(scale, 0).repeat_interleave(scale, 1))
        if changed_lq.any():  # the pasted values are one other sample's, the same in lq and gt
            assert out["lq"][i, 0][changed_lq].unique().tolist() == out["gt"][i, 0][changed_gt].unique().tolist()
            rows, cols = changed_lq.nonzero().unbind(1)
            assert changed_lq[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()  # a box
            assert (rows.max() - rows.min() + 1) in (2, 3)  # int(6 * (0.5 ± 1 %)) rows


@pytest.mark.parametrize("it", range(1, 6))
def test_mixup_blends_the_same_pairs_with_the_same_weight(it: int) -> None:
    batch = _batch()
    out = BatchAugment([{"type": "mixup"}], 0, 0, 2)(batch, it)
    assert torch.allclose(out["lq"][:, 0, 0, 0], out["gt"][:, 0, 0, 0])
    assert not torch.equal(out["lq"], batch["lq"])
    assert torch.allclose(out["lq"].sum(), batch["lq"].sum())  # a permutation's blend keeps the batch mean


def test_cutblur_puts_clean_lr_content_in_a_box_and_leaves_gt() -> None:
    lq = torch.zeros(2, 3, 8, 8)
    gt = torch.ones(2, 3, 16, 16)  # its bicubic LR-size version is 1 too
    seen = set()
    for it in range(1, 9):
        out = BatchAugment([{"type": "cutblur", "alpha": 0.5}], 0, 0, 2)({"lq": lq, "gt": gt}, it)
        assert out["gt"] is gt
        ones = out["lq"][0, 0] > 0.5
        inside = ones.sum().item() in (9, 16)  # a clean box (side int(8 * (0.5 ± 1 %))) in the degraded image ...
        assert inside or (~ones).sum().item() in (9, 16)  # ... or a degraded box in the clean image
        assert torch.allclose(out["lq"][out["lq"] > 0.5], torch.ones(()))
        seen.add(inside)
    assert seen == {True, False}
