"""GT images whose LQ partner is made on the fly by a synthetic degradation (bicubic, noise, JPEG)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from restoration.data.base_dataset import COLOR_MODES, BaseDataset
from restoration.data.degradations import apply_degradations, check_degradations, normalize_degradations, total_scale
from restoration.data.file_lists import single_paths
from restoration.data.paired_image_dataset import _check_train_patch
from restoration.data.transforms import augment, hwc_to_chw, mod_crop, random_crop, to_float

__all__ = ["DegradationDataset"]

_NoneType = type(None)


class DegradationDataset(BaseDataset):
    """Clean images (``dataroot_gt``: folder, ``meta_info_file`` names, or ``.lmdb``) + synthetic LQ.

    Options besides the common ones:
        degradation: A dict or a list of dicts applied in order (see :mod:`restoration.data.degradations`):
            ``{type: bicubic, scale: 4}``, ``{type: gaussian_noise, sigma: 25}`` or ``sigma_range: [0, 50]``,
            ``{type: jpeg, quality: 10}`` or ``quality_range: [10, 90]``.
        gt_size: Training patch size on GT (cropped *before* degrading, so training is cheap).
        use_hflip, use_rot: Training augmentation.
        color: ``rgb`` (default), ``gray`` (OpenCV luma, as ``cv2.imread(p, 0)``) or ``y`` (MATLAB Y).
        in_chans: ``1`` or ``3``; a shorthand for ``color: gray`` / ``color: rgb``.
        seed: Base seed of the validation/test degradations (default 0). Sample ``i`` always gets the
            same noise/quality, so metrics are reproducible across evaluations and runs.

    GT is mod-cropped to a multiple of the bicubic factor; the product of the bicubic factors must
    equal the dataset's ``scale`` (1 for denoising/JPEG).

    Returns from ``__getitem__``: ``{'lq': (C, h, w), 'gt': (C, H, W), 'lq_path', 'gt_path'}``, float32,
    ``lq`` in [0, 1] except for unclipped noise; ``lq_path`` is the GT path (the LQ exists only in memory).
    """

    option_keys: ClassVar[dict[str, Any]] = {
        "dataroot_gt": str,
        "meta_info_file": (str, _NoneType),
        "degradation": (dict, list),
        "gt_size": int,
        "use_hflip": bool,
        "use_rot": bool,
        "color": (str, _NoneType),
        "in_chans": int,
        "seed": int,
    }
    required_keys: ClassVar[tuple[str, ...]] = ("dataroot_gt", "degradation")
    folder_keys: ClassVar[tuple[str, ...]] = ("dataroot_gt",)
    file_keys: ClassVar[tuple[str, ...]] = ("meta_info_file",)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.gt_root = str(opt["dataroot_gt"])
        self.color = self._color(opt)
        self.degradation = normalize_degradations(opt["degradation"])
        self.gt_size = opt.get("gt_size")
        self._make_backend({"gt": self.gt_root})
        meta = None if self.io_type == "lmdb" else opt.get("meta_info_file")
        self.paths = single_paths(self.gt_root, self.io_type, meta)

    @staticmethod
    def _color(opt: dict) -> str:
        if opt.get("color"):
            return opt["color"]
        return {1: "gray", 3: "rgb"}.get(opt.get("in_chans", 3), "rgb")

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        problems = []
        color, in_chans = opt.get("color"), opt.get("in_chans")
        if color is not None and color not in COLOR_MODES:
            problems.append(f"color {color!r} is not one of {COLOR_MODES}")
        if in_chans is not None and in_chans not in (1, 3):
            problems.append(f"in_chans must be 1 or 3, got {in_chans!r}")
        if color is not None and in_chans is not None and in_chans != (3 if color == "rgb" else 1):
            problems.append(f"color {color!r} and in_chans {in_chans} disagree; give only one of them")
        if "degradation" in opt and opt["degradation"] is not None:
            deg_problems = check_degradations(opt["degradation"])
            problems += deg_problems
            scale = opt.get("scale", 1)
            if not deg_problems and isinstance(scale, int):
                s = total_scale(normalize_degradations(opt["degradation"]), scale)
                if s != scale:
                    problems.append(f"the bicubic factors of 'degradation' multiply to {s} but scale is {scale}")
        problems += _check_train_patch({**opt, "scale": opt.get("scale", 1)})
        return problems

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        gt = self.read_image(path, "gt", self.read_mode(self.color))
        gt = mod_crop(gt, self.scale)
        rng = self.sample_rng(index)
        if self.phase == "train":
            gt = random_crop(gt, int(self.gt_size), rng, self.backend.describe(path, "gt"))
            (gt,) = augment([gt], rng, hflip=self.opt.get("use_hflip", True), rotation=self.opt.get("use_rot", True))
        if self.color == "y":  # degrade the Y image itself, as a Y-only network will see it
            gt = self.to_color(to_float(gt), "y")
        lq = apply_degradations(gt, self.degradation, rng, default_scale=self.scale)
        gt_f = to_float(gt)
        return {"lq": hwc_to_chw(lq), "gt": hwc_to_chw(np.ascontiguousarray(gt_f)), "lq_path": path, "gt_path": path}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.opt.get('name')!r}, phase={self.phase!r}, {len(self)} images, "
                f"degradation={self.degradation}, color={self.color!r})")
