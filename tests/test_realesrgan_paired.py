"""Real-ESRGAN on real pairs: RealESRGANPairedDataset, the trainers using (or mixing in) a batch's own pairs with
an exactly resumable coin, and one-channel (gray) GT through the degradation end to end."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from restoration.data.base_dataset import DatasetOptionError
from restoration.data.degradations.kernels import draw_batch_kernels
from restoration.data.degradations.diff_jpeg import diff_jpeg
from restoration.data.realesrgan_dataset import RealESRGANDataset
from restoration.data.degradations.realesrgan import degradation_generator, realesrgan_degrade, usm_sharp
from restoration.data.realesrgan_paired_dataset import RealESRGANPairedDataset
from restoration.errors import DataError, MissingDataError
from restoration.models import register_models
from restoration.models.realesrgan_model import paired_coin
from restoration.registry import MODEL_REGISTRY
from restoration.cli.train import main as train_main
from restoration.utils.image_io import imwrite
from tests.helpers import train_options, write_options

pytestmark = pytest.mark.usefixtures("one_torch_thread")
register_models()

SCALE = 2


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """GT = LQ enlarged by pixel repetition (so any aligned crop of GT is its LQ crop repeated), LQ named
    differently from GT (``lq_<i>.png``), and BasicSR's paired meta_info listing them."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(4):
        lq = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
        imwrite(root / "lq" / f"lq_{i}.png", lq)
        imwrite(root / "gt" / f"{i}.png", lq.repeat(SCALE, 0).repeat(SCALE, 1))
        lines.append(f"{i}.png, lq_{i}.png")
    (root / "meta_info.txt").write_text("\n".join(lines) + "\n")
    return root / "gt", root / "lq", root / "meta_info.txt"


def _dataset(pairs: tuple[Path, Path, Path], **opt: Any) -> RealESRGANPairedDataset:
    gt, lq, meta = pairs
    return RealESRGANPairedDataset({"dataroot_gt": str(gt), "dataroot_lq": str(lq), "meta_info": str(meta),
                                    "io_backend": {"type": "disk"}, "scale": SCALE, "gt_size": 16,
                                    "use_rot": True, **opt})


# ------------------------------------------------------------------ the dataset
def test_pairs_from_basicsr_meta_info_are_cropped_and_flipped_aligned(pairs) -> None:
    ds = _dataset(pairs)
    assert len(ds) == 4 and ds.paths[2]["lq_path"].endswith("lq_2.png")
    for i in range(4):
        sample = ds[i]
        lq, gt = sample["lq"], sample["gt"]
        assert lq.shape == (3, 8, 8) and gt.shape == (3, 16, 16) and "kernel1" not in sample
        assert torch.equal(gt, lq.repeat_interleave(SCALE, 1).repeat_interleave(SCALE, 2))  # the same place
    val = _dataset(pairs, phase="val")
    assert val[1]["lq"].shape == (3, 20, 24) and val[1]["gt"].shape == (3, 40, 48)  # whole images
    by_name = _dataset(pairs, meta_info=None, filename_tmpl="lq_{}")  # no list: PairedImageDataset's pairing
    assert [p["lq_path"] for p in by_name.paths] == [p["lq_path"] for p in ds.paths]


def test_with_kernels_adds_the_three_realesrgan_kernels(pairs) -> None:
    sample = _dataset(pairs, with_kernels=True, blur_kernel_size2=15)[0]
    assert sample["kernel1"].shape == (21, 21) and sample["kernel2"].shape == (15, 15)
    assert sample["sinc_kernel"].shape == (21, 21)
    assert abs(float(sample["kernel1"].sum()) - 1) < 1e-5 and abs(float(sample["kernel2"].sum()) - 1) < 1e-5
    with pytest.raises(DatasetOptionError, match="blur_kernel_size must be an odd integer >= 7"):
        _dataset(pairs, with_kernels=True, blur_kernel_size=8)


