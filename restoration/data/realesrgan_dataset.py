"""GT images and the per-sample blur kernels of the Real-ESRGAN degradation (BasicSR's ``RealESRGANDataset``).

The data workers do the cheap per-sample part: read, flip, pad/crop to ``crop_pad_size``, draw three
kernels (:mod:`restoration.data.degradations.kernels`). The trainer degrades the batch on its device
with :func:`restoration.data.degradations.realesrgan.realesrgan_degrade`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from restoration.data.base_dataset import COLOR_OPTION, COMMON_OPTIONS, META_INFO_OPTION, SEED_OPTION, BaseDataset
from restoration.data.degradations.kernels import KERNEL_TYPES, check_blur_options, draw_sample_kernels
from restoration.data.file_lists import single_paths
from restoration.data.transforms import augment, hwc_to_chw, random_crop, to_float
from restoration.errors import DataError
from restoration.schema import Key

__all__ = ["RealESRGANDataset", "KERNEL_OPTIONS", "check_kernel_options", "sample_kernels"]

_KERNEL_LIST = list(KERNEL_TYPES)
_KERNEL_PROB = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]


def _blur_options(suffix: str, sigma: list[float]) -> dict[str, Key]:
    stage = "first" if not suffix else "second"
    return {
        "blur_kernel_size" + suffix: Key((int,), default=21, doc=f"{stage} blur: largest kernel size (odd; sizes "
                                         "7, 9, ... up to it); kernels are zero-padded to it"),
        "kernel_list" + suffix: Key((list,), default=_KERNEL_LIST, doc=f"{stage} blur: kernel types, from {KERNEL_TYPES}"),
        "kernel_prob" + suffix: Key((list,), default=_KERNEL_PROB, doc=f"{stage} blur: probability of each type (sum 1)"),
        "blur_sigma" + suffix: Key((list,), default=sigma, doc=f"{stage} blur: sigma range [low, high], pixels"),
        "betag_range" + suffix: Key((list,), default=[0.5, 4], doc=f"{stage} blur: beta range of generalized kernels"),
        "betap_range" + suffix: Key((list,), default=[1, 2], doc=f"{stage} blur: beta range of plateau kernels"),
        "sinc_prob" + suffix: Key((int, float), default=0.1, doc=f"{stage} blur: probability of a sinc kernel instead"),
    }


#: The options of the three per-sample kernels (BasicSR's names and x4plus defaults); RealESRGANPairedDataset
#: declares them too, for batches that may also be degraded (``with_kernels``).
KERNEL_OPTIONS: dict[str, Key] = {
    **_blur_options("", [0.2, 3]),
    **_blur_options("2", [0.2, 1.5]),
    "final_sinc_prob": Key((int, float), default=0.8, doc="probability of the final sinc filter"),
}


def check_kernel_options(opt: dict) -> list[str]:
    """Problems of the :data:`KERNEL_OPTIONS` values of ``opt`` (bound options), one line each."""
    problems = check_blur_options(opt, "") + check_blur_options(opt, "2")
    prob = opt["final_sinc_prob"]
    if isinstance(prob, (int, float)) and not 0 <= prob <= 1:
        problems.append(f"final_sinc_prob must be a probability in [0, 1], got {prob!r}")
    return problems


def sample_kernels(rng: np.random.Generator, opt: dict, index: int, name: str) -> dict[str, torch.Tensor]:
    """``kernel1``, ``kernel2``, ``sinc_kernel`` of sample ``index`` (float32 tensors), drawn from ``rng``.

    Raises:
        DataError: A kernel is not finite, naming the sample, its seed and every drawn parameter.
    """
    kernels, params = draw_sample_kernels(rng, opt)
    if not all(np.isfinite(k).all() for k in kernels.values()):
        seed = rng.bit_generator.seed_seq.entropy
        drawn = ", ".join(f"{key} {value}" for key, value in params.items())
        raise DataError(f"sample {index} ({name}, sample seed {seed}): a blur kernel is not finite; "
                        f"{drawn}. Narrow blur_sigma/betag_range/betap_range")
    return {key: torch.from_numpy(k.astype(np.float32)) for key, k in kernels.items()}


class RealESRGANDataset(BaseDataset):
    """GT patches (``dataroot_gt``: a folder, an ``.lmdb``, or the names in ``meta_info``) and the random
    blur kernels of the Real-ESRGAN degradation.

    Per sample: a random flip (``use_hflip``) and vertical flip/transpose (``use_rot``); GT smaller than
    ``crop_pad_size`` is reflect-padded (bottom/right) to it, larger GT randomly cropped to it; then
    ``kernel1`` (first blur stage), ``kernel2`` (second stage) and ``sinc_kernel`` (the final sinc with
    probability ``final_sinc_prob``, else the identity pulse). Option names and defaults are BasicSR's
    (the Real-ESRGAN x4plus recipe); every random draw comes from :meth:`sample_rng`.

    Returns from ``__getitem__``: ``{'gt': (C, P, P), 'kernel1': (k1, k1), 'kernel2': (k2, k2),
    'sinc_kernel': (k, k), 'gt_path'}``, float32, GT in [0, 1] (RGB, ``C = 3``; ``color: gray|y``: one
    channel, which the degradation handles, ``C = 1``), ``P = crop_pad_size``,
    ``k1``/``k2`` = ``blur_kernel_size``/``blur_kernel_size2``, ``k`` the larger of the two.
    """

    options: ClassVar[dict[str, Key]] = {
        **COMMON_OPTIONS,
        "dataroot_gt": Key((str,), required=True, doc="the GT images: a folder (or .lmdb)"),
        "meta_info": Key((str,), doc="use only the images listed in this file, paths relative to dataroot_gt "
                         "(BasicSR's name)"),
        "meta_info_file": META_INFO_OPTION,
        **KERNEL_OPTIONS,
        "crop_pad_size": Key((int,), default=400, doc="GT patch size handed to the degradation (BasicSR: 400)"),
        "gt_size": Key((int,), doc="accepted for BasicSR option files; the crop after degrading is the trainer's gt_size"),
        "use_hflip": Key((bool,), default=True, doc="random horizontal flips"),
        "use_rot": Key((bool,), default=False, doc="random vertical flips and transposes"),
        "color": COLOR_OPTION,
        "seed": SEED_OPTION,
    }
    folder_keys: ClassVar[tuple[str, ...]] = ("dataroot_gt",)
    file_keys: ClassVar[tuple[str, ...]] = ("meta_info", "meta_info_file")

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.gt_root = str(self.opt["dataroot_gt"])
        self.crop_pad_size = int(self.opt["crop_pad_size"])
        self._make_backend({"gt": self.gt_root})
        meta = None if self.io_type == "lmdb" else (self.opt["meta_info"] or self.opt["meta_info_file"])
        self.paths = single_paths(self.gt_root, self.io_type, meta)

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        problems = check_kernel_options(opt)
        size = opt["crop_pad_size"]
        if isinstance(size, int) and size < 1:
            problems.append(f"crop_pad_size must be positive, got {size}")
        if opt["meta_info"] and opt["meta_info_file"]:
            problems.append("give only one of meta_info and meta_info_file (they mean the same)")
        return problems

    def __len__(self) -> int:
        return len(self.paths)

    def _pad_or_crop(self, img: np.ndarray, rng: np.random.Generator, name: str) -> np.ndarray:
        """Reflect-pad (bottom/right, OpenCV's REFLECT_101) to ``crop_pad_size``, then a random crop of it."""
        size = self.crop_pad_size
        h, w = img.shape[:2]
        if h < size or w < size:
            img = np.pad(img, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect")
        return random_crop(img, size, rng, name)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        name = self.backend.describe(path, "gt")
        rng = self.sample_rng(index)
        color = self.opt["color"]
        gt = self.to_color(to_float(self.read_image(path, "gt", self.read_mode(color))), color)
        (gt,) = augment([gt], rng, hflip=self.opt["use_hflip"], rotation=self.opt["use_rot"])
        gt = self._pad_or_crop(gt, rng, name)
        out: dict[str, Any] = {"gt": hwc_to_chw(gt), **sample_kernels(rng, self.opt, index, name)}
        out["gt_path"] = path
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.opt['name']!r}, phase={self.phase!r}, {len(self)} images, "
                f"crop_pad_size={self.crop_pad_size})")
