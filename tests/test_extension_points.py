"""The design proven from outside: a dataset, a metric and a video trainer that live in this file only.

Each is used through ``train.py``'s entry (:func:`restoration.cli.train.main`) without editing the
package: the dataset, the network and the trainer are named in the option file as
``tests.test_extension_points:<Class>`` (imported because the file is the one given with ``-opt``, and only
as a class of the slot's kind); the metric, a function, is registered by the test and unregistered after.

The trainer is multi-frame: its network takes a clip ``(B, T, C, H, W)``, and validation scores clips.
It relies on the generic evaluation rule that a 5-D output is scored frame by frame (one score per clip,
the mean over its frames) and saved as one image per frame, and on the trainer hook
:meth:`~restoration.models.base_model.Trainer.evaluation_images`, which turns a batch into the output and
the target to score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pytest
import torch
import yaml
from torch import Tensor, nn

from restoration.data.base_dataset import COMMON_OPTIONS, SEED_OPTION, BaseDataset
from restoration.models.base_model import Trainer
from restoration.schema import Key
from restoration.registry import METRIC_REGISTRY
from restoration.cli.train import main as train_main

HERE = "tests.test_extension_points"


class ClipDataset(BaseDataset):
    """Synthetic clips: a smooth pattern drifting one pixel per frame, and the same clip with Gaussian noise.

    Returns ``{'lq': (T, C, S, S), 'gt': (T, C, S, S), 'lq_path': 'clipNN'}``, float32 in [0, 1].
    """

    options = {
        **COMMON_OPTIONS,
        "num_clips": Key((int,), default=4, doc="clips in the set"),
        "num_frames": Key((int,), default=3, doc="frames per clip (T)"),
        "size": Key((int,), default=12, doc="frame height and width"),
        "noise_level": Key((int, float), default=0.1, doc="standard deviation of the noise, in [0, 1] units"),
        "seed": SEED_OPTION,
    }

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        return [] if opt["num_frames"] >= 1 else [f"num_frames must be >= 1, got {opt['num_frames']}"]

    def __len__(self) -> int:
        return int(self.opt["num_clips"])

    def __getitem__(self, index: int) -> dict[str, Any]:
        size, frames = int(self.opt["size"]), int(self.opt["num_frames"])
        yy, xx = np.mgrid[0:size, 0:size] / size
        phase = np.random.default_rng(index).uniform(0, 6.28, size=3)  # the clip's content: fixed per index
        gt = np.stack([np.stack([0.5 + 0.4 * np.sin(6.28 * (xx + t / size) + phase[c]) * np.cos(6.28 * yy)
                                 for c in range(3)]) for t in range(frames)]).astype(np.float32)
        noise = self.sample_rng(index).normal(0, float(self.opt["noise_level"]), gt.shape).astype(np.float32)
        return {"lq": torch.from_numpy(np.clip(gt + noise, 0, 1)), "gt": torch.from_numpy(gt),
                "lq_path": f"clip{index:02d}"}


def calculate_frame_mae(img: np.ndarray, img2: np.ndarray, crop_border: int = 0) -> float:
    """Mean absolute difference of two uint8 ``(H, W, C)`` frames, in [0, 255] units (lower is better)."""
    if crop_border:
        img, img2 = img[crop_border:-crop_border, crop_border:-crop_border], img2[crop_border:-crop_border, crop_border:-crop_border]
    return float(np.abs(img.astype(np.float64) - img2.astype(np.float64)).mean())


class ClipNet(nn.Module):
    """A clip denoiser: ``(B, T, C, H, W) → (B, T, C, H, W)`` in [0, 1]; each frame sees the clip's mean."""

    def __init__(self, channels: int = 3, num_feat: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2 * channels, num_feat, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(num_feat, channels, 3, padding=1))

    def forward(self, clip: Tensor) -> Tensor:
        b, t, c, h, w = clip.shape
        context = clip.mean(dim=1, keepdim=True).expand_as(clip)
        x = torch.cat([clip, context], dim=2).reshape(b * t, 2 * c, h, w)
        return clip + self.body(x).reshape(b, t, c, h, w)


