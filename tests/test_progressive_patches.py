"""Progressive patch-size training (``datasets.train.mini_batch_sizes / gt_sizes / iters``, Restormer's recipe), its
cyclic cosine schedule, and Restormer's option files read as they are."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from restoration.cli.train import main as train_main
from restoration.data.progressive_patches import PatchStages
from restoration.models.sr_model import SRModel
from restoration.optim.schedulers import build_scheduler
from restoration.options.parse import parse_options
from tests.helpers import make_sr_pairs, train_options, write_options

#: Restormer's Options/*.yml (every task): batch 8 of 384 px from the loader, six stages over 300k iterations.
RESTORMER_STAGES = {"gt_size": 384, "batch_size_per_gpu": 8, "mini_batch_sizes": [8, 5, 4, 2, 1, 1],
                    "iters": [92000, 64000, 48000, 36000, 36000, 24000], "gt_sizes": [128, 160, 192, 256, 320, 384]}


@pytest.fixture(scope="module")
def sr_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("sr"), n=4, size=32, scale=2)


@pytest.fixture(scope="module")
def clean_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("dn"), n=2, size=32, scale=1)


# ---------------------------------------------------------------------------------------------- the schedule
@pytest.mark.parametrize("iteration, patch, batch", [
    (1, 128, 8), (92000, 128, 8), (92001, 160, 5), (156000, 160, 5), (156001, 192, 4), (204000, 192, 4),
    (204001, 256, 2), (240001, 320, 1), (276000, 320, 1), (276001, 384, 1), (300000, 384, 1),
    (300001, 384, 1), (10**6, 384, 1),  # past sum(iters) the last stage continues, as in Restormer's train.py
])
def test_the_stage_of_an_iteration_is_restormers(iteration: int, patch: int, batch: int) -> None:
    # Restormer: j = first index with current_iter <= cumsum(iters)[j] (1-based iterations), else the last
    stage = PatchStages(RESTORMER_STAGES, seed=0, rank=0, scale=1).stage_at(iteration)
    assert (stage.gt_size, stage.batch) == (patch, batch)


def test_a_stage_is_announced_once_when_it_starts() -> None:
    stages = PatchStages({**RESTORMER_STAGES, "iters": [2, 2, 1, 1, 1, 1]}, seed=0, rank=0, scale=1)
    lines = {it: stages.announcement(it, world_size=4) for it in range(1, 9)}
    assert [it for it, line in lines.items() if line] == [1, 3, 5, 6, 7, 8]
    assert lines[3] == ("progressive training: stage 2/6 from iteration 3: patch 160x160 (GT), batch 5 per GPU "
                        "(20 in all)")


# ---------------------------------------------------------------------------------------------- the crops
def _batch(n: int = 6, scale: int = 2, lq_side: int = 12) -> dict[str, Any]:
    lq = torch.rand(n, 3, lq_side, lq_side)
    gt = torch.rand(n, 3, lq_side * scale, lq_side * scale)
    return {"lq": lq, "gt": gt, "lq_path": [f"lq{i}" for i in range(n)], "gt_path": [f"gt{i}" for i in range(n)]}


def test_crops_are_aligned_sub_patches_of_a_random_subset() -> None:
    opt = {"gt_size": 24, "batch_size_per_gpu": 6, "mini_batch_sizes": [3], "gt_sizes": [8], "iters": [10]}
    batch = _batch()
    out = PatchStages(opt, seed=5, rank=0, scale=2)(batch, iteration=1)
    assert out["lq"].shape == (3, 3, 4, 4) and out["gt"].shape == (3, 3, 8, 8)
    picked = [int(p[2:]) for p in out["gt_path"]]
    assert len(set(picked)) == 3 and [int(p[2:]) for p in out["lq_path"]] == picked
    for k, i in enumerate(picked):  # the same region of the same sample: lq at (t, l), gt at (2t, 2l)
        hits = [(t, l) for t in range(9) for l in range(9) if torch.equal(batch["lq"][i, :, t:t + 4, l:l + 4],
                                                                           out["lq"][k])]
        assert len(hits) == 1
        t, l = hits[0]
        assert torch.equal(out["gt"][k], batch["gt"][i, :, 2 * t:2 * t + 8, 2 * l:2 * l + 8])
    # one place for the whole batch
    t, l = next((t, l) for t in range(9) for l in range(9)
                if torch.equal(batch["lq"][picked[0], :, t:t + 4, l:l + 4], out["lq"][0]))
    assert all(torch.equal(out["lq"][k], batch["lq"][i, :, t:t + 4, l:l + 4]) for k, i in enumerate(picked))


def test_crops_are_a_function_of_seed_iteration_rank_and_micro_batch() -> None:
    opt = {"gt_size": 24, "batch_size_per_gpu": 6, "mini_batch_sizes": [3], "gt_sizes": [8], "iters": [10]}
    batch = _batch()

    def crop(seed: int = 5, rank: int = 0, it: int = 1, micro: int = 0) -> torch.Tensor:
        return PatchStages(opt, seed=seed, rank=rank, scale=2)(batch, it, micro)["gt"]

    assert torch.equal(crop(), crop())  # a resumed run makes the same crops
    for other in (dict(rank=1), dict(it=2), dict(micro=1), dict(seed=6)):
        assert not torch.equal(crop(), crop(**other)), other


def test_the_full_stage_leaves_the_batch_alone() -> None:
    opt = {"gt_size": 24, "batch_size_per_gpu": 6, "mini_batch_sizes": [6], "gt_sizes": [24], "iters": [10]}
    batch = _batch()
    out = PatchStages(opt, seed=5, rank=0, scale=2)(batch, iteration=4)
    assert out["lq"] is batch["lq"] and out["gt"] is batch["gt"]


# ---------------------------------------------------------------------------------------------- a training run
def _progressive_options(data: tuple[Path, Path], name: str) -> dict[str, Any]:
    return train_options(data, name, **{"datasets.train.batch_size_per_gpu": 4, "datasets.train.gt_size": 16,
                                        "datasets.train.mini_batch_sizes": [4, 2, 1],
                                        "datasets.train.gt_sizes": [8, 12, 16], "datasets.train.iters": [2, 2, 2],
                                        "logger.save_checkpoint_freq": 100, "val.val_freq": 100})


def test_progressive_training_resumes_bit_exactly_across_a_stage_boundary(sr_data, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    original = SRModel.optimize_parameters
    shapes: dict[str, list[tuple[int, ...]]] = {"straight": [], "interrupted": []}
    run = {"name": "straight"}

    def record(self: SRModel, batch: Any, current_iter: int) -> Any:  # noqa: ANN401
        shapes[run["name"]].append(tuple(batch["gt"].shape))
        if run["name"] == "interrupted" and current_iter == 3 and not self.opt["path"].get("resume_state"):
            os.kill(os.getpid(), signal.SIGTERM)  # stop after iteration 3, the first of stage 2
        return original(self, batch, current_iter)

    monkeypatch.setattr(SRModel, "optimize_parameters", record)
    straight = write_options(_progressive_options(sr_data, "straight"), tmp_path / "straight.yml")
    assert train_main(["-opt", str(straight), "--root", str(tmp_path)]) == 0
    assert shapes["straight"] == [(4, 3, 8, 8)] * 2 + [(2, 3, 12, 12)] * 2 + [(1, 3, 16, 16)] * 2
    run["name"] = "interrupted"
    cfg = write_options(_progressive_options(sr_data, "interrupted"), tmp_path / "interrupted.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "interrupted"
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["3.state"]
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path), "--auto_resume"]) == 0
    assert shapes["interrupted"] == shapes["straight"]
    a = torch.load(tmp_path / "experiments/straight/models/net_g_6.pth", weights_only=True)
    b = torch.load(exp / "models/net_g_6.pth", weights_only=True)
    assert all(torch.equal(a[g][k], b[g][k]) for g in a for k in a[g])
    log = "".join(p.read_text() for p in sorted(exp.glob("train_interrupted_*.log")))
    for line in ("stage 1/3 from iteration 1: patch 8x8 (GT), batch 4 per GPU",
                 "stage 2/3 from iteration 3: patch 12x12 (GT), batch 2 per GPU",
                 "stage 2/3 from iteration 4: patch 12x12 (GT), batch 2 per GPU",  # the resumed run says where it is
                 "stage 3/3 from iteration 5: patch 16x16 (GT), batch 1 per GPU"):
        assert log.count(line) == 1, line


@pytest.mark.parametrize("edit, message", [
    ({"gt_sizes": [8, 12]}, "must have one entry per stage, got lengths mini_batch_sizes 3, gt_sizes 2, iters 3"),
    ({"gt_sizes": [8, 12, 20]}, "gt_sizes [8, 12, 20] exceed gt_size 16"),
    ({"gt_sizes": [8, 11, 16]}, "gt_sizes [8, 11, 16] must be multiples of scale 2"),
    ({"mini_batch_sizes": [8, 2, 1]}, "mini_batch_sizes [8, 2, 1] exceed batch_size_per_gpu 4"),
    ({"iters": [2, 0, 2]}, "iters must be a non-empty list of positive integers, got [2, 0, 2]"),
    ({"iters": None}, "sets mini_batch_sizes, gt_sizes but not iters: give all three lists"),
])
def test_bad_stage_lists_are_one_options_error_each(sr_data, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    edit: dict, message: str) -> None:
    opt = _progressive_options(sr_data, "bad")
    for key, value in edit.items():
        if value is None:
            del opt["datasets"]["train"][key]
        else:
            opt["datasets"]["train"][key] = value
    cfg = write_options(opt, tmp_path / "bad.yml")
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("datasets.train") == 1, err
    assert not (tmp_path / "experiments" / "bad").exists()


# ---------------------------------------------------------------------------------------------- the schedule
def _official_cyclic_lr(last_epoch: int, base_lr: float, periods: list[int], restart_weights: list[float],
                        eta_mins: list[float]) -> float:
    """swz30/Restormer basicsr/models/lr_scheduler.py CosineAnnealingRestartCyclicLR.get_lr, transcribed."""
    cumulative = [sum(periods[:i + 1]) for i in range(len(periods))]
    idx = next(i for i, c in enumerate(cumulative) if last_epoch <= c)  # get_position_from_periods
    nearest_restart = 0 if idx == 0 else cumulative[idx - 1]
    return eta_mins[idx] + restart_weights[idx] * 0.5 * (base_lr - eta_mins[idx]) * (
        1 + math.cos(math.pi * (last_epoch - nearest_restart) / periods[idx]))


@pytest.mark.parametrize("periods, weights, eta_mins", [
    ([9, 21], [1, 1], [3e-4, 1e-6]),  # Restormer's [92000, 208000] shape: constant, then a cosine to 1e-6
    ([5, 7, 4], [1, 0.5, 0.25], [1e-5, 2e-5, 0.0]),
])
def test_cyclic_cosine_equals_restormers_formula_at_every_iteration(periods, weights, eta_mins) -> None:  # noqa: ANN001
    base = 3e-4
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = build_scheduler(optimizer, {"type": "CosineAnnealingRestartCyclicLR", "periods": periods,
                                        "restart_weights": weights, "eta_mins": eta_mins})
    for it in range(sum(periods) + 1):  # Restormer's BaseModel steps it before iteration it + 1, as ours after it
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            _official_cyclic_lr(it, base, periods, weights, eta_mins), rel=1e-12, abs=1e-15), it
        optimizer.step()
        sched.step()


# ---------------------------------------------------------------------------------------------- Restormer's files
def _restormer_file(data: tuple[Path, Path], dataset: str) -> dict[str, Any]:
    """Options/Deraining_Restormer.yml (or a Gaussian denoising file) with every key and value of the official
    file, but tiny sizes (network, patches, iterations), the CPU (num_gpu 0 for the official 8) and our data."""
    hr, lq = data
    if dataset == "Dataset_PairedImage":
        train_set = {"type": dataset, "dataroot_gt": str(hr), "dataroot_lq": str(lq)}
        val_set = {"type": dataset, "dataroot_gt": str(hr), "dataroot_lq": str(lq)}
    else:
        train_set = {"type": dataset, "sigma_type": "random", "sigma_range": [0, 50], "in_ch": 3,
                     "dataroot_gt": str(hr), "dataroot_lq": "none"}
        val_set = {"type": dataset, "sigma_test": 25, "in_ch": 3, "dataroot_gt": str(hr), "dataroot_lq": "none"}
    return {
        "name": "Restormer_tiny", "model_type": "ImageCleanModel", "scale": 1, "num_gpu": 0, "manual_seed": 100,
        "datasets": {
            "train": {"name": "TrainSet", **train_set, "geometric_augs": True, "filename_tmpl": "{}",
                      "io_backend": {"type": "disk"}, "use_shuffle": True, "num_worker_per_gpu": 0,
                      "batch_size_per_gpu": 2, "mini_batch_sizes": [2, 1], "iters": [1, 1], "gt_size": 16,
                      "gt_sizes": [8, 16], "dataset_enlarge_ratio": 1, "prefetch_mode": None},
            "val": {"name": "ValSet", **val_set, "io_backend": {"type": "disk"}}},
        "network_g": {"type": "Restormer", "inp_channels": 3, "out_channels": 3, "dim": 8, "num_blocks": [1, 1, 1, 1],
                      "num_refinement_blocks": 1, "heads": [1, 1, 2, 2], "ffn_expansion_factor": 2.66, "bias": False,
                      "LayerNorm_type": "WithBias", "dual_pixel_task": False},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {"total_iter": 2, "warmup_iter": -1, "use_grad_clip": True,
                  "scheduler": {"type": "CosineAnnealingRestartCyclicLR", "periods": [1, 1], "restart_weights": [1, 1],
                                "eta_mins": [0.0003, 0.000001]},
                  "mixing_augs": {"mixup": True, "mixup_beta": 1.2, "use_identity": True},
                  "optim_g": {"type": "AdamW", "lr": 3e-4, "weight_decay": 1e-4, "betas": [0.9, 0.999]},
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1, "reduction": "mean"}},
        "val": {"window_size": 8, "val_freq": 2, "save_img": False, "rgb2bgr": True, "use_image": False,
                "max_minibatch": 8,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 0, "test_y_channel": False}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": False,
                   "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "nccl", "port": 29500},
    }


@pytest.mark.parametrize("dataset", ["Dataset_PairedImage", "Dataset_GaussianDenoising"])
def test_a_restormer_file_parses_with_one_notice_per_translation_and_trains(clean_data, tmp_path: Path,
                                                                           dataset: str) -> None:
    cfg = write_options(_restormer_file(clean_data, dataset), tmp_path / "restormer.yml")
    notices: list[str] = []
    opt = parse_options(str(cfg), is_train=True, root=tmp_path, notices=notices)
    expected = [
        "model_type ImageCleanModel is SRModel here",
        "val.use_image False ignored",
        "train.use_grad_clip: true is train.grad_clip: 0.01 here",
        "train.mixing_augs {mixup: true, mixup_beta: 1.2, use_identity: true} is train.batch_augment "
        "[{type: mixup, alpha: 1.2, prob: 0.5}] here",
        "val.window_size 8 ignored", "val.rgb2bgr true ignored", "val.max_minibatch 8 ignored",
        f"datasets.train.type {dataset} is", f"datasets.val.type {dataset} is",
    ]
    assert len(notices) == len(expected) and all(n.startswith(e) for n, e in zip(notices, expected)), notices
    assert opt["train"]["grad_clip"] == 0.01
    assert opt["train"]["batch_augment"] == [{"type": "mixup", "alpha": 1.2, "prob": 0.5}]
    train_set = opt["datasets"]["train"]
    assert (train_set["use_hflip"], train_set["use_rot"]) == (True, True) and "geometric_augs" not in train_set
    if dataset == "Dataset_GaussianDenoising":
        assert train_set["type"] == "DegradationDataset" and train_set["in_chans"] == 3
        assert train_set["degradation"] == {"type": "gaussian_noise", "sigma_range": [0, 50]}
        assert opt["datasets"]["val"]["degradation"] == {"type": "gaussian_noise", "sigma": 25}
        assert "dataroot_lq" not in train_set and "sigma_test" not in opt["datasets"]["val"]
    else:
        assert train_set["type"] == "PairedImageDataset"
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    assert (tmp_path / "experiments" / "Restormer_tiny" / "models" / "net_g_2.pth").is_file()


def test_a_sigma_choice_is_refused_by_name(clean_data, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    opt = _restormer_file(clean_data, "Dataset_GaussianDenoising")
    opt["datasets"]["train"].update(sigma_type="choice", sigma_range=[15, 25, 50])
    assert train_main(["-opt", str(write_options(opt, tmp_path / "choice.yml")), "--root", str(tmp_path)]) == 2
    assert "sigma_type 'choice' with sigma_range [15, 25, 50]" in capsys.readouterr().err
