"""Pixel-shuffle down-sampling, random-replacing refinement and the TBSNModel trainer hooks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restoration.archs.tbsn.pixel_shuffle_downsampling import (
    pd_denoise,
    pd_training_input,
    pixel_shuffle_down_sampling,
    pixel_shuffle_up_sampling,
    random_replacing_refinement,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: see tests/conftest.py


ROOT = Path(__file__).resolve().parents[1]
TINY_NET = {"type": "TBSN", "dim": 2, "num_blocks": [1, 1, 1], "num_refinement_blocks": 0,
            "channel_heads": [1, 1, 1], "spatial_heads": [1, 1, 1], "spatial_dim_head": 2}


def test_pd_layout_and_round_trip() -> None:
    x = torch.randn(2, 3, 10, 15)
    sub = pixel_shuffle_down_sampling(x, 5)
    assert sub.shape == (2 * 25, 3, 2, 3)
    # entry b*f*f + a*f + c is x[b, :, a::f, c::f]
    assert torch.equal(sub[25 + 2 * 5 + 4], x[1, :, 2::5, 4::5])
    assert torch.equal(pixel_shuffle_up_sampling(sub, 5), x)
    assert torch.equal(pd_training_input(x, 5), x[..., ::5, ::5])
    assert torch.equal(pd_training_input(x, 5, all_subimages=True), sub)
    with pytest.raises(ValueError, match="not divisible by the pixel-shuffle factor 4"):
        pixel_shuffle_down_sampling(x, 4)


def test_refinement_replaces_the_requested_fraction() -> None:
    noisy, denoised = torch.ones(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)
    seen = []

    def net(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.mean().item())
        return x

    out = random_replacing_refinement(net, noisy, denoised, passes=8, prob=0.16,
                                      generator=torch.Generator().manual_seed(0))
    assert len(seen) == 8 and all(abs(s - 0.16) < 0.02 for s in seen)
    assert abs(out.mean().item() - 0.16) < 0.01
    # Per value (pixel and channel), as upstream: channels are not replaced together.
    assert 0 < out.std().item()


def test_pd_denoise_pads_and_crops_back() -> None:
    x = torch.rand(1, 3, 37, 50)
    calls = []

    def identity(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape))
        assert t.shape[-1] % 8 == 0 and t.shape[-2] % 8 == 0
        return t

    out = pd_denoise(identity, x, factor=2, size_multiple=8, refine=False)
    assert torch.equal(out, x) and calls == [(4, 3, 24, 32)]
    out = pd_denoise(identity, x, factor=2, size_multiple=8, refine=True, passes=3)
    assert torch.allclose(out, x) and calls[1:] == [(4, 3, 24, 32)] + [(1, 3, 48, 64)] * 3


def _options(**trainer_options) -> dict:
    return {
        "name": "tbsn_unit", "model_type": "TBSNModel", "scale": 1,
        "network_g": dict(TINY_NET),
        "train": {"optim_g": {"type": "AdamW", "lr": 3e-4}, "total_iter": 10,
                  "scheduler": {"type": "MultiStepLR", "milestones": [4, 8], "gamma": 0.1},
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}, **trainer_options},
        "val": {},
    }


def test_model_loss_uses_only_the_noisy_image() -> None:
    from restoration.models.tbsn_model import TBSNModel

    torch.manual_seed(0)
    model = TBSNModel(_options(pd_train=5), torch.device("cpu"))
    lq = torch.rand(2, 3, 160, 160)
    batch = {"lq": lq, "gt": torch.full_like(lq, float("nan"))}  # a clean image must not matter
    losses = model.compute_losses(batch)
    target = lq[..., ::5, ::5] * 255
    expected = F.l1_loss(model.net_g(target), target)
    assert set(losses) == {"l_pix"} and torch.isfinite(losses["l_pix"])
    assert torch.allclose(losses["l_pix"], expected)
    # One step trains the weights but never the fixed masks.
    masks = {k: v.clone() for k, v in model.net_g.state_dict().items() if "mask" in k}
    before = model.net_g.output.weight.clone()
    log = model.optimize_parameters(batch, 1)
    assert "skipped" not in log and not torch.equal(before, model.net_g.output.weight)
    assert all(torch.equal(v, model.net_g.state_dict()[k]) for k, v in masks.items())
    # All sub-images: 25 per crop.
    model_all = TBSNModel(_options(pd_train=5, pd_train_all=True), torch.device("cpu"))
    seen = []
    model_all.net_train = lambda t: seen.append(t.shape) or t  # type: ignore[assignment]
    model_all.compute_losses({"lq": lq})
    assert seen == [torch.Size([50, 3, 32, 32])]


def test_model_inference_range_seed_and_ensemble() -> None:
    from restoration.models.tbsn_model import TBSNModel

    model = TBSNModel(_options(refine_passes=2), torch.device("cpu"))
    lq = torch.rand(1, 3, 30, 41)

    class Scale(nn.Module):  # pointwise: commutes with flips, so the ensemble must not change it

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.max() > 2, "the network must receive [0, 255] values"
            return x * 0.5

    model.net_g = Scale()  # the trainer keeps TBSN's spec: multiple 32, values in [0, 255]
    assert model.spec.size_multiple == 32 and model.spec.value_range == 255.0
    out = model.inference(lq)
    assert out.shape == lq.shape
    # refinement: mean of 0.5 * (mix of noisy and 0.5*noisy) -> between 0.25 and 0.5 of lq
    ratio = (out / lq).mean().item()
    assert 0.25 < ratio < 0.5
    assert torch.equal(out, model.inference(lq)), "seeded refinement must be reproducible"
    model.opt = {**model.opt, "val": {"self_ensemble": True}}
    model.bsn_opt["refine"] = False  # without random masks the ensemble of a pointwise net is exact
    assert torch.allclose(model.inference(lq), lq * 0.5, atol=1e-6)


def test_model_option_errors() -> None:
    from restoration.models.tbsn_model import TBSNModel

    assert TBSNModel.check_options({"refine_prob": 16}) == ["refine_prob must be in [0, 1], got 16"]
    with pytest.raises(ValueError, match="pd_train must be >= 1"):
        TBSNModel(_options(pd_train=0), torch.device("cpu"))
    with pytest.raises(ValueError, match="val.tile is not supported"):
        TBSNModel({**_options(), "val": {"tile": {"tile_size": 64}}}, torch.device("cpu"))


def test_option_files_follow_upstream() -> None:
    """The official schedule is what upstream uses; the smoke run trains without GT (validity of every
    option file: tests/test_option_files.py)."""
    from restoration.options.yaml_io import load_yaml

    opt = load_yaml(str(ROOT / "options/train/TBSN/train_TBSN_SIDD.yml"))
    train, data = opt["train"], opt["datasets"]["train"]
    assert train["optim_g"]["type"] == "AdamW" and train["optim_g"]["lr"] == 3e-4
    assert train["scheduler"] == {"type": "MultiStepLR", "milestones": [40000, 80000], "gamma": 0.1}
    assert train["total_iter"] == 100000 and data["batch_size_per_gpu"] == 4 and data["gt_size"] == 640
    assert load_yaml(str(ROOT / "options/train/TBSN/train_TBSN_demo_smoke.yml"))["datasets"]["train"]["with_gt"] is False