class ClipTrainer(Trainer):
    """Trains ``g`` to restore whole clips under an L1 loss; validation restores and scores whole clips."""

    options = {"frame_weight": Key((int, float), default=1.0, doc="weight of the per-frame L1 loss")}

    def __init__(self, opt: Mapping[str, Any], device: torch.device, world_size: int = 1, *,
                 is_train: bool = True) -> None:
        super().__init__(opt, device, world_size, is_train=is_train)
        self.add_network("g", opt["network_g"])
        if self.is_train:
            self.add_optimizer("g", self.train_opt["optim_g"], self.train_opt.get("scheduler"))
            self.weight = float(self.declared_options(self.train_opt)["frame_weight"])

    def optimize_parameters(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Tensor]:
        assert batch["lq"].dim() == 5  # (B, T, C, H, W): the loader stacks clips
        output = self.train_networks["g"](batch["lq"])
        return self.backward_step("g", {"l_clip": self.weight * (output - batch["gt"]).abs().mean()}, current_iter)

    @torch.no_grad()
    def inference(self, lq: Tensor) -> Tensor:
        net = self.networks["g"]
        net.eval()
        out = net(lq).clamp(0, 1)
        net.train(self.is_train)
        return out


def _options(tmp_path: Path, name: str) -> dict[str, Any]:
    clips = {"type": f"{HERE}:ClipDataset", "num_clips": 4, "num_frames": 3, "size": 12}
    return {
        "name": name, "model_type": f"{HERE}:ClipTrainer", "scale": 1, "num_gpu": 0, "manual_seed": 5,
        "datasets": {"train": {**clips, "batch_size_per_gpu": 2},
                     "val_1": {**clips, "name": "clips", "num_clips": 2, "noise_level": 0.2}},
        "network_g": {"type": f"{HERE}:ClipNet", "num_feat": 8},
        "train": {"optim_g": {"type": "Adam", "lr": 1e-2}, "total_iter": 6, "frame_weight": 1.0},
        "val": {"val_freq": 6, "save_img": True,
                "metrics": {"mae": {"type": "calculate_frame_mae", "crop_border": 1, "better": "lower"}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 6, "use_tb_logger": False},
    }


def _train(opt: dict[str, Any], tmp_path: Path) -> int:
    path = tmp_path / f"{opt['name']}.yml"
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return train_main(["-opt", str(path), "--root", str(tmp_path)])


@pytest.fixture
def frame_mae() -> Iterator[None]:
    """``calculate_frame_mae`` registered for the test only (metrics take registered names only)."""
    METRIC_REGISTRY.register(calculate_frame_mae)
    yield
    METRIC_REGISTRY.unregister("calculate_frame_mae")


def test_clip_trainer_trains_and_scores_clips_frame_by_frame(frame_mae, tmp_path: Path) -> None:
    assert _train(_options(tmp_path, "clips"), tmp_path) == 0
    exp = tmp_path / "experiments" / "clips"
    log = next(exp.glob("train_clips_*.log")).read_text()
    assert "l_clip" in log
    # one score per clip: the mean of its frames' scores
    line = next(line for line in log.splitlines() if "validation clips @ iter 6:" in line)
    mae = float(line.split(" mae ")[1].split()[0])
    # the same number recomputed here from the saved weights, frame by frame
    net = ClipNet(num_feat=8)
    net.load_state_dict(torch.load(exp / "models" / "net_g_6.pth", weights_only=True)["params"])
    val = ClipDataset({"type": "ClipDataset", "phase": "val", "num_clips": 2, "num_frames": 3, "size": 12,
                       "noise_level": 0.2})
    from restoration.utils.image_io import tensor2img

    per_clip = []
    with torch.no_grad():
        for i in range(len(val)):
            sample = val[i]
            out = net(sample["lq"][None]).clamp(0, 1)[0]
            per_clip.append(np.mean([calculate_frame_mae(tensor2img(o), tensor2img(g), crop_border=1)
                                     for o, g in zip(out, sample["gt"])]))
    assert mae == pytest.approx(float(np.mean(per_clip)), abs=1e-4)
    # every frame of every clip saved, one image each (comparison grids, when on, are beside them)
    saved = sorted(p.name for p in (exp / "visualization").rglob("*.png") if not p.name.endswith("_grid.png"))
    assert saved == [f"clip{c:02d}_{t}_6.png" for c in range(2) for t in range(3)]


@pytest.mark.parametrize("section, key, wrong, right", [
    ("datasets.train", "num_frames", "num_frmaes", "num_frames"),
    ("val.metrics.mae", "crop_border", "crop_boder", "crop_border"),
    ("train", "frame_weight", "frame_wieght", "frame_weight"),
])
def test_a_misspelt_key_of_each_is_an_options_error(frame_mae, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   section: str, key: str, wrong: str, right: str) -> None:
    opt = _options(tmp_path, "typo")
    node = opt
    for part in section.split("."):
        node = node[part]
    node[wrong] = node.pop(key)
    assert _train(opt, tmp_path) == 2
    err = capsys.readouterr().err
    assert wrong in err and f"did you mean '{right}'" in err, err
    assert not (tmp_path / "experiments").exists()  # nothing on disk
