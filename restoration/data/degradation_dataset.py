"""GT images whose LQ partner is made on the fly by a synthetic degradation (bicubic, noise, JPEG, BSRGAN)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from restoration.data.base_dataset import COLOR_MODES, COMMON_OPTIONS, META_INFO_OPTION, SEED_OPTION, BaseDataset
from restoration.data.degradations.chain import apply_degradations, check_degradations, normalize_degradations, total_scale
from restoration.data.file_lists import single_paths
from restoration.data.paired_image_dataset import check_train_patch
from restoration.data.transforms import augment, hwc_to_chw, mod_crop, random_crop, to_float
from restoration.schema import Key
from restoration.schema import type_ok

__all__ = ["DegradationDataset"]


class DegradationDataset(BaseDataset):
    """Clean images (``dataroot_gt``: folder, ``meta_info_file`` names, or ``.lmdb``) + synthetic LQ.

    Options besides the common ones:
        degradation: A dict or a list of dicts applied in order (see :mod:`restoration.data.degradations.chain`):
            ``{type: bicubic, scale: 4}``, ``{type: gaussian_noise, sigma: 25}`` or ``sigma_range: [0, 50]``,
            ``{type: jpeg, quality: 10}`` or ``quality_range: [10, 90]``, ``{type: bsrgan, scale: 4}`` (the
            BSRGAN/SwinIR real-world recipe; RGB; the crop comes first, so each patch is degraded anew).
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

    options: ClassVar[dict[str, Key]] = {
        **COMMON_OPTIONS,
        "dataroot_gt": Key((str,), required=True, doc="the clean images: a folder (or .lmdb)"),
        "meta_info_file": META_INFO_OPTION,
        "degradation": Key((dict, list), required=True, doc="{type: bicubic, gaussian_noise, jpeg or bsrgan, ...} or "
                           "a list of them, applied in order"),
        "gt_size": Key((int,), doc="training GT patch size, cropped before degrading (required for phase train)"),
        "use_hflip": Key((bool,), default=True, doc="training: random horizontal flips"),
        "use_rot": Key((bool,), default=True, doc="training: random vertical flips and transposes"),
        # No default: unset means "from in_chans", and rgb when neither is given (see _color).
        "color": Key((str,), choices=COLOR_MODES, doc="unset: gray with in_chans: 1, else rgb; gray is OpenCV luma, y MATLAB Y."),
        "in_chans": Key((int,), choices=(1, 3), doc="shorthand for color: gray (1) or color: rgb (3)."),
        "seed": SEED_OPTION,
    }
    folder_keys: ClassVar[tuple[str, ...]] = ("dataroot_gt",)
    file_keys: ClassVar[tuple[str, ...]] = ("meta_info_file",)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.gt_root = str(self.opt["dataroot_gt"])
        self.color = self._color(self.opt)
        self.degradation = normalize_degradations(self.opt["degradation"])
        self.gt_size = self.opt["gt_size"]
        self._make_backend({"gt": self.gt_root})
        meta = None if self.io_type == "lmdb" else self.opt["meta_info_file"]
        self.paths = single_paths(self.gt_root, self.io_type, meta)

    @staticmethod
    def _color(opt: dict) -> str:
        """``color`` if given, else what ``in_chans`` stands for, else ``rgb`` (``opt``: bound values)."""
        if opt["color"]:
            return opt["color"]
        return "gray" if opt["in_chans"] == 1 else "rgb"

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        problems = []
        color, in_chans = opt["color"], opt["in_chans"]
        if color in COLOR_MODES and in_chans in (1, 3) and in_chans != (3 if color == "rgb" else 1):
            problems.append(f"color {color!r} and in_chans {in_chans} disagree; give only one of them")
        if opt["degradation"] is not None:
            deg_problems = check_degradations(opt["degradation"])
            problems += deg_problems
            scale = opt["scale"]
            if not deg_problems and type_ok(scale, int):
                s = total_scale(normalize_degradations(opt["degradation"]), scale)
                bsrgan = any(d["type"] == "bsrgan" for d in normalize_degradations(opt["degradation"]))
                if s != scale:
                    what = "bicubic/bsrgan" if bsrgan else "bicubic"
                    problems.append(f"the {what} factors of 'degradation' multiply to {s} but scale is {scale}")
                if bsrgan and cls._color(opt) != "rgb":
                    problems.append(f"the bsrgan degradation needs color: rgb, got {cls._color(opt)!r}")
        problems += check_train_patch(opt)
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
            (gt,) = augment([gt], rng, hflip=self.opt["use_hflip"], rotation=self.opt["use_rot"])
        if self.color == "y":  # degrade the Y image itself, as a Y-only network will see it
            gt = self.to_color(to_float(gt), "y")
        lq = apply_degradations(gt, self.degradation, rng, default_scale=self.scale)
        gt_f = to_float(gt)
        return {"lq": hwc_to_chw(lq), "gt": hwc_to_chw(np.ascontiguousarray(gt_f)), "lq_path": path, "gt_path": path}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.opt['name']!r}, phase={self.phase!r}, {len(self)} images, "
                f"degradation={self.degradation}, color={self.color!r})")
