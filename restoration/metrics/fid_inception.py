"""The Inception-v3 of FID (TensorFlow's 2015-12-05 graph, as ported by pytorch-fid): 2048-d pool3 features.

The network is torchvision's Inception-v3 with the port's four differences from it: the average pools inside
Mixed_5b/5c/5d (block A), Mixed_6b..6e (block C) and Mixed_7b (block E) do not count the zero padding
(TensorFlow's ``avg_pool``), and Mixed_7c pools with a 3x3 *max* pool. The weights are pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth`` (torchvision's key names, a 1008-class ``fc`` that FID does not use),
read from a local file; nothing is downloaded.

Features of ``(N, 3, H, W)`` images in [0, 1]: bilinear resize to 299x299 (``align_corners=False``), scale to
[-1, 1], the network up to its global average pool: ``(N, 2048)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import inception as tv

from restoration.errors import FIDWeightsError

__all__ = ["FIDInceptionV3", "FIDWeightsError", "WEIGHTS_FILE"]

#: The file pytorch-fid downloads (github.com/mseitzer/pytorch-fid/releases/download/fid_weights/...).
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"


def _tf_avg_pool(x: Tensor) -> Tensor:
    """3x3, stride 1, padding 1, the padded zeros left out of each mean (TensorFlow's ``avg_pool``)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _BlockA(tv.InceptionA):
    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], 1)


class _BlockC(tv.InceptionC):
    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_tf_avg_pool(x))], 1)


class _BlockE(tv.InceptionE):
    """``max_pool=True``: Mixed_7c of the TensorFlow graph pools with a max instead of a mean."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 pool3 features for FID (frozen, eval mode).

    Args:
        weights_path: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (or a file with its keys).

    Raises:
        FIDWeightsError: The file is missing, unreadable or of another network.
    """

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        conv = tv.BasicConv2d
        self.Conv2d_1a_3x3 = conv(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = conv(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = conv(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = conv(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = conv(80, 192, kernel_size=3)
        self.Mixed_5b = _BlockA(192, pool_features=32)
        self.Mixed_5c = _BlockA(256, pool_features=64)
        self.Mixed_5d = _BlockA(288, pool_features=64)
        self.Mixed_6a = tv.InceptionB(288)
        self.Mixed_6b = _BlockC(768, channels_7x7=128)
        self.Mixed_6c = _BlockC(768, channels_7x7=160)
        self.Mixed_6d = _BlockC(768, channels_7x7=160)
        self.Mixed_6e = _BlockC(768, channels_7x7=192)
        self.Mixed_7a = tv.InceptionD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)
        self._load(Path(weights_path).expanduser())
        self.requires_grad_(False)
        self.eval()

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise FIDWeightsError(f"Inception weights file not found: {str(path)!r} (expected pytorch-fid's "
                                  f"{WEIGHTS_FILE}; nothing is downloaded; see docs/losses_metrics.md)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated file, pickled code objects, ...
            raise FIDWeightsError(f"cannot read the Inception weights file {str(path)!r}: {exc}") from exc
        if not isinstance(state, Mapping):
            raise FIDWeightsError(f"the Inception weights file {str(path)!r} holds no state dict")
        own = self.state_dict()
        # the classifier is not part of pool3; BatchNorm's step counter plays no part in eval mode
        wanted = [k for k in own if not k.endswith("num_batches_tracked")]
        bad = [k for k in wanted if k not in state or state[k].shape != own[k].shape]
        if bad:
            raise FIDWeightsError(f"{str(path)!r} is not the FID Inception ({WEIGHTS_FILE}): missing or other "
                                  f"shape: {bad[:3]}")
        self.load_state_dict({k: state[k] for k in wanted}, strict=False)

    def train(self, mode: bool = True) -> "FIDInceptionV3":
        """Stay in eval mode: BatchNorm uses its stored statistics."""
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` in [0, 1] -> pool3 features ``(N, 2048)``."""
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))