def test_bad_pair_lists_are_one_line_errors(pairs, tmp_path: Path) -> None:
    gt, lq, _ = pairs
    bad = tmp_path / "bad.txt"
    bad.write_text("0.png, lq_0.png\n1.png lq_1.png\n")
    with pytest.raises(DataError, match=r"bad.txt line 2: expected 'gt_path, lq_path' .*got '1.png lq_1.png'"):
        _dataset((gt, lq, bad))
    bad.write_text("0.png, lq_0.png\n1.png, lq_9.png\n")
    with pytest.raises(MissingDataError, match=r"1 image\(s\) listed in .*bad.txt are missing: .*lq_9.png$"):
        _dataset((gt, lq, bad))
    with pytest.raises(DatasetOptionError, match="give only one of meta_info"):
        _dataset(pairs, meta_info_file=str(pairs[2]))


# ------------------------------------------------------------------ the trainers on pairs
def _opt(**train: Any) -> dict[str, Any]:
    return {
        "scale": SCALE, "manual_seed": 3, "model_type": "RealESRGANModel",
        "network_g": {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": SCALE},
        "network_d": {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4},
        "train": {"optim_g": {"type": "Adam", "lr": 1e-3}, "optim_d": {"type": "Adam", "lr": 1e-3}, "total_iter": 4,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}, "gt_size": 16, "queue_size": 0,
                  "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1}, **train},
    }


def _model(**train: Any) -> Any:
    torch.manual_seed(0)
    return MODEL_REGISTRY.get("RealESRGANModel")(_opt(**train), torch.device("cpu"))


def _collate(ds: RealESRGANPairedDataset, n: int = 2) -> dict[str, Any]:
    samples = [ds[i] for i in range(n)]
    return {k: torch.stack([s[k] for s in samples]) if isinstance(samples[0][k], torch.Tensor) else
            [s[k] for s in samples] for k in samples[0]}


def test_paired_batches_skip_the_degradation_and_can_be_sharpened(pairs) -> None:
    batch = _collate(_dataset(pairs, with_kernels=True))
    model = _model(high_order_degradation=False)
    out = model.degrade(batch, 1)
    assert out["lq"] is batch["lq"] and out["gt"] is batch["gt"] and "gt_usm" not in out
    assert {"l_pix", "l_d_real"} <= set(model.optimize_parameters(batch, 1))
    sharp = _model(high_order_degradation=False, paired_gt_usm=True).degrade(batch, 1)
    assert torch.equal(sharp["gt_usm"], usm_sharp(batch["gt"])) and not torch.equal(sharp["gt_usm"], batch["gt"])
    with pytest.raises(DataError, match="iteration 2 trains on the batch's own pairs .* has no 'lq'"):
        model.degrade({"gt": batch["gt"]}, 2)


def test_paired_prob_mixes_by_a_coin_of_the_iteration_seed(pairs) -> None:
    batch = _collate(_dataset(pairs, with_kernels=True))
    model = _model(paired_prob=0.5)
    iterations = range(1, 41)
    chosen = [model.uses_own_pairs(it) for it in iterations]
    assert chosen == [paired_coin(3, it, 0) < 0.5 for it in iterations]  # seed 3, rank 0: nothing else
    assert 12 <= sum(chosen) <= 28  # about half of 40
    assert chosen != [paired_coin(3, it, 1) < 0.5 for it in iterations]  # ranks toss their own coins
    for it in (chosen.index(True) + 1, chosen.index(False) + 1):
        out = model.degrade(batch, it)
        if model.uses_own_pairs(it):
            assert out["lq"] is batch["lq"]
        else:  # the degradation's draws are a run without mixing: its generator is the iteration's own
            lq, _, _ = realesrgan_degrade(batch, {**model.values, "scale": SCALE}, degradation_generator(3, it))
            assert torch.equal(out["lq"], lq) and out["lq"].shape == (2, 3, 8, 8)
    assert not any(_model(paired_prob=0).uses_own_pairs(it) for it in iterations)
    assert all(_model(paired_prob=1).uses_own_pairs(it) for it in iterations)


def _file_options(pairs: tuple[Path, Path, Path], name: str, **train: Any) -> dict[str, Any]:
    gt, lq, meta = pairs
    opt = train_options((gt, lq), name, model_type="RealESRNetModel", val=None)
    opt["network_g"] = {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": SCALE}
    opt["datasets"] = {"train": {"type": "RealESRGANPairedDataset", "dataroot_gt": str(gt), "dataroot_lq": str(lq),
                                 "meta_info": str(meta), "io_backend": {"type": "disk"}, "gt_size": 16,
                                 "with_kernels": True, "num_worker_per_gpu": 0, "batch_size_per_gpu": 2}}
    opt["train"].update({"gt_size": 16, "queue_size": 4, "warmup_iter": -1, **train})
    return opt


def _problems(opt: dict[str, Any]) -> list[str]:
    from restoration.options.validate import validate_options

    return validate_options(opt, is_train=True)


def test_dataset_and_mixing_options_are_checked_up_front(pairs) -> None:
    opt = _file_options(pairs, "check", paired_prob=0.5)
    assert _problems(opt) == []
    opt["datasets"]["train"]["with_kernels"] = False
    assert _problems(opt) == [
        "'train' (RealESRNetModel): high_order_degradation is on (paired_prob 0.5) but datasets.train "
        "(RealESRGANPairedDataset) has no blur kernels to degrade with: set high_order_degradation: false to train "
        "on its pairs, or its with_kernels: true to mix"]
    opt["train"]["high_order_degradation"] = False
    assert _problems(opt) == []
    opt = _file_options(pairs, "check", paired_prob=1.5)
    assert "'train' (RealESRNetModel): paired_prob must be a probability in [0, 1], got 1.5" in _problems(opt)
    opt["train"]["paired_prob"] = 0.2
    opt["datasets"]["train"] = {"type": "RealESRGANDataset", "dataroot_gt": str(pairs[0]), "crop_pad_size": 32,
                                "io_backend": {"type": "disk"}, "num_worker_per_gpu": 0, "batch_size_per_gpu": 2}
    assert _problems(opt) == [
        "'train' (RealESRNetModel): paired_prob 0.2 trains on the batch's own LQ with that probability, but "
        "RealESRGANDataset has none: use RealESRGANPairedDataset with with_kernels: true"]


def test_a_mixed_run_resumed_equals_the_straight_run_bit_for_bit(pairs, tmp_path: Path) -> None:
    """paired_prob 0.5 over 6 iterations, checkpoint at 2, 4, 6: a run stopped after 4 and resumed ends with the
    same weights, EMA, optimizer state and training-pair pool. With seed 7, iterations 5 and 6 are one paired
    and one degraded batch, and a coin that restarted its count at the resume (iterations 1, 2) would differ."""
    after = [paired_coin(7, it, 0) < 0.5 for it in (5, 6)]
    assert set(after) == {True, False} and after != [paired_coin(7, it, 0) < 0.5 for it in (1, 2)]
    opt = _file_options(pairs, "mixed", paired_prob=0.5)
    opt["manual_seed"] = 7
    assert train_main(["-opt", str(write_options(opt, tmp_path / "m.yml")), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "mixed"
    resumed = tmp_path / "resumed"
    shutil.copytree(exp, resumed)
    (resumed / "training_states" / "6.state").unlink()
    opt2 = {**opt, "name": "resumed", "path": {"experiments_root": str(resumed)}}
    assert train_main(["-opt", str(write_options(opt2, tmp_path / "r.yml")), "--root", str(tmp_path),
                       "--auto_resume"]) == 0
    a = torch.load(exp / "training_states" / "6.state", weights_only=True)
    b = torch.load(resumed / "training_states" / "6.state", weights_only=True)
    for key in ("net_g", "ema"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f"{key}.{name}"
    for index, slot in a["optimizer"]["state"].items():
        for name, value in slot.items():
            assert torch.equal(value, b["optimizer"]["state"][index][name]), f"optimizer.{index}.{name}"
    pool_a, pool_b = a["rank_states"][0]["pair_pool"], b["rank_states"][0]["pair_pool"]
    assert pool_a["ptr"] == 4 and torch.equal(pool_a["lq"], pool_b["lq"]) and torch.equal(pool_a["gt"], pool_b["gt"])


# ------------------------------------------------------------------ gray GT
def _gray_batch(b: int = 2, size: int = 48) -> dict[str, torch.Tensor]:
    opt = {k: v.default for k, v in RealESRGANDataset.options.items()}
    kernels = draw_batch_kernels(np.random.default_rng(1), opt, b)
    gt = torch.rand(b, 1, size, size, generator=torch.Generator().manual_seed(2))
    return {"gt": gt, **{k: torch.from_numpy(v) for k, v in kernels.items()}}


def test_gray_gt_is_degraded_like_its_rgb_copy_on_one_channel() -> None:
    """Without noise (the one stage whose fields are drawn per channel) a gray batch degrades to the first
    channel of its RGB copy: blur, resize, USM and sinc are per channel, and the gray JPEG is the luma of RGB's."""
    gray = _gray_batch()
    rgb = {**gray, "gt": gray["gt"].expand(-1, 3, -1, -1)}
    quiet = {"scale": 4, "gt_size": 32, "queue_size": 0, "noise_range": [0, 0], "noise_range2": [0, 0],
             "poisson_scale_range": [0, 0], "poisson_scale_range2": [0, 0]}
    for it in range(4):
        lq1, gt1, usm1 = realesrgan_degrade(gray, quiet, degradation_generator(0, it))
        lq3, gt3, usm3 = realesrgan_degrade(rgb, quiet, degradation_generator(0, it))
        assert lq1.shape == (2, 1, 8, 8) and gt1.shape == usm1.shape == (2, 1, 32, 32)
        assert torch.equal(lq1, lq3[:, :1]) and torch.equal(gt1, gt3[:, :1]) and torch.equal(usm1, usm3[:, :1])
    q = torch.tensor([30.0, 90.0])
    rgb_jpeg = diff_jpeg(gray["gt"].expand(-1, 3, -1, -1), q)
    assert torch.equal(rgb_jpeg[:, 0], rgb_jpeg[:, 2])  # R = G = B: chroma 128 survives quantisation


@pytest.mark.parametrize("gaussian", [0.0, 1.0])
def test_gray_gt_takes_every_noise_kind(gaussian: float) -> None:
    opt = {"scale": 4, "gt_size": 32, "queue_size": 0, "gaussian_noise_prob": gaussian,
           "gaussian_noise_prob2": gaussian, "gray_noise_prob": 1.0, "gray_noise_prob2": 0.5}
    lq, _, _ = realesrgan_degrade(_gray_batch(), opt, degradation_generator(0, 1))
    assert lq.shape == (2, 1, 8, 8) and torch.isfinite(lq).all()
    assert torch.equal(lq, torch.round(lq * 255) / 255)


def test_a_one_channel_network_trains_on_gray_realesrgan_data(tmp_path: Path) -> None:
    """RealESRGANDataset with color: gray -> the degradation -> a 1-channel SimpleSRNet, 4 iterations."""
    rng = np.random.default_rng(0)
    for i in range(4):
        imwrite(tmp_path / "gt" / f"{i}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    opt = train_options((tmp_path / "gt", tmp_path / "gt"), "gray", model_type="RealESRNetModel", val=None)
    opt["network_g"] = {"type": "SimpleSRNet", "num_in_ch": 1, "num_out_ch": 1, "num_feat": 8, "num_block": 1,
                        "upscale": SCALE}
    opt["datasets"] = {"train": {"type": "RealESRGANDataset", "dataroot_gt": str(tmp_path / "gt"), "color": "gray",
                                 "crop_pad_size": 32, "io_backend": {"type": "disk"}, "num_worker_per_gpu": 0,
                                 "batch_size_per_gpu": 2}}
    opt["train"].update({"gt_size": 16, "queue_size": 4, "warmup_iter": -1, "total_iter": 4})
    opt["logger"]["save_checkpoint_freq"] = 4
    assert train_main(["-opt", str(write_options(opt, tmp_path / "g.yml")), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "gray"
    state = torch.load(exp / "training_states" / "4.state", weights_only=True)
    pool = state["rank_states"][0]["pair_pool"]
    assert pool["lq"].shape == (4, 1, 8, 8) and pool["gt"].shape == (4, 1, 16, 16)
    start = torch.load(exp / "models" / "net_g_4.pth", weights_only=True)["params"]
    first = next(v for k, v in start.items() if v.dim() == 4)
    assert first.shape[1] == 1  # the network's input: one channel
    log = next(exp.glob("train_gray_*.log")).read_text()
    assert "l_pix" in log and "nan" not in log.lower()
